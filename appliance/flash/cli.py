"""`appliance flash`: a thin click layer over the flasher; errors become clean messages."""

from __future__ import annotations

import json
import os
import sys

import click

from appliance.flash import plan, prepare, safety
from appliance.flash.drive import Drive, human_size
from appliance.flash.errors import FlashError, FlashInterrupted
from appliance.flash.flasher import Flasher, Outcome
from appliance.image.cli import CONFIG_HELP, customize_options, given, options_from


class Interrupted(click.ClickException):
    """Ctrl-C during a flash: exit 130 like a shell, with the state of the card."""

    exit_code = 130


def _table(drives: list[Drive]) -> str:
    """Return the --list table: identifier, model, size, removable, writable, target or why."""
    rows = [("ID", "MODEL", "SIZE", "REMOVABLE", "WRITABLE", "TARGET")]
    for d in drives:
        yes = lambda v: "yes" if v else "no"  # noqa: E731
        verdict = "yes" if d.target else f"no: {d.why}"
        rows.append((d.id, d.model or "-", human_size(d.size), yes(d.removable), yes(d.writable), verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for r in rows:
        lines.append("  ".join(r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5])
    return "\n".join(lines)


def _list(force: bool, as_json: bool) -> None:
    """Print every whole physical disk and whether it may be written."""
    _, drives = prepare.listing(force)
    if as_json:
        click.echo(json.dumps([d.to_json() for d in drives], indent=2))
    elif drives:
        click.echo(_table(drives))
    else:
        click.echo("No disks found.")


def _confirm(target: Drive, image_name: str, yes: bool, proposed: bool) -> None:
    """Show model, size and identifier and ask before anything is erased."""
    verb = "Found one card" if proposed else "Target"
    click.echo(f"{verb}: {target.describe()}", err=True)
    names = [os.path.basename(v.rstrip("/")) for v in target.volumes()]
    if names:
        click.echo(f"  its volume(s), erased too: {', '.join(names)}", err=True)
    if yes:
        return
    what = "file" if target.is_file else "disk"
    click.confirm(
        f"Erase everything on {target.id} and write {image_name} to this {what}?",
        default=False,
        abort=True,
        err=True,
    )


def _summary(outcome: Outcome, target: Drive) -> str:
    """Return the closing line: what was written, checked and ejected."""
    line = f"Done: wrote {human_size(outcome.size)} to {target.raw_path}"
    if outcome.write_seconds:
        rate = outcome.size / outcome.write_seconds / 1e6
        line += f" in {outcome.write_seconds:.1f} s ({rate:.0f} MB/s)"
    if outcome.verify_seconds is not None:
        line += f", verified (SHA-256 {outcome.sha256[:16]}...) in {outcome.verify_seconds:.1f} s"
    if outcome.customized:
        line += ", appliance baked in"
    if outcome.ejected:
        line += "; ejected, you can remove the card"
    if outcome.missing:
        return "Written, but not done: " + line.split(": ", 1)[1] + "; the card is INCOMPLETE."
    return line + "."


@click.command("flash")
@click.option("--image", "image_path", metavar="PATH", help="Image file: .img, .img.xz, .gz or .zip.")
@click.option(
    "--os",
    "os_name",
    metavar="NAME",
    help='Download this image of the official Raspberry Pi OS list, e.g. "Raspberry Pi '
    'OS Lite (64-bit)" or "lite 64".',
)
@click.option(
    "--device",
    metavar="ID|PATH",
    help="Disk to write (disk4, /dev/sdb, from --list) or a file. Default: the only card.",
)
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False),
    help=CONFIG_HELP + " Checked with everything it needs before writing.",
)
@customize_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (needs --device).")
@click.option("--dry-run", is_flag=True, help="Print every command and write; change nothing.")
@click.option(
    "--dd",
    "use_dd",
    is_flag=True,
    help="Write with the classic `dd bs=1m` (decompressing to a temporary file first).",
)
@click.option("--force", is_flag=True, help="Allow a disk above the size limit (128 GiB).")
@click.option(
    "--fix-readonly",
    is_flag=True,
    help="macOS: share the card as a File Sharing folder while writing (Read-only fix).",
)
@click.option("--no-verify", is_flag=True, help="Skip reading the card back.")
@click.option("--no-eject", is_flag=True, help="Leave the card attached afterwards.")
@click.option("--list", "list_only", is_flag=True, help="List every disk and whether it may be written.")
@click.option("--json", "as_json", is_flag=True, help="With --list: print JSON.")
def flash(
    image_path: str | None,
    os_name: str | None,
    device: str | None,
    config_file: str | None,
    yes: bool,
    dry_run: bool,
    use_dd: bool,
    force: bool,
    fix_readonly: bool,
    no_verify: bool,
    no_eject: bool,
    list_only: bool,
    as_json: bool,
    **params,
) -> None:
    """Flash Raspberry Pi OS onto an SD card: choose the card safely, write, verify, eject.

    With --config and the options below it, the card is made complete: the appliance's
    config, its secrets, a login, host name and network. Everything is checked before the
    first byte is written.
    """
    opts = plan.Options(
        verify=not no_verify,
        eject=not no_eject,
        dd=use_dd,
        fix_readonly=fix_readonly,
        config=config_file,
        customize=options_from(params) if config_file else None,
    )
    try:
        if given(params) and not config_file:
            raise click.UsageError(
                f"{', '.join(given(params))} customize the card and need --config FILE (the "
                "appliance config to bake in); without --config the image is written unchanged."
            )
        if list_only:
            return _list(force, as_json)
        if as_json:
            raise click.UsageError("--json goes with --list.")
        if yes and not device and not dry_run:
            raise click.UsageError(
                "--yes needs --device: the disk is never chosen for you without a question. "
                "See `appliance flash --list`."
            )
        _flash(image_path, os_name, device, opts, yes, dry_run, force)
    except FlashInterrupted as exc:
        raise Interrupted(str(exc)) from None
    except FlashError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # the last net: a file or device the system would not let us use
        where = f" ({exc.filename})" if exc.filename else ""
        raise click.ClickException(f"{exc.strerror or exc}{where}.") from None


