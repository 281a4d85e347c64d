"""`appliance doctor`: check everything a deployment needs; say what is wrong and how to fix it.

Each check returns one line: ok, or the problem and its fix. Checks that need an earlier
one (the database needs the tunnel, the tunnel needs the config) are skipped with a note
when that one failed, so the first problem is the one to fix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import Config, load
from .errors import ApplianceError

MIN_FREE_BYTES = 1 << 30  # 1 GiB: below this the replica and the WAL get tight
UNITS = ("appliance-sync", "appliance-web", "appliance-indicator")


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
        return text + (f"\n        fix: {self.fix}" if self.fix else "")


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
            "; ".join(p.fix for p in problems if p.fix) or "see the messages",
        )
    return Check("secrets", True, "readable by this user and private (mode 0600)")


def _ssh(cfg: Config) -> Check:
    if cfg.ssh is None:
        return Check("ssh", None, "no [ssh] section: connecting to the database directly")
    from .sync.tunnel import fingerprint, pinned_host_key

    try:
        key = pinned_host_key(cfg.ssh)
    except ApplianceError as e:
        return Check("ssh", False, str(e), "see the message; the README's 'bastion side' explains pinning")
    return Check(
        "ssh",
        True,
        f"{cfg.ssh.host}:{cfg.ssh.port} reachable, host key {fingerprint(key)} matches {cfg.ssh.known_hosts}",
    )


def _database(cfg: Config) -> tuple[list[Check], dict | None]:
    from .sync.link import SourceLink

    out: list[Check] = []
    with SourceLink(cfg) as link:
        try:
            source = link.source()
            read_only, is_super = source.execute(
                "SELECT current_setting('transaction_read_only'), rolsuper FROM pg_roles "
                "WHERE rolname = current_user"
            )[0]
            shapes = source.describe([t.name for t in cfg.tables])
        except ApplianceError as e:
            return [Check("database", False, str(e), "see the message")], None
    where = f"{cfg.source.user}@{cfg.source.host}:{cfg.source.port}/{cfg.source.database}"
    if read_only != "on":
        out.append(
            Check(
                "database",
                False,
                f"{where}: the session is not read-only",
                "report this: the appliance must never be able to write",
            )
        )
    else:
        out.append(Check("database", True, f"{where}: login works, session read-only"))
    if is_super:
        out.append(
            Check(
                "database role",
                False,
                f"{cfg.source.user} is a superuser",
                "use a role with SELECT only (e.g. GRANT pg_read_all_data)",
            )
        )
    missing = [t.name for t in cfg.tables if t.name not in shapes]
    if missing:
        out.append(
            Check(
                "tables",
                False,
                f"not found at the source: {', '.join(missing)}",
                "check tables.name (schema.table) and that the role may SELECT them",
            )
        )
    else:
        out.append(Check("tables", True, f"all {len(cfg.tables)} configured tables exist"))
    return out, shapes


def _replica(cfg: Config) -> Check:
    from .sync.replica import Replica

    try:
        with Replica(cfg.replica_url) as replica:
            replica.db.execute("BEGIN IMMEDIATE")
            replica.db.execute("ROLLBACK")
    except (ApplianceError, OSError) as e:
        return Check("replica", False, str(e), f"make {Path(cfg.state_dir)} writable by the service user")
    return Check("replica", True, f"{cfg.replica_url} is writable")


def _disk(cfg: Config) -> Check:
    path = Path(cfg.state_dir)
    while not path.exists():
        path = path.parent
    free = shutil.disk_usage(path).free
    detail = f"{free / (1 << 30):.1f} GiB free under {path}"
    if free < MIN_FREE_BYTES:
        return Check("disk", False, detail, "free space (old logs, images) or use a bigger card")
    return Check("disk", True, detail)


def _hardware(cfg: Config) -> list[Check]:
    ind = cfg.indicator
    if ind.mock or os.environ.get("GPIOZERO_PIN_FACTORY") == "mock":
        return [
            Check("gpio", True, "mock pins configured ([indicator] mock = true)"),
            Check("i2c", True, "dummy display configured"),
        ]
    chips = sorted(Path("/dev").glob("gpiochip*"))
    usable = bool(chips) and os.access(chips[0], os.R_OK | os.W_OK)
    gpio = (
        Check("gpio", True, f"{chips[0]} is accessible")
        if usable
        else Check(
            "gpio",
            False,
            "no accessible /dev/gpiochip*",
            "on a Pi: add the service user to group gpio (usermod -aG gpio appliance)",
        )
    )
    if ind.oled == "none":
        return [gpio, Check("i2c", None, 'oled = "none": no display expected')]
    dev = Path(f"/dev/i2c-{ind.i2c_port}")
    present = dev.exists() and os.access(dev, os.R_OK | os.W_OK)
    i2c = (
        Check("i2c", True, f"{dev} is present")
        if present
        else Check(
            "i2c",
            False,
            f"{dev} is missing or not accessible",
            "enable I2C (sudo raspi-config nonint do_i2c 0), reboot, and add the service user to group i2c",
        )
    )
    return [gpio, i2c]


def _units() -> Check:
    if not Path("/run/systemd/system").exists() or not shutil.which("systemctl"):
        return Check("units", None, "systemd is not running here: units not checked")
    out = subprocess.run(["systemctl", "is-active", *UNITS], capture_output=True, text=True)
    states = dict(zip(UNITS, out.stdout.split(), strict=False))
    down = [u for u in UNITS if states.get(u) != "active"]
    if down:
        return Check(
            "units",
            False,
            ", ".join(f"{u} {states.get(u, '?')}" for u in down),
            f"sudo systemctl enable --now {' '.join(down)}; journalctl -u {down[0]}",
        )
    return Check("units", True, "all three units active")


def run(config_path: str) -> list[Check]:
    """Return every check's result, in the order a deployment is fixed."""
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
        steps.append(lambda: _database(cfg)[0])
    steps += [lambda: [_replica(cfg), _disk(cfg)], lambda: _hardware(cfg), lambda: [_units()]]
    for step in steps:
        checks += step()
    return checks
