"""The ``appliance`` command: a thin click layer over the modules.

Every ApplianceError becomes a clean message (click.ClickException), never a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import NoReturn

import click

from . import config as config_mod
from .clock import parse_duration
from .errors import ApplianceError, ConfigError


class _Group(click.Group):
    """A click group that turns our errors into clean messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ApplianceError as e:
            raise click.ClickException(str(e)) from None


# Commands that live with their own packages, imported only when used: the indicator's,
# the flasher's and the image's modules cost a third of a second of every other
# command's start on this machine, more on a Pi.
_PACKAGED = {
    "flash": "appliance.flash.cli",
    "image": "appliance.image.cli",
    "indicator": "appliance.indicator.cli",
    "web": "appliance.web.cli",
}


class _Main(_Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_PACKAGED})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in _PACKAGED and name not in self.commands:
            import importlib

            self.add_command(getattr(importlib.import_module(_PACKAGED[name]), name))
        return super().get_command(ctx, name)


@click.group(cls=_Main)
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help=f"Config file (default ${config_mod.CONFIG_ENV} or {config_mod.DEFAULT_CONFIG_PATH}).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
@click.version_option(package_name="appliance")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """Edge replica appliance: a local copy of a production read replica, with lights."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_mod.config_path(config_path)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    for noisy in ("paramiko", "sshtunnel", "waitress"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _OneLineFormatter(logging.Formatter):
    """One log record, one line: control characters from source names cannot forge lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        from .health.text import printable

        return printable(super().formatMessage(record)).replace("\n", "\\n")


def _duration(text: str, option: str) -> float:
    """Return the seconds in a duration option, or fail with click's usage error."""
    try:
        return parse_duration(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=option) from None


def load_config() -> config_mod.Config:
    """Load the config named by --config / $APPLIANCE_CONFIG (raises ConfigError)."""
    return config_mod.load(click.get_current_context().obj["config_path"])


CANNOT_CHECK = 3  # the exit code of status and schema diff when they cannot read or reach


def _cannot(error: ApplianceError) -> NoReturn:
    """Say why the command could not look, and exit 3 (distinct from every answer)."""
    click.echo(f"Error: {error}", err=True)
    sys.exit(CANNOT_CHECK)


def _tables(cfg: config_mod.Config, table: str | None) -> list[config_mod.TableSettings]:
    """Return the table named on the command line (or all); an unknown name is a usage error."""
    if table is None:
        return list(cfg.tables)
    try:
        return [cfg.table(table)]
    except ConfigError:
        known = ", ".join(t.name for t in cfg.tables)
        raise click.BadParameter(
            f'no table "{table}" is configured; use one of: {known}', param_hint="TABLE"
        ) from None


@main.group(cls=_Group)
def config() -> None:
    """Work with the configuration file."""


@config.command("check")
def config_check() -> None:
    """Validate the config file; list every problem with its key and a fix."""
    from .config.checks import secret_problems

    cfg = load_config()
    problems = secret_problems(cfg)
    if problems:
        raise ConfigError(problems, cfg.path)
    via = f"via bastion {cfg.ssh.user}@{cfg.ssh.host}:{cfg.ssh.port}" if cfg.ssh else "directly"
    click.echo(
        f"{cfg.path}: OK - {len(cfg.tables)} table(s) from "
        f"{cfg.source.database} on {cfg.source.host}:{cfg.source.port} {via}, "
        f"replica {cfg.replica_url}"
    )


@main.command()
@click.option("--once", is_flag=True, help="Do one pass, then exit (non-zero if it failed).")
@click.option("--interval", metavar="DURATION", help='Time between passes, e.g. "30s".')
@click.option("--reconcile", is_flag=True, help="Run the hard-delete reconciliation now.")
def sync(once: bool, interval: str | None, reconcile: bool) -> None:
    """Run the sync agent (the tunnel, the copy, the health record)."""
    from .health.store import StateStore
    from .service import SingleInstance
    from .sync.agent import Agent
    from .sync.link import SourceLink
    from .sync.replica import Replica

    cfg = load_config()
    seconds = _duration(interval, "--interval") if interval else None
    # One agent per state folder: a second one would write a false outage into the live log.
    with (
        SingleInstance(f"{cfg.state_dir}/agent.lock"),
        StateStore(cfg.state_dir) as store,
        Replica(cfg.replica_url, cfg.replica_min_free) as replica,
        SourceLink(cfg) as link,
    ):
        result = Agent(cfg, link, replica, store, interval=seconds).run(once=once, reconcile=reconcile)
    if once and (result is None or not result.ok):
        raise click.ClickException(result.summary() if result else "no pass ran")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status document as JSON.")
