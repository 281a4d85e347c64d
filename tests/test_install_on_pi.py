"""scripts/install-on-pi: shellcheck, the plan, idempotence, releases, upgrades and rollbacks.

The script runs for real in a throwaway root (tests/support/install_pi.py): the commands
that would change the machine are stand-ins on PATH that record their calls and keep their
state in files; files, owners and modes are real, and the page the upgrade checks is a real
``appliance web`` started from the release's own copy of the code.
"""

from __future__ import annotations

import hashlib
import os
import pty
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support.install_pi import REPO, SCRIPT, UNITS, Pi, break_readyz, copy_source, make_wheel
from support.install_stores import old_store

from appliance.clock import iso, utcnow
from appliance.health import migrations

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="owners are set with chown: needs root")


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
@pytest.mark.parametrize("script", ["scripts/install-on-pi", "image/firstrun.sh", "image/firstboot.sh"])
def test_install_scripts_pass_shellcheck(script):
    out = subprocess.run(["shellcheck", str(REPO / script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_install_dry_run_prints_the_full_plan_and_changes_nothing(tmp_path):
    pi = Pi(tmp_path, raspi_config=False, groups=False)
    payload = pi.payload(tmp_path)
    before = pi.snapshot()
    out = pi.run("--dry-run", "--payload", str(payload)).stdout
    plan = [line.strip() for line in out.splitlines() if "would run:" in line]
    release = next(pi.releases / line.split()[2] for line in out.splitlines() if line.startswith("== rel"))
    expected = [
        "apt-get install -y -qq --no-install-recommends python3-venv python3-pip i2c-tools python3-lgpio",
        "groupadd --system gpio",
        "groupadd --system i2c",
        "useradd --system --user-group --home-dir /var/lib/appliance --no-create-home "
        "--shell /usr/sbin/nologin --groups gpio,i2c appliance",
        "dtparam=i2c_arm=on",
        "appliance-i2c.conf",
        "useradd --system --user-group --home-dir /nonexistent --no-create-home "
        "--shell /usr/sbin/nologin --groups appliance appliance-web",
        "/etc/appliance",
        "chown appliance:appliance",
        "id_ed25519",
        "chmod 600",
        "chmod 640",
        "write_token",
        "install -d -m 2770",
        f"cp -a {pi.source}/appliance {release}/src/",
        f"-m venv --system-site-packages {release}/venv",
        f"venv/bin/python -m pip install --quiet -c {release}/src/scripts/constraints.txt {release}/src[pi]",
        *[f"install -D -m 0644 {pi.source}/systemd/{u}" for u in UNITS],
        "systemctl daemon-reload",
        f"ln -sfn releases/{release.name}",
        "mv -T",
        *[f"systemctl enable {u}" for u in UNITS],
        *[f"systemctl start {u}" for u in UNITS],
    ]
    for piece in expected:
        assert any(piece in line for line in plan), f"plan lacks {piece!r}:\n{out}"
    assert "db-secret" not in out and "secret\n" not in out
    assert "change(s) planned" in out
    assert pi.calls() == [] and pi.snapshot() == before


@needs_root
@pytest.mark.parametrize("raspi_config", [True, False])
def test_install_twice_changes_nothing_the_second_time(tmp_path, raspi_config):
    pi = Pi(tmp_path, raspi_config=raspi_config)
    payload = pi.payload(tmp_path)
    first = pi.run("--payload", str(payload))
    calls = pi.calls()
    assert any(c.startswith("useradd") for c in calls) and "Done:" in first.stdout
    after_first = pi.snapshot()
    second = pi.run("--payload", str(payload))
    assert pi.calls() == [], second.stdout
    assert pi.snapshot() == after_first
    assert "Nothing to change" in second.stdout
    assert pi.run("--dry-run", "--payload", str(payload)).stdout.count("would run:") == 0


@needs_root
def test_install_result_on_the_pi(tmp_path):
    pi = Pi(tmp_path, raspi_config=False)
    pi.run("--payload", str(pi.payload(tmp_path)))
    calls = pi.calls()
    assert "systemctl daemon-reload" in calls
    assert [c for c in calls if c.startswith("systemctl start")] == [f"systemctl start {u}" for u in UNITS]
    release = pi.releases / pi.current()
    assert re.fullmatch(r"0\.1\.0-[0-9a-f]{12}", pi.current())  # the version and a hash of the build
    assert (release / "src/appliance/__init__.py").read_bytes() == (
        pi.source / "appliance/__init__.py"
    ).read_bytes()
    # Into the release's own venv, from its own copy of the source, with the Pi's side ([pi]).
    pip = f"-m pip install --quiet -c {release}/src/scripts/constraints.txt {release}/src[pi]"
    assert f"venv-python {pip}" in calls
    assert (release / "venv/code-path").read_text().strip() == f"{release}/src"  # what pip installed
    for unit in UNITS:
        assert (pi.root / "etc/systemd/system" / unit).read_bytes() == (REPO / "systemd" / unit).read_bytes()
    uid, gid = pi.ids("appliance")
    web_uid, web_gid = pi.ids("appliance-web")
    assert pi.group_members("gpio") == ["pi", "appliance"] and pi.group_members("i2c") == ["pi", "appliance"]
    assert pi.group_members("appliance") == ["appliance-web"]  # the page shares the state folder
    assert web_uid != uid and web_gid != gid
    etc = pi.root / "etc/appliance"
    assert (etc.stat().st_uid, etc.stat().st_gid, oct(etc.stat().st_mode & 0o777)) == (0, gid, "0o750")
    for name, owner, group, mode in [
        ("id_ed25519", uid, gid, 0o600),
        ("source.password", uid, gid, 0o600),
        ("appliance.toml", 0, gid, 0o640),
        ("known_hosts", 0, gid, 0o640),
        ("api.token", 0, web_gid, 0o640),
    ]:
        st = (etc / name).stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (owner, group, mode), name
    st = pi.state_dir.stat()
    assert (st.st_uid, st.st_gid, oct(st.st_mode & 0o7777)) == (uid, gid, "0o2770")
    config = (pi.root / "boot/firmware/config.txt").read_text()
    assert config.endswith("[all]\ndtparam=i2c_arm=on\n")
    assert (pi.root / "etc/modules-load.d/appliance-i2c.conf").read_text() == "i2c-dev\n"


@needs_root
def test_install_update_restarts_what_changed(tmp_path):
    pi = Pi(tmp_path)
    pi.run("--payload", str(pi.payload(tmp_path)))
    pi.calls()
    unit = pi.source / "systemd/appliance-web.service"
    unit.write_text(unit.read_text().replace("RestartSec=5s", "RestartSec=7s"))
    pi.run()
    calls = pi.calls()
    assert f"install -D -m 0644 {unit}" not in calls  # install runs for real, not via a stand-in
    assert "systemctl daemon-reload" in calls
    assert [c for c in calls if "restart" in c] == [f"systemctl restart {u}" for u in UNITS]
    assert (pi.root / "etc/systemd/system/appliance-web.service").read_text() == unit.read_text()


@needs_root
def test_install_without_config_enables_but_does_not_start(tmp_path):
    pi = Pi(tmp_path)
    out = pi.run().stdout
    calls = pi.calls()
    assert "appliance.toml is missing" in out
    assert [c for c in calls if c.startswith("systemctl enable")] == [f"systemctl enable {u}" for u in UNITS]
    assert not [c for c in calls if c.startswith("systemctl start")]


@needs_root
def test_install_first_boot_disables_the_installer(tmp_path):
    pi = Pi(tmp_path)
    (pi.state / "is-enabled-appliance-firstboot.service").touch()
    pi.run("--first-boot", "--payload", str(pi.payload(tmp_path)))
    assert "systemctl disable appliance-firstboot.service" in pi.calls()
    pi.run("--first-boot", "--payload", str(tmp_path / "payload"))
    assert pi.calls() == []


def test_install_needs_root_unless_dry_run(tmp_path):
    pi = Pi(tmp_path)
    fake_id = pi.bin / "id"  # a user, as far as the script can tell
    fake_id.write_text("#!/bin/sh\necho 1000\n")
    fake_id.chmod(0o755)
    out = pi.run(check=False)
    assert out.returncode == 1 and "run as root" in out.stderr
    assert pi.run("--dry-run").returncode == 0
    assert pi.calls() == []


# -- upgrades, rollbacks, releases ----------------------------------------------------------


@pytest.fixture
def live(tmp_path):
    """A Pi with the real package as its checkout, installed, its units recorded as running.

    The state store is one an earlier release left (schema 1, with data), so an upgrade has
    something to migrate; from then on the page runs for real (``real_units``).
    """
    pi = Pi(tmp_path, full_source=True)
    pi.run("--payload", str(pi.payload(tmp_path, pi.real_config())))
    old_store(pi.state_dir, 1, synced_at=iso(utcnow()))
    pi.calls()
    pi.real_units = ["appliance-web.service"]
    yield pi
    pi.close()


def variant(pi: Pi, name: str, broken: bool = False) -> Path:
    """Another build of the same version: a copy of the checkout with one change."""
    source = copy_source(pi.tmp / name)
    init = source / "appliance/__init__.py"
    init.write_text(init.read_text() + f"# build {name}\n")
    return break_readyz(source) if broken else source


def running_code(pi: Pi, unit: str = "appliance-web.service") -> str:
    """The code the unit's real process runs (the release's path its python imports from)."""
    environ = Path(f"/proc/{pi.pid(unit)}/environ").read_bytes().split(b"\0")
    return next(v.decode() for v in environ if v.startswith(b"PYTHONPATH=")).split("=", 1)[1].split(":")[0]


def readyz(pi: Pi) -> int:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{pi.port}/readyz", timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code


def order(calls: list[str]) -> list[str]:
    return [c for c in calls if c.split()[1:2] in (["stop"], ["start"])]


STOP = [f"systemctl stop {u}" for u in reversed(UNITS)]
START = [f"systemctl start {u}" for u in UNITS]


@needs_root
def test_upgrade_switches_keeps_the_old_release_and_migrates_the_state(live):
    old, store = live.current(), live.state_dir / "state.sqlite"
    before = store.read_bytes()
    out = live.run("--upgrade", str(variant(live, "b")))
    new = live.current()
    assert new != old and new.startswith("0.1.0-") and (live.releases / old / "venv").is_dir()
    assert f"release {new}" in out.stdout and "/readyz answers: ready" in out.stdout
    calls = live.calls()
    assert order(calls) == STOP + START  # stopped last to first, started first to last
    built = next(i for i, c in enumerate(calls) if c.startswith("venv-python -m pip install"))
    assert built < calls.index(STOP[0])  # built beside the running release, then stopped
    # The copy is the store as it was; the store itself is now at this code's schema.
    assert (live.state_dir / f"state.sqlite.before-{new}").read_bytes() == before
    db = sqlite3.connect(store)
    assert db.execute("PRAGMA user_version").fetchone()[0] == migrations.latest()
    assert db.execute("SELECT rows FROM tables").fetchall() == [(1200,)]
    db.close()
    assert oct(store.stat().st_mode & 0o777) == "0o660" and store.stat().st_gid == live.gid("appliance")
    # The page really runs, from the new release's own code, through the current link.
    assert readyz(live) == 200 and running_code(live) == str(live.releases / new / "src")


@needs_root
def test_upgrade_to_a_broken_build_rolls_back_by_itself(live):
    """The new build's /readyz fails for real: link, units and state store go back."""
    old, store = live.current(), live.state_dir / "state.sqlite"
    before = store.read_bytes()
    broken = variant(live, "broken", broken=True)
    out = live.run("--upgrade", str(broken), "--check-timeout", "30", check=False)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "failed its check: /readyz on 127.0.0.1" in out.stderr and "answers 500" in out.stderr
    assert f"Rolled back to {old} (it runs again)" in out.stderr
    assert live.current() == old
    assert store.read_bytes() == before  # byte for byte the store of before the upgrade
    assert sorted(p.name for p in live.releases.iterdir()) == [old]  # the broken one is gone
    assert not list(live.state_dir.glob("state.sqlite.*-0.1.0-*"))  # and so are its copies
    calls = live.calls()
    assert order(calls) == STOP + START + STOP + START
    assert readyz(live) == 200 and running_code(live) == str(live.releases / old / "src")


@needs_root
def test_upgrade_during_a_source_outage_is_kept(live):
    """A page that answers 503 while `status` says outage works: the source is down, not the build."""
    db = sqlite3.connect(live.state_dir / "state.sqlite")
    db.execute("UPDATE tables SET last_sync = '2026-01-01T00:00:00Z'")  # lag far above max_lag
    db.commit()
    db.close()
    old = live.current()
    out = live.run("--upgrade", str(variant(live, "b")), "--check-timeout", "2")
    assert live.current() != old and "appliance status says outage: the page works" in out.stdout
    assert readyz(live) == 503


@needs_root
def test_upgrade_that_cannot_be_installed_changes_nothing(live):
    old = live.current()
    live.extra_env["FAKE_PIP_FAIL"] = "1"
    out = live.run("--upgrade", str(variant(live, "b")), check=False)
    assert out.returncode == 1 and f"Nothing was switched: {old} still runs" in out.stderr
    assert live.current() == old and sorted(p.name for p in live.releases.iterdir()) == [old]
    assert order(live.calls()) == []  # the units were never stopped


@needs_root
def test_rollback_by_hand_goes_back_with_the_state_store(live):
    old = live.current()
    live.run("--upgrade", str(variant(live, "b")))
    new = live.current()
    copy = (live.state_dir / f"state.sqlite.before-{new}").read_bytes()
    live.calls()
    out = live.run("--rollback")
    assert f"Rolled back from {new} to {old}" in out.stdout
    assert live.current() == old and (live.releases / new).is_dir()  # forward again: --upgrade
    assert (live.state_dir / "state.sqlite").read_bytes() == copy
    assert (live.state_dir / f"state.sqlite.after-{new}").exists()  # the newer store, kept aside
    assert order(live.calls()) == STOP + START
    assert readyz(live) == 200 and running_code(live) == str(live.releases / old / "src")
    again = live.run("--rollback", check=False)
    assert again.returncode == 1 and f"no release older than {old}" in again.stderr


@needs_root
def test_install_keeps_the_last_three_releases(tmp_path):
    pi = Pi(tmp_path)
    shutil.rmtree(pi.root / "run/systemd")  # an image being prepared: switches without units
    pi.run("--payload", str(pi.payload(tmp_path)))
    made = [pi.current()]
    for name in "bcd":
        (pi.state_dir / f"state.sqlite.before-{made[0]}").write_text("a copy made for the first")
        pi.run("--upgrade", str(variant(pi, name)))
        made.append(pi.current())
    assert len(set(made)) == 4
    assert sorted(p.name for p in pi.releases.iterdir()) == sorted(made[1:])
    assert not (pi.state_dir / f"state.sqlite.before-{made[0]}").exists()
    pi.run("--rollback")  # the newest but one runs now: nothing more is deleted
    assert pi.current() == made[2] and sorted(p.name for p in pi.releases.iterdir()) == sorted(made[1:])


def old_layout(pi: Pi) -> None:
    """What install-on-pi made before releases: one venv under /opt/appliance, updated in place."""
    opt = pi.root / "opt/appliance"
    shutil.copytree(pi.source, opt / "src")
    env = pi.env()
    subprocess.run([str(pi.bin / "fake-python"), "-m", "venv", str(opt / "venv")], env=env, check=True)
    subprocess.run(
        [str(opt / "venv/bin/python"), "-m", "pip", "install", f"{opt}/src[pi]"], env=env, check=True
    )
    (opt / ".installed-source").write_text("0123456789abcdef\n")
    units = pi.root / "etc/systemd/system"
    units.mkdir(parents=True)
    for unit in UNITS:
        text = (REPO / "systemd" / unit).read_text()
        (units / unit).write_text(text.replace("/opt/appliance/current/venv", "/opt/appliance/venv"))
        (pi.state / f"is-enabled-{unit}").touch()
        (pi.state / f"is-active-{unit}").touch()
    store = old_store(pi.state_dir, 2, synced_at=iso(utcnow()))
    store.chmod(0o600)  # the units' umask was 0077


@needs_root
def test_install_moves_the_old_layout_to_releases(tmp_path):
    pi = Pi(tmp_path, full_source=True)
    old_layout(pi)
    pi.real_units = ["appliance-web.service"]
    try:
        out = pi.run("--payload", str(pi.payload(tmp_path, pi.real_config())))
        new, opt = pi.current(), pi.root / "opt/appliance"
        assert "becomes release 'legacy'" in out.stdout and new.startswith("0.1.0-")
        assert (
            os.readlink(pi.releases / "legacy/venv") == "../../venv" and (opt / "venv/bin/appliance").exists()
        )
        assert not (opt / ".installed-source").exists()
        unit = (pi.root / "etc/systemd/system/appliance-web.service").read_text()
        assert "ExecStart=/opt/appliance/current/venv/bin/appliance web" in unit
        store = pi.state_dir / "state.sqlite"
        assert oct(store.stat().st_mode & 0o777) == "0o660" and store.stat().st_gid == pi.gid("appliance")
        assert readyz(pi) == 200 and running_code(pi) == str(pi.releases / new / "src")
        # The old venv is the release to go back to, until it is pruned like any other.
        pi.run("--rollback")
        assert pi.current() == "legacy" and running_code(pi) == str(opt / "src")
    finally:
        pi.close()


@needs_root
def test_install_from_the_payloads_wheels_without_network(tmp_path):
    pi = Pi(tmp_path, full_source=True)
    payload = pi.payload(tmp_path)
    wheel = make_wheel(pi.source, payload / "wheels", "0.1.0")
    pi.run("--payload", str(payload))
    name = f"0.1.0-{hashlib.sha256(wheel.read_bytes()).hexdigest()[:12]}"
    assert pi.current() == name
    release = pi.releases / name
    pip = f"-m pip install --quiet --no-index --find-links {payload}/wheels {release}/src/{wheel.name}[pi]"
    assert f"venv-python {pip}" in pi.calls()
    assert (release / "src" / wheel.name).read_bytes() == wheel.read_bytes()
    # What runs is the wheel's code, unpacked into the release's venv.
    help_text = subprocess.run(
        [str(release / "venv/bin/appliance"), "state", "migrate", "--help"], env=pi.env(), capture_output=True
    )
    assert help_text.returncode == 0 and b"schema" in help_text.stdout
    assert (release / "venv/code-path").read_text().strip() == f"{release}/venv/site"


@needs_root
def test_first_boot_uses_the_wheels_the_card_carries(tmp_path):
    pi = Pi(tmp_path, full_source=True)
    card = pi.root / "boot/firmware/appliance/wheels"  # firstboot.sh leaves the folder there
    make_wheel(pi.source, card, "0.1.0")
    pi.run("--first-boot", "--payload", str(pi.payload(tmp_path)))
    assert any(f"--no-index --find-links {card} " in c for c in pi.calls())


@needs_root
def test_upgrade_to_a_version_from_the_wheels_or_from_pypi(tmp_path):
    pi = Pi(tmp_path, full_source=True)
    shutil.rmtree(pi.root / "run/systemd")
    payload = pi.payload(tmp_path)
    pi.run("--payload", str(payload))
    make_wheel(pi.source, payload / "wheels", "0.2.0")
    pi.run("--upgrade", "0.2.0", "--payload", str(payload))
    assert pi.current().startswith("0.2.0-")
    assert any("--no-index" in c and "appliance-0.2.0-py3-none-any.whl" in c for c in pi.calls())
    pypi = tmp_path / "pypi"  # the stand-in pip downloads from here
    make_wheel(pi.source, pypi, "0.3.0")
    pi.extra_env["FAKE_PYPI"] = str(pypi)
    pi.run("--upgrade", "0.3.0")
    calls = pi.calls()
    assert pi.current().startswith("0.3.0-") and any(
        "-m pip download" in c and "appliance==0.3.0" in c for c in calls
    )
    assert not any("--no-index" in c for c in calls)
    missing = pi.run("--upgrade", "0.4.0", check=False)
    assert missing.returncode == 1 and "cannot download appliance==0.4.0 from PyPI" in missing.stderr
    assert pi.current().startswith("0.3.0-")


# -- least privilege: who can read what -------------------------------------------------------


@needs_root
def test_install_token_generated_once_and_never_printed(tmp_path):
    pi = Pi(tmp_path)
    first = pi.run("--payload", str(pi.payload(tmp_path)))
    token = (pi.root / "etc/appliance/api.token").read_text()
    assert len(token) == 65 and int(token, 16) and token.endswith("\n")  # 32 random bytes, hex
    assert token.strip() not in first.stdout + first.stderr  # not a terminal: only where it is
    assert "/etc/appliance/api.token" in first.stdout
    second = pi.run("--payload", str(tmp_path / "payload"))
    assert (pi.root / "etc/appliance/api.token").read_text() == token and "exists: kept" in second.stdout


@needs_root
def test_install_token_from_the_card_is_used(tmp_path):
    pi = Pi(tmp_path)
    payload = pi.payload(tmp_path)
    (payload / "api.token").write_text("made-by-the-flasher\n")
    pi.run("--payload", str(payload))
    token = pi.root / "etc/appliance/api.token"
    assert token.read_text() == "made-by-the-flasher\n"
    st = token.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, pi.gid("appliance-web"), 0o640)


@needs_root
@pytest.mark.parametrize("named", ['api_token_file = "/etc/appliance/web.token"', 'api_token_env = "TOKEN"'])
def test_install_token_not_generated_when_the_config_names_one(tmp_path, named):
    pi = Pi(tmp_path)
    payload = pi.payload(tmp_path, f"[web]\n{named}\n")
    (payload / "web.token").write_text("chosen-by-the-site\n")
    out = pi.run("--payload", str(payload)).stdout
    assert not (pi.root / "etc/appliance/api.token").exists() and "none generated" in out
    st = (pi.root / "etc/appliance/web.token").stat()
    if "api_token_file" in named:  # the page's file: the page's group reads it, as api.token
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, pi.gid("appliance-web"), 0o640)
    else:  # any other file is a secret of the agent's
        assert (st.st_uid, st.st_mode & 0o777) == (pi.ids("appliance")[0], 0o600)


@needs_root
def test_install_token_shown_once_to_a_person_at_a_terminal(tmp_path):
    pi = Pi(tmp_path)
    master, terminal = pty.openpty()
    seen = bytearray()
    reader = threading.Thread(target=_read_all, args=(master, seen))
    reader.start()
    try:
        pi.run("--payload", str(pi.payload(tmp_path)), stdin=terminal, stdout=terminal, stderr=terminal)
    finally:
        os.close(terminal)
        reader.join(timeout=30)
        os.close(master)
    token = (pi.root / "etc/appliance/api.token").read_text().strip()
    assert seen.decode().count(token) == 1


def _read_all(fd: int, into: bytearray) -> None:
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the terminal's other end closed
            return
        if not chunk:
            return
        into += chunk


@needs_root
def test_install_page_starts_with_the_token_it_made(open_tmp):
    pi = Pi(open_tmp)
    config = pi.real_config().replace('api_token_env = "APPLIANCE_TEST_TOKEN"\n', "")
    pi.run("--payload", str(pi.payload(open_tmp, config)))
    token = (pi.root / "etc/appliance/api.token").read_text().strip()
    # The page's own user loads the config (which names no token: api.token beside it) and
    # reads the token as the page does: 0640 root:appliance-web must pass the secret check.
    read = (
        "import sys; from appliance.config import load; from appliance.web.app import _password; "
        "print(_password(load(sys.argv[1])) == sys.argv[2])"
    )
    done = as_user(
        pi, "appliance-web", sys.executable, "-c", read, str(pi.root / "etc/appliance/appliance.toml"), token
    )
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr
    # ... and the agent's user may not: the token is the page's alone.
    done = as_user(
        pi, "appliance", sys.executable, "-c", read, str(pi.root / "etc/appliance/appliance.toml"), token
    )
    assert done.returncode != 0 and "cannot be read by this user" in done.stderr


@pytest.fixture
def open_tmp():
    """A folder other users can walk into (pytest's own is root's only): real access checks."""
    path = Path(tempfile.mkdtemp(prefix="install-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def setpriv(pi: Pi, user: str) -> list[str]:
    """The command prefix giving the ids the unit gives ``user`` (the page: group appliance too)."""
    uid, gid = pi.ids(user)
    groups = [gid] + ([pi.gid("appliance")] if user == "appliance-web" else [])
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", f"--groups={','.join(map(str, groups))}", "--"]


def as_user(pi: Pi, user: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run([*setpriv(pi, user), *command], capture_output=True, text=True, timeout=60)


@needs_root
def test_install_page_user_cannot_read_the_secrets(open_tmp):
    pi = Pi(open_tmp)
    pi.run("--payload", str(pi.payload(open_tmp)))
    etc = pi.root / "etc/appliance"
    for user, name, readable in [
        ("appliance-web", "id_ed25519", False),
        ("appliance-web", "source.password", False),
        ("appliance-web", "api.token", True),
        ("appliance-web", "appliance.toml", True),
        ("appliance", "id_ed25519", True),
        ("appliance", "source.password", True),
        ("appliance", "api.token", False),  # the agent never needs the page's token
        ("appliance", "appliance.toml", True),
    ]:
        done = as_user(pi, user, "cat", str(etc / name))
        assert (done.returncode == 0) == readable, (user, name, done.stderr)


HOLD = (  # open a database, read it and keep it open: its -wal and -shm stay, this user's
    "import sqlite3, sys, time; db = sqlite3.connect(f'file:{sys.argv[1]}?mode=ro', uri=True); "
    "db.execute('SELECT count(*) FROM sqlite_master').fetchall(); print('open', flush=True); time.sleep(60)"
)
WRITE = """
import sqlite3, sys, os
os.umask(0o007)  # the units' UMask=
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE IF NOT EXISTS acks (by TEXT)")
db.execute("INSERT INTO acks VALUES (?)", (sys.argv[2],))
print(db.execute("SELECT group_concat(by) FROM acks").fetchone()[0])
"""


@needs_root
def test_install_state_folder_is_shared_by_the_agent_and_the_page(open_tmp):
    """Whoever opens a SQLite file first makes its -wal and -shm: the other can still write.

    The page may be the first (the agent is down): it must not leave the agent a replica it
    cannot write. The files install-on-pi makes carry the mode SQLite copies to them.
    """
    pi = Pi(open_tmp)
    pi.state_dir.mkdir(parents=True)
    old = pi.state_dir / "contract"
    old.mkdir(mode=0o700)
    (old / "public.orders.json").write_text("{}")
    (old / "public.orders.json").chmod(0o600)  # made under the old umask 0077
    pi.run("--payload", str(pi.payload(open_tmp)))
    assert oct((old / "public.orders.json").stat().st_mode & 0o777) == "0o660"
    assert oct(old.stat().st_mode & 0o7777) == "0o2770"
    python = shutil.which("python3", path="/usr/bin")
    for name, first, second in [
        ("state.sqlite", "appliance", "appliance-web"),  # the agent holds it, the page acknowledges
        ("replica.sqlite", "appliance-web", "appliance"),  # the page reads while the agent is down
    ]:
        db = pi.state_dir / name
        st = db.stat()
        assert (st.st_uid, st.st_gid, oct(st.st_mode & 0o777)) == (*pi.ids("appliance"), "0o660")
        assert as_user(pi, "appliance", python, "-c", WRITE, str(db), "agent").returncode == 0
        hold = [*setpriv(pi, first), python, "-c", HOLD, str(db)]
        with subprocess.Popen(hold, stdout=subprocess.PIPE, text=True) as holder:
            try:
                assert holder.stdout.readline().strip() == "open"
                wrote = as_user(pi, second, python, "-c", WRITE, str(db), second)
                assert wrote.returncode == 0 and wrote.stdout.strip() == f"agent,{second}", wrote.stderr
            finally:
                holder.kill()
        for path in pi.state_dir.glob(f"{name}*"):
            assert path.stat().st_gid == pi.gid("appliance") and path.stat().st_mode & 0o060 == 0o060, path
    # Why the files are made beforehand: SQLite's own new file is not group-writable.
    made = as_user(pi, "appliance", python, "-c", WRITE, str(pi.state_dir / "new.sqlite"), "agent")
    assert made.returncode == 0 and oct((pi.state_dir / "new.sqlite").stat().st_mode & 0o777) == "0o640"


# -- for real, in a throwaway Debian root (opt-in: needs the network and about 3 minutes) --
#
# How to run it (as root, on Debian, with the Debian mirror reachable):
#   apt-get install debootstrap mtools dosfstools fdisk e2fsprogs
#   APPLIANCE_CHROOT_TEST=1 .venv/bin/python -m pytest tests/test_install_on_pi.py -k for_real
# APPLIANCE_DEBIAN_MIRROR overrides the mirror (default: the first of apt's own sources).


def _apt_mirror() -> str:
    """Return the Debian mirror apt is configured with (the one this machine reaches)."""
    for source in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]:
        text = source.read_text() if source.is_file() else ""
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] or (words[:1] == ["deb"] and len(words) > 1):
                uri = words[1] if words[0] == "URIs:" else next(w for w in words[1:] if "://" in w)
                if uri.rstrip("/").endswith("/debian"):
                    return uri
    return "http://deb.debian.org/debian"


for_real = pytest.mark.skipif(
    os.environ.get("APPLIANCE_CHROOT_TEST") != "1"
    or os.geteuid() != 0
    or shutil.which("debootstrap") is None,
    reason="opt-in: set APPLIANCE_CHROOT_TEST=1 (as root, with debootstrap and the Debian mirror reachable)",
)
DEBIAN_PACKAGES = "systemd,python3,python3-venv,python3-pip,passwd,tzdata,ca-certificates,openssh-server"


def _debian_root(tmp_path: Path, kit) -> Path:
    """Return a fresh Debian bookworm root made by debootstrap from apt's own mirror."""
    root = tmp_path / "root"
    mirror = os.environ.get("APPLIANCE_DEBIAN_MIRROR") or _apt_mirror()
    kit.run("debootstrap", "--variant=minbase", f"--include={DEBIAN_PACKAGES}", "bookworm", str(root), mirror)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/")  # proxies' CAs
    return root


def _card(tmp_path: Path, kit, seeds: bool, **extra):
    """Return a complete customized card image (Bookworm or Trixie style) and its secrets folder."""
    from appliance.image import CustomizeOptions, customize_target

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "appliance.toml").write_text(kit.APP_TOML)
    kit.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(secrets / "tunnel"))
    host_key = " ".join((secrets / "tunnel.pub").read_text().split()[:2])
    (secrets / "known_hosts").write_text(f"bastion.example.com {host_key}\n")
    (secrets / "db").write_text("db-secret\n")
    image = kit.build_image(tmp_path / "card.img", 32, seeds=seeds)
    options = CustomizeOptions(
        user="admin",
        ssh_key_file=str(secrets / "tunnel.pub"),
        tunnel_key_file=str(secrets / "tunnel"),
        known_hosts_file=str(secrets / "known_hosts"),
        source_password_file=str(secrets / "db"),
        **extra,
    )
    report = customize_target(str(image.path), str(secrets / "appliance.toml"), options)
    assert report.complete and report.format == ("cloud-init" if seeds else "firstrun")
    return image, secrets


