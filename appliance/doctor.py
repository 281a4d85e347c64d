"""`appliance doctor`: check everything a deployment needs; say what is wrong and how to fix it.

Each check returns one line: ok, or the problem and its fix. Checks that need an earlier
one (the database needs the tunnel, the tunnel needs the config) are skipped with a note
when that one failed, so the first problem is the one to fix. The machine's parts that
doctor reads (``/dev``, systemd, the free-space margin) come in as a ``Machine``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import Config, Problem, load
from .errors import ApplianceError

MIN_FREE_BYTES = 1 << 30  # 1 GiB: below this the replica and the WAL get tight
UNITS = ("appliance-sync", "appliance-web", "appliance-indicator")
SHOWN = 10  # write grants listed in full; more are counted

# What lets the login write, each as the statement that takes it away: grants on tables,
# views and columns (to the role, a role it belongs to, or PUBLIC), pg_write_all_data, and
# ownership (an owner can always write). No % signs: psycopg2 formats this string.
_WRITE_GRANTS = """
WITH rel AS (
    SELECT c.oid, c.relkind, c.relowner, c.relacl,
           quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
), acl AS (
    SELECT r.name, a.privilege_type AS priv, '' AS col, r.relowner = a.grantee AS own, a.grantee
    FROM rel r CROSS JOIN LATERAL aclexplode(r.relacl) a
    UNION ALL
    SELECT r.name, a.privilege_type, ' (' || quote_ident(att.attname) || ')', false, a.grantee
    FROM rel r JOIN pg_attribute att ON att.attrelid = r.oid CROSS JOIN LATERAL aclexplode(att.attacl) a
)
SELECT 'REVOKE ' || string_agg(priv || col, ', ' ORDER BY priv, col) || ' ON ' || name || ' FROM '
       || CASE grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(grantee)) END
FROM acl
WHERE priv IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE') AND NOT own
  AND (grantee = 0 OR pg_has_role(grantee, 'MEMBER'))
GROUP BY name, grantee
UNION ALL
SELECT 'REVOKE pg_write_all_data FROM ' || quote_ident(current_user) FROM pg_roles
WHERE rolname = 'pg_write_all_data' AND pg_has_role(oid, 'MEMBER')
UNION ALL
SELECT 'ALTER TABLE ' || name || ' OWNER TO <another role>' FROM rel
WHERE relkind IN ('r', 'p') AND pg_has_role(relowner, 'MEMBER')
ORDER BY 1
"""


@dataclass
class Check:
    """One line of the report: ok is True, False (a problem) or None (not checked)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = {True: "ok     ", False: "PROBLEM", None: "-      "}[self.ok]
        text = f"{mark} {self.name}: {self.detail}"
        fix = self.fix.replace("\n", "\n" + " " * 13)  # a fix of several lines stays indented
        return text + (f"\n        fix: {fix}" if fix else "")


@dataclass(frozen=True)
class Machine:
    """Where doctor looks at this machine; tests hand in their own folders and commands."""

    dev: Path = Path("/dev")
    systemd: Path = Path("/run/systemd/system")  # exists only while systemd runs (sd_booted)
    systemctl: str = "systemctl"
    timedatectl: str = "timedatectl"
    min_free: int = MIN_FREE_BYTES


def _config(path: str) -> tuple[Check, Config | None]:
    try:
        cfg = load(path)
    except ApplianceError as e:
        return Check("config", False, str(e), "fix each line above, then run appliance config check"), None
    return Check("config", True, f"{path} is valid ({len(cfg.tables)} tables)"), cfg


def _secrets(cfg: Config) -> Check:
    from .config.checks import secret_problems

    problems = secret_problems(cfg)
    if problems:
        return Check(
            "secrets",
            False,
            "; ".join(f"{p.key}: {p.message}" for p in problems),
            "; ".join(p.fix for p in problems if p.fix)
            or "give each file to the service user with mode 0600 (chown appliance, chmod 600)",
        )
    if not _configured_secrets(cfg):
        return Check("secrets", None, "no secrets configured (no password or key file, no variable)")
    return Check("secrets", True, "readable by this user and private (mode 0600)")


def _configured_secrets(cfg: Config) -> bool:
    src, ssh = cfg.source, cfg.ssh
    named = [src.password_file, src.password_env, cfg.web.api_token_file, cfg.web.api_token_env]
    if ssh is not None:
        named += [ssh.key_file, ssh.password_file, ssh.password_env]
    return any(named)