def status(as_json: bool) -> None:
    """Show the current health.

    Exit code 0 ok, 1 lagging, drift or maintenance, 2 outage, 3 the config or the state
    cannot be read.
    """
    from .health.status import EXIT_CODES, current_status
    from .health.text import render

    try:
        doc = current_status(load_config())
    except ApplianceError as e:
        _cannot(e)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(render(doc, color=sys.stdout.isatty()))
    sys.exit(EXIT_CODES[doc["state"]])


@main.command()
def ack() -> None:
    """Acknowledge the current alert (the button does the same)."""
    from .health.status import acknowledge

    if acknowledge(load_config(), by="cli"):
        click.echo("acknowledged")
    else:
        click.echo("nothing to acknowledge: the state is ok")


@main.command()
@click.option(
    "--accept-host-key",
    is_flag=True,
    help="Show the bastion's pinned and presented host keys and re-pin after a yes.",
)
def doctor(accept_host_key: bool) -> None:
    """Check everything a deployment needs; exit code 1 when something is wrong."""
    from .doctor import host_keys, repin, run

    if accept_host_key:
        cfg = load_config()
        pinned, presented, line = host_keys(cfg)
        click.echo(f"pinned in {cfg.ssh.known_hosts if cfg.ssh else '-'}: {', '.join(pinned) or 'nothing'}")
        click.echo(f"the bastion presents:  {presented}")
        if presented in pinned:
            click.echo("nothing to do: the presented key is the pinned one")
            return
        click.echo("Compare it with the fingerprint the bastion's admin reads from the bastion itself.")
        if not click.confirm("Pin the presented key?", default=False):
            raise click.ClickException("nothing changed")
        repin(cfg, line)
        click.echo(f"pinned {presented}")
        return
    checks = run(click.get_current_context().obj["config_path"])
    for check in checks:
        click.echo(check.line())
    problems = [c for c in checks if c.ok is False]
    click.echo(f"\n{len(problems)} problem(s)" if problems else "\nall checks ok")
    sys.exit(1 if problems else 0)


@main.group(cls=_Group)
def schema() -> None:
    """The schema contract: show it, diff it against the source, accept drift."""