def _flash(image_path, os_name, device, opts: plan.Options, yes, dry_run, force) -> None:
    """Resolve image and target, confirm, then print or run the plan."""
    image, os_image = prepare.image(image_path, os_name)
    if os_image is not None:
        opts.download_url = os_image.url
        if opts.customize is not None:
            opts.customize.listed_format = os_image.init_format
    platform, target = prepare.target(device, force)
    safety.check_not_the_image(target, image.path)
    safety.check_fits(target, image.size)
    note = prepare.fix_readonly_note(target, platform) if opts.fix_readonly else ""
    if note:
        click.echo(note, err=True)
    flasher = Flasher(image, target, platform, opts, os_image)  # checks --config and its files
    steps = plan.build(image, target, platform, opts)
    if dry_run:
        click.echo(f"Target: {target.describe()}")
        if flasher.card is not None:
            click.echo(_card_line(flasher.card.missing))
            for note in flasher.card.notes():
                click.echo(note)
        click.echo("Dry run, nothing is changed. The plan:")
        click.echo(plan.render(steps))
        return
    _confirm(target, image.name, yes, proposed=not device)
    outcome = flasher.run(steps)
    click.echo(_summary(outcome, target))
    if outcome.missing:
        click.echo(_card_line(outcome.missing), err=True)


def _card_line(missing: list[str]) -> str:
    """Return whether the card will be complete, and what it lacks."""
    if not missing:
        return "Card: complete (config, secrets and login checked)."
    lines = "\n".join(f"  - {m}" for m in missing)
    return (
        f"Card: INCOMPLETE (--allow-incomplete), it will not boot into a working appliance. Missing:\n{lines}"
    )


def main(argv: list[str] | None = None) -> None:
    """Run `appliance flash` on its own (python -m appliance.flash)."""
    flash.main(args=argv if argv is not None else sys.argv[1:], prog_name="appliance flash")