def _ssh(cfg: Config) -> Check:
    if cfg.ssh is None:
        return Check("ssh", None, "no [ssh] section: connecting to the database directly")
    from .sync.tunnel import fingerprint, pinned_host_key

    try:
        key = pinned_host_key(cfg.ssh)
    except ApplianceError as e:
        return Check("ssh", False, str(e), _fix_for(e, cfg))
    return Check(
        "ssh",
        True,
        f"{cfg.ssh.host}:{cfg.ssh.port} reachable, host key {fingerprint(key)} matches {cfg.ssh.known_hosts}",
    )


def _bastion(cfg: Config) -> Check:
    """The login must forward one port and nothing else: no shell, no command."""
    from .secrets import read_secret
    from .sync.tunnel import key_runs_commands

    ssh = cfg.ssh
    assert ssh is not None  # called only after the ssh check passed
    try:
        password = read_secret(
            file=ssh.password_file, env=ssh.password_env, key="ssh.password", environ=cfg.environ
        )
        runs = key_runs_commands(ssh, password)
    except ApplianceError as e:
        return Check("bastion", False, str(e), _fix_for(e, cfg))
    if not runs:
        return Check("bastion", True, f"{ssh.user}@{ssh.host} may forward but not run commands")
    src = cfg.source
    return Check(
        "bastion",
        False,
        f"{ssh.user}@{ssh.host} can run commands on the bastion: whoever takes this Pi gets a shell there",
        "on the bastion, begin this key's line in the user's authorized_keys with\n"
        f'restrict,port-forwarding,permitopen="{src.host}:{src.port}",command="/bin/false"',
    )


def _fix_for(error: ApplianceError, cfg: Config) -> str:
    """Return the concrete next step for a failed connection, by what failed."""
    from .errors import HostKeyError, LoginError, SecretError, TunnelError

    ssh = cfg.ssh
    if isinstance(error, HostKeyError) and ssh is not None:
        return (
            f"ask the bastion's admin for its key's fingerprint; if it matches the one above, "
            f"re-pin it: ssh-keyscan -p {ssh.port} {ssh.host} > {ssh.known_hosts}"
        )
    if isinstance(error, TunnelError) and ssh is not None:
        return (
            f"check ssh.host and ssh.port, that {ssh.host} answers from here (nc -vz {ssh.host} {ssh.port}) "
            f"and that the bastion lets {ssh.user} forward to {cfg.source.host}:{cfg.source.port}"
        )
    if isinstance(error, LoginError):
        return f"check source.user ({cfg.source.user}) and the password in source.password_file with the DBA"
    if isinstance(error, SecretError):
        return "give the file to the service user with mode 0600 (chown appliance, chmod 600)"
    return (
        f"check source.host and source.port ({cfg.source.host}:{cfg.source.port}, as the bastion sees "
        f"them) and that the database is up"
    )


def _database(cfg: Config) -> list[Check]:
    from .sync.link import SourceLink

    with SourceLink(cfg) as link:
        try:
            source = link.source()
            read_only, is_super = source.execute(
                "SELECT current_setting('transaction_read_only'), rolsuper FROM pg_roles "
                "WHERE rolname = current_user"
            )[0]
            # A superuser passes every privilege check: its grants say nothing.
            writes = [] if is_super else [row[0] for row in source.execute(_WRITE_GRANTS)]
            shapes = source.describe([t.name for t in cfg.tables])
            compression = _compression(cfg, link.tunnel.compression if link.tunnel else None)
        except ApplianceError as e:
            return [Check("database", False, str(e), _fix_for(e, cfg))]
    src = cfg.source
    where = f"{src.user}@{src.host}:{src.port}/{src.database}"
    if read_only != "on":
        session = Check(
            "database",
            False,
            f"{where}: the session is not read-only",
            "report this: the appliance must never be able to write",
        )
    else:
        session = Check("database", True, f"{where}: login works, session read-only")
    missing = [t.name for t in cfg.tables if t.name not in shapes]
    tables = (
        Check(
            "tables",
            False,
            f"not found at the source: {', '.join(missing)}",
            "check tables.name (schema.table) and that the role may SELECT them",
        )
        if missing
        else Check("tables", True, f"all {len(cfg.tables)} configured tables exist")
    )
    return [session, _role(src.user, bool(is_super), writes), tables, *compression]


def _compression(cfg: Config, chosen: str | None) -> list[Check]:
    """Say whether the bastion compresses the link (BRIEF 9: a bastion may decline)."""
    if cfg.ssh is None or chosen is None:
        return []
    if not cfg.ssh.compression:
        return [Check("compression", None, "off (ssh.compression = false): the link is plain")]
    if chosen == "none":
        return [
            Check(
                "compression",
                None,
                "the bastion declined compression: the link is plain (rows take about 5x the bytes)",
                "on the bastion, set Compression yes in sshd_config (OpenSSH's default) and reload sshd",
            )
        ]
    return [Check("compression", True, f"the bastion compresses what it sends ({chosen})")]