@schema.command("show")
@click.argument("table", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the contract as JSON.")
def schema_show(table: str | None, as_json: bool) -> None:
    """Show the accepted contract of TABLE (or of every table)."""
    from .schema import contract

    cfg = load_config()
    tables = _tables(cfg, table)
    docs = {t.name: contract.load(cfg.state_dir, t.name) for t in tables}
    if as_json:
        click.echo(json.dumps(docs, indent=2))
        return
    for name, doc in docs.items():
        click.echo(
            contract.render(doc)
            if doc
            else f"{name}: no contract yet (it is written on the table's first sync)"
        )


@schema.command("diff")
@click.argument("table", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
def schema_diff(table: str | None, as_json: bool) -> None:
    """Compare the contract with the live source.

    Exit code 0 the same, 1 they differ, 3 cannot check (the config, the tunnel or the
    source could not be read or reached).
    """
    from .schema.diff import live_diff
    from .sync.link import SourceLink

    try:
        cfg = load_config()
    except ApplianceError as e:
        _cannot(e)
    tables = _tables(cfg, table)
    try:
        with SourceLink(cfg) as link:
            shapes = link.source().describe([t.name for t in tables])
    except ApplianceError as e:
        _cannot(e)
    report = live_diff(cfg, tables, shapes)
    if as_json:
        click.echo(json.dumps({n: r["drift"] for n, r in report.items()}, indent=2))
    else:
        for r in report.values():
            click.echo(r["text"])
    sys.exit(1 if any(r["drift"] for r in report.values()) else 0)


@schema.command("accept")
@click.argument("table", required=False)
def schema_accept(table: str | None) -> None:
    """Make the live schema the contract for TABLE (or everything); syncing resumes."""
    from .health.status import accept_drift

    cfg = load_config()
    _tables(cfg, table)  # an unknown name is a usage error, not a config problem
    if accept_drift(cfg, table, by="cli"):
        click.echo(f"accepted: {table or 'all drift'}; the agent applies it on its next pass")
    else:
        click.echo("nothing to accept")


@schema.command("lint")
@click.argument("table", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="markdown is meant to be sent to the source team as it is.",
)
def schema_lint(table: str | None, fmt: str) -> None:
    """The readiness report of TABLE (any source table) or of every configured table.

    Exit code 0 no findings, 1 findings, 3 cannot check.
    """
    from .clock import iso, utcnow
    from .schema import lint_report
    from .schema.lint import lint
    from .sync.catalog import qualified, table_facts
    from .sync.link import SourceLink

    try:
        cfg = load_config()
        names = [table] if table else [t.name for t in cfg.tables]
        configured = {n: t for t in cfg.tables for n in (t.name, t.replica_name)}
        with SourceLink(cfg) as link:
            source = link.source()
            facts = [
                table_facts(source, configured[n].name if n in configured else qualified(n)) for n in names
            ]
    except ApplianceError as e:
        click.echo(f"Error: cannot check: {e}", err=True)
        sys.exit(3)
    reports = [lint(f, configured.get(f.name), checked_at=iso(utcnow())) for f in facts]
    for r in reports:
        try:
            lint_report.save(cfg.state_dir, r)  # the status page shows the last report
        except OSError as e:
            click.echo(f"warning: could not keep the report for the status page: {e}", err=True)
    click.echo(lint_report.render(reports, fmt, f"{cfg.source.database}"))
    if any(not r.exists for r in reports):
        sys.exit(3)
    sys.exit(1 if any(r.findings for r in reports) else 0)


@main.command("announce")
@click.argument("table", required=False)
@click.option("--change", help='What ships, e.g. "add column channel text" (see the README for the forms).')
@click.option("--on", "on_day", metavar="DATE", help="The day it ships, e.g. 2026-12-10.")
@click.option("--note", default="", help="Anything the site should know.")
@click.option(
    "--auto-accept", is_flag=True, help="Accept it by itself when it arrives (never a breaking change)."
)
@click.option("--list", "listing", is_flag=True, help="List the announced changes.")
def announce_cmd(
    table: str | None, change: str | None, on_day: str | None, note: str, auto_accept: bool, listing: bool
) -> None:
    """Announce a schema change of TABLE before it ships: its drift is then expected, not an alarm."""
    from datetime import date

    from .clock import utcnow
    from .health import announce
    from .health.store import StateStore

    cfg = load_config()
    if listing:
        with StateStore(cfg.state_dir, readonly=True) as store:
            known = announce.announcements(cfg, store)
        for a in known:
            click.echo(f"{a['on']}  {a['table']}: {a['change']}" + (f" ({a['note']})" if a["note"] else ""))
        if not known:
            click.echo("no changes announced")
        return
    if not (table and change and on_day):
        raise click.UsageError("give TABLE, --change and --on (or --list)")
    try:
        day = date.fromisoformat(on_day)
    except ValueError:
        raise click.BadParameter(f"{on_day!r} is not a date like 2026-12-10", param_hint="--on") from None
    name = _tables(cfg, table)[0].name
    with StateStore(cfg.state_dir) as store:
        entry = announce.announce(cfg, store, name, change, day, note, "cli", utcnow(), auto_accept)
    click.echo(f"announced: {entry['table']}: {entry['change']} on {entry['on']}")


@main.group(cls=_Group)
def maintenance() -> None:
    """Planned maintenance: start a window now, end it, list what is planned."""


@maintenance.command("start")
@click.option("--for", "length", metavar="DURATION", required=True, help='How long, e.g. "2h".')
@click.option("--reason", default="", help="What is done (the page, the OLED and notifications show it).")
def maintenance_start(length: str, reason: str) -> None:
    """Start a maintenance window now: a source that goes down meanwhile is expected."""
    from .clock import local_time, utcnow
    from .health.maintenance import start_now
    from .health.status import update
    from .health.store import StateStore

    seconds = _duration(length, "--for")
    if not 60 <= seconds <= 7 * 86400:
        raise click.BadParameter("a window lasts between 1m and 7d", param_hint="--for")
    cfg = load_config()
    now = utcnow()
    with StateStore(cfg.state_dir) as store:
        window = start_now(cfg, store, seconds, reason, now, by="cli")
        update(cfg, store)
    click.echo(f"maintenance until {local_time(window.end, now)}: {window.reason}")


@maintenance.command("end")
def maintenance_end() -> None:
    """End the window started with `maintenance start`; a source still down is an outage at once."""
    from .health.maintenance import end_now
    from .health.status import update
    from .health.store import StateStore

    cfg = load_config()
    with StateStore(cfg.state_dir) as store:
        ended = end_now(store, by="cli")
        update(cfg, store)
    click.echo("maintenance ended" if ended else "no maintenance was started by hand")


@maintenance.command("list")
def maintenance_list() -> None:
    """List the current and the coming windows (the config's and the one started by hand)."""
    from .clock import local_time, utcnow
    from .health.maintenance import windows
    from .health.store import StateStore

    cfg = load_config()
    now = utcnow()
    with StateStore(cfg.state_dir, readonly=True) as store:
        found = [w for w in windows(cfg, store, now) if w.end > now]
    for w in found:
        when = "now" if w.start <= now else local_time(w.start, now, seconds=False)
        scope = ", ".join(w.tables) or "all tables"
        click.echo(f"{when} until {local_time(w.end, now, seconds=False)} ({scope}, {w.by}): {w.reason}")
    if not found:
        click.echo("no maintenance planned")


# -- the state store's schema (scripts/install-on-pi runs this on every upgrade) ------------
@main.group(cls=_Group)
def state() -> None:
    """The state store (health, events, runs): bring its schema up to this version."""


@state.command("migrate")
@click.option(
    "--backup",
    "backup_to",
    metavar="PATH",
    help="First copy the store to PATH (after a WAL checkpoint), to restore on a rollback.",
)
def state_migrate(backup_to: str | None) -> None:
    """Apply the schema steps the state store has not had yet, recording each.

    The agent and the page do the same when they open the store; run it by hand (units
    stopped) to take a copy first. A store newer than this version is refused.
    """
    from .health.migrations import migrate_store

    click.echo(migrate_store(load_config().state_dir, backup_to))


@main.command()
@click.option(
    "--source",
    "source_url",
    metavar="URL",
    help="Use this PostgreSQL URL instead of the embedded demo source.",
)
@click.option(
    "--dir",
    "workdir",
    metavar="DIR",
    default=".demo",
    show_default=True,
    help="Where the demo keeps its files.",
)
@click.option(
    "--duration",
    metavar="DURATION",
    default="0s",
    help='Stop after this long (default: run until Ctrl-C), e.g. "3m".',
)
@click.option("--port", default=8080, show_default=True, help="Port of the status page.")
@click.option("--auto", is_flag=True, help="Acknowledge and accept by itself instead of waiting for you.")
@click.option("--keep", is_flag=True, help="Continue in the demo folder instead of starting afresh.")
def demo(source_url: str | None, workdir: str, duration: str, port: int, auto: bool, keep: bool) -> None:
    """Run the whole stack on an embedded, changing demo source."""
    import sqlalchemy as sa

    from .demo.story import run_demo

    seconds = _duration(duration, "--duration")
    if source_url:
        try:
            sa.make_url(source_url)
        except sa.exc.ArgumentError:
            raise click.BadParameter(
                f"{source_url!r} is not a database URL; write it like "
                f"postgresql://user:password@host:5432/dbname",
                param_hint="--source",
            ) from None
    run_demo(workdir, source_url=source_url, duration=seconds, port=port, auto=auto, keep=keep)


if __name__ == "__main__":  # pragma: no cover
    main()