def _kit():
    import sys

    sys.path.insert(0, str(REPO / "tests/image"))
    import image_support  # the image builders of tests/image

    return image_support


@pytest.mark.slow
@pytest.mark.timeout(1200)
@for_real
def test_install_for_real_in_a_chroot(tmp_path):
    """debootstrap a Debian root; run the card's firstrun.sh in it, then install-on-pi twice.

    The card is made by the real customization (complete: config, secrets, login, time
    zone); its boot partition is copied into the root with mtools, as the Pi would mount it.
    Nothing is mounted: chroot without /proc is enough for apt, useradd, venv and pip. The
    units are enabled, not started (systemd does not run there)."""
    kit = _kit()
    root = _debian_root(tmp_path, kit)
    image, secrets = _card(tmp_path, kit, False, hostname="appliance-test", timezone="Europe/Berlin")
    boot = root / "boot/firmware"
    boot.mkdir(parents=True)
    kit.run(
        "mcopy",
        "-s",
        "-n",
        "-i",
        image.spec,
        "::/appliance",
        "::/firstrun.sh",
        "::/cmdline.txt",
        "::/config.txt",
        str(boot),
    )

    kit.run("chroot", str(root), "/bin/sh", "/boot/firmware/firstrun.sh")
    log = (root / "var/log/appliance-firstrun.log").read_text()
    assert "failed" not in log, log
    assert not (boot / "appliance").exists() and not (boot / "firstrun.sh").exists()
    assert "systemd.run" not in (boot / "cmdline.txt").read_text()
    assert "appliance-test" in (root / "etc/hostname").read_text()
    assert os.readlink(root / "etc/localtime").endswith("Europe/Berlin")
    assert "admin:" in (root / "etc/passwd").read_text()
    home_keys = root / "home/admin/.ssh/authorized_keys"
    assert home_keys.read_text().strip() == (secrets / "tunnel.pub").read_text().strip()
    assert (root / "etc/systemd/system/sshd.service").exists() or list(
        root.glob("etc/systemd/system/*/ssh.service")
    )
    assert (root / "etc/systemd/system/multi-user.target.wants/appliance-firstboot.service").is_symlink()
    installer = [
        "chroot",
        str(root),
        "/opt/appliance/src/scripts/install-on-pi",
        "--source",
        "/opt/appliance/src",
        "--first-boot",
    ]
    first = subprocess.run(installer, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    second = subprocess.run(installer, capture_output=True, text=True, check=True)
    assert "Nothing to change" in second.stdout, second.stdout
    assert (root / "opt/appliance/current/venv/bin/appliance").exists()
    check = subprocess.run(
        ["chroot", str(root), "/opt/appliance/current/venv/bin/appliance", "--help"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and "flash" in check.stdout, check.stderr
    verify = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *UNITS], capture_output=True, text=True
    )
    assert verify.returncode == 0 and not verify.stderr, verify.stderr
    as_service = ["chroot", "--userspec=appliance:appliance", str(root), "sh", "-c"]
    assert (
        subprocess.run(
            [*as_service, "head -c 5 /etc/appliance/id_ed25519"], capture_output=True, text=True
        ).stdout
        == "-----"
    )
    assert (
        subprocess.run([*as_service, "echo x >>/etc/appliance/known_hosts"], capture_output=True).returncode
        != 0
    )
    as_page = [
        "chroot",
        "--userspec=appliance-web:appliance-web",
        "--groups=appliance",
        str(root),
        "sh",
        "-c",
    ]
    for secret in ("id_ed25519", "source.password"):
        done = subprocess.run([*as_page, f"head -c 1 /etc/appliance/{secret}"], capture_output=True)
        assert done.returncode != 0, secret
    assert (
        subprocess.run([*as_page, "head -c 1 /etc/appliance/api.token"], capture_output=True).returncode == 0
    )


@pytest.mark.slow
@pytest.mark.timeout(1200)
@for_real
def test_cloud_init_card_for_real_in_a_chroot(tmp_path):
    """Trixie style: Debian's own cloud-init (22.4) reads the card's NoCloud seed in a chroot.

    Raspberry Pi OS points NoCloud at the boot partition; here a cloud.cfg.d file does the
    same (``seedfrom: file:///boot/firmware/``). Modules that need a booted system (resizefs
    without /proc/mounts, locale without locales data, starting units) fail in a chroot and
    are not judged; what the card asked for is."""
    kit = _kit()
    root = _debian_root(tmp_path, kit)
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "cloud-init"]
    kit.run("chroot", str(root), "env", "DEBIAN_FRONTEND=noninteractive", *install)
    image, secrets = _card(tmp_path, kit, True, hostname="appliance-ci", timezone="Asia/Tokyo")
    boot = root / "boot/firmware"
    boot.mkdir(parents=True)
    names = ["::/appliance", "::/user-data", "::/meta-data", "::/cmdline.txt", "::/config.txt"]
    kit.run("mcopy", "-s", "-n", "-i", image.spec, *names, str(boot))
    (root / "etc/cloud/cloud.cfg.d/99-nocloud-boot.cfg").write_text(
        "datasource_list: [NoCloud, None]\ndatasource:\n  NoCloud:\n    seedfrom: file:///boot/firmware/\n"
    )
    for stage in (["init", "--local"], ["init"], ["modules", "--mode=config"], ["modules", "--mode=final"]):
        subprocess.run(["chroot", str(root), "cloud-init", *stage], capture_output=True, timeout=300)
    log = (root / "var/log/cloud-init.log").read_text()
    assert (
        "DataSourceNoCloud [seed=ds_config_seedfrom,file:///boot/firmware/]"
        in (root / "var/log/cloud-init-output.log").read_text()
    ), log[-3000:]
    assert "admin:" in (root / "etc/passwd").read_text()
    keys = (root / "home/admin/.ssh/authorized_keys").read_text()
    assert (secrets / "tunnel.pub").read_text().split()[1] in keys
    assert (root / "etc/hostname").read_text().strip() == "appliance-ci"
    assert os.readlink(root / "etc/localtime").endswith("Asia/Tokyo")
    for name in ("appliance.toml", "id_ed25519", "known_hosts", "source.password"):
        assert (root / "etc/appliance" / name).exists(), name
        assert not (boot / "appliance" / name).exists(), name  # off the world-readable partition
    assert not (boot / "appliance").exists()  # firstboot.sh cleaned up after itself
    assert (root / "opt/appliance/src/scripts/install-on-pi").exists()
    assert (root / "etc/systemd/system/multi-user.target.wants/appliance-firstboot.service").is_symlink()


def test_install_help_is_the_header_and_nothing_of_the_script():
    done = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Install the appliance on a Raspberry Pi")
    assert lines[-1].startswith("APPLIANCE_ROOT=DIR prefixes every file path")
    assert not [line for line in lines if line.startswith(("set -", "ROOT=", "#"))]