def _role(user: str, is_super: bool, writes: list[str]) -> Check:
    if is_super:
        return Check(
            "role",
            False,
            f"{user} is a superuser: it can write to, and drop, the production database",
            "log in as a role that can only read; as an administrator of the source, run:\n"
            "CREATE ROLE appliance_ro LOGIN PASSWORD '...'; GRANT pg_read_all_data TO appliance_ro;\n"
            "then set source.user and the password file to that role",
        )
    if writes:
        shown = [f"{w};" for w in writes[:SHOWN]]
        if len(writes) > SHOWN:
            shown.append(f"... and {len(writes) - SHOWN} more")
        return Check(
            "role",
            False,
            f"{user} can write to the source, which the appliance must never do ({len(writes)} grant(s))",
            "as an administrator of the source, run:\n" + "\n".join(shown),
        )
    return Check("role", True, f"{user} is not a superuser and holds no write grants")


def _replica(cfg: Config) -> Check:
    from .sync.replica import sqlite_path

    path = sqlite_path(cfg.replica_url)
    if path is None:
        return Check(
            "replica", False, f"{cfg.replica_url} is not SQLite", "use a sqlite:/// URL in replica.url"
        )
    return _sqlite_file("replica", Path(path), "the agent copies every table again into a fresh file")


def _state_store(cfg: Config) -> Check:
    return _sqlite_file(
        "state store",
        Path(cfg.state_dir) / "state.sqlite",
        "the agent starts a fresh one (health history and events are lost, the data is not)",
    )


def _sqlite_file(name: str, path: Path, after_move: str) -> Check:
    """Check a SQLite file the agent writes: writable and undamaged, without creating it
    (doctor runs as root: a file it made would be root's, and the service could not write it)."""
    folder = path.parent
    fix_folder = f"make {folder} a folder the service user can write: sudo install -d -o appliance {folder}"
    if not path.exists():
        if folder.is_dir() and os.access(folder, os.W_OK):
            return Check(name, True, f"{path} does not exist yet; the agent creates it in a writable folder")
        ancestor = next(p for p in (folder, *folder.parents) if p.exists())
        if not folder.exists() and ancestor.is_dir() and os.access(ancestor, os.W_OK):
            return Check(
                name, None, f"{folder} does not exist yet: the agent's unit creates it when it starts"
            )
        return Check(
            name, False, f"{path} cannot be written: {ancestor} is not a writable folder", fix_folder
        )
    if not os.access(path, os.W_OK) or not os.access(folder, os.W_OK):
        return Check(name, False, f"{path} (or its folder) cannot be written", fix_folder)
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = db.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            db.close()
    except sqlite3.DatabaseError as e:
        result = str(e)
    if result != "ok":
        return Check(
            name,
            False,
            f"{path} is damaged ({result})",
            f"stop the agent (systemctl stop appliance-sync), move {path} aside, start it: {after_move}",
        )
    return Check(name, True, f"{path} is writable and passes SQLite's quick_check")


def _disk(cfg: Config, machine: Machine) -> Check:
    path = Path(cfg.state_dir)
    while not path.exists():
        path = path.parent
    free = shutil.disk_usage(path).free
    detail = f"{free / (1 << 30):.1f} GiB free under {path}, {machine.min_free / (1 << 30):.1f} GiB needed"
    if free < machine.min_free:
        return Check(
            "disk",
            False,
            detail,
            f"free space under {path} (sudo journalctl --vacuum-size=100M, old images) or use a bigger card",
        )
    return Check("disk", True, detail)


def _hardware(cfg: Config, machine: Machine) -> list[Check]:
    ind = cfg.indicator
    if ind.mock or cfg.environ.get("GPIOZERO_PIN_FACTORY") == "mock":
        return [
            Check("gpio", True, "mock pins configured ([indicator] mock = true)"),
            Check("i2c", True, "dummy display configured"),
        ]
    chips = sorted(machine.dev.glob("gpiochip*"))
    usable = [c for c in chips if os.access(c, os.R_OK | os.W_OK)]
    if not chips:
        gpio = Check(
            "gpio",
            False,
            f"no {machine.dev}/gpiochip*: this machine has no GPIO, so no LEDs and no button",
            "run the indicator on a Raspberry Pi; elsewhere set [indicator] mock = true",
        )
    elif not usable:
        gpio = Check(
            "gpio",
            False,
            f"{chips[0]} is not readable and writable by this user",
            "add the service user to group gpio (sudo usermod -aG gpio appliance), then restart its units",
        )
    else:
        gpio = Check("gpio", True, f"{usable[0]} is accessible")
    if ind.oled == "none":
        return [gpio, Check("i2c", None, 'oled = "none": no display expected')]
    dev = machine.dev / f"i2c-{ind.i2c_port}"
    if not dev.exists():
        i2c = Check(
            "i2c",
            False,
            f"no {dev}: I2C is off, or the display is on another bus than [indicator] i2c_port",
            "on a Pi: sudo raspi-config nonint do_i2c 0, then reboot; "
            'without a display set [indicator] oled = "none"',
        )
    elif not os.access(dev, os.R_OK | os.W_OK):
        i2c = Check(
            "i2c",
            False,
            f"{dev} is not readable and writable by this user",
            "add the service user to group i2c (sudo usermod -aG i2c appliance), then restart its units",
        )
    else:
        i2c = Check("i2c", True, f"{dev} is accessible")
    return [gpio, i2c]


def _ask(command: list[str]) -> str | None:
    """Return what a systemd tool printed, or None when it could not be run."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None


def _units(machine: Machine) -> Check:
    if not machine.systemd.exists():
        return Check("units", None, f"systemd is not running here (no {machine.systemd}): units not checked")
    out = _ask([machine.systemctl, "is-active", *UNITS])
    if out is None:
        return Check("units", None, f"{machine.systemctl} could not be run: units not checked")
    states = dict(zip(UNITS, out.split(), strict=False))
    down = [u for u in UNITS if states.get(u) != "active"]
    if down:
        return Check(
            "units",
            False,
            ", ".join(f"{u} {states.get(u, '?')}" for u in down),
            f"sudo systemctl enable --now {' '.join(down)}; journalctl -u {down[0]}",
        )
    return Check("units", True, "all three units active")


def _clock(machine: Machine) -> Check:
    # Lag and maintenance windows are judged only on a synchronised clock (BRIEF 7); where
    # nobody can tell (no systemd: CI, containers, laptops), the clock counts as synchronised.
    unknown = "synchronisation cannot be determined here ({}): counted as synchronised"
    if not machine.systemd.exists():
        return Check("clock", True, unknown.format("systemd is not running"))
    out = _ask([machine.timedatectl, "show", "--property=NTPSynchronized", "--value"])
    if out is None or out.strip() not in ("yes", "no"):
        return Check("clock", True, unknown.format(f"{machine.timedatectl} gave no answer"))
    if out.strip() == "no":
        return Check(
            "clock",
            False,
            "not synchronised: lag and maintenance windows are not judged until it is",
            "let the Pi reach an NTP server (UDP port 123); sudo timedatectl set-ntp true; "
            "timedatectl timesync-status",
        )
    return Check("clock", True, "synchronised (NTP)")


def run(config_path: str, machine: Machine | None = None) -> list[Check]:
    """Return every check's result, in the order a deployment is fixed."""
    machine = machine or Machine()
    first, cfg = _config(config_path)
    if cfg is None:
        return [first]
    checks = [first, _secrets(cfg)]
    ssh = _ssh(cfg)
    checks.append(ssh)
    steps: list[Callable[[], list[Check]]] = []
    if ssh.ok is False:
        checks.append(Check("database", None, "not checked: the tunnel must work first"))
    else:
        if ssh.ok:
            steps.append(lambda: [_bastion(cfg)])
        steps.append(lambda: _database(cfg))
    steps += [
        lambda: [_state_store(cfg), _replica(cfg), _disk(cfg, machine)],
        lambda: _hardware(cfg, machine),
        lambda: [_units(machine), _clock(machine)],
    ]
    for step in steps:
        checks += step()
    return checks


def host_keys(cfg: Config) -> tuple[list[str], str, str]:
    """Return (the pinned fingerprints, the presented one, the known_hosts line that pins it)."""
    from .errors import ConfigError
    from .sync.tunnel import fingerprint, known_keys, presented_key

    ssh = cfg.ssh
    if ssh is None:
        raise ConfigError([Problem("ssh", "there is no [ssh] section", "nothing to pin without a bastion")])
    pinned = known_keys(ssh)
    key = presented_key(ssh.host, ssh.port, [], ssh.connect_timeout)
    entry = ssh.host if ssh.port == 22 else f"[{ssh.host}]:{ssh.port}"
    return (
        [fingerprint(k) for k in pinned.values()],
        fingerprint(key),
        f"{entry} {key.get_name()} {key.get_base64()}",
    )


def repin(cfg: Config, line: str) -> None:
    """Replace the bastion's lines in known_hosts by ``line`` (other hosts' lines are kept)."""
    assert cfg.ssh is not None
    path = Path(cfg.ssh.known_hosts)
    entry = line.split(" ", 1)[0]
    kept = []
    if path.exists():
        kept = [x for x in path.read_text().splitlines() if x.split(" ", 1)[0] != entry]
    tmp = path.with_name(path.name + ".new")
    tmp.write_text("\n".join([*kept, line]) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
