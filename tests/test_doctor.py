"""`appliance doctor` against a healthy setup and against each broken variant.

Through the CLI wherever this machine shows the case for real (no systemd, no GPIO, no
I2C here); through ``run`` with a ``Machine`` of test folders and commands otherwise.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.pg import SUPERUSER_PASSWORD
from support.sshd import Sshd

from appliance.cli import main
from appliance.config import load
from appliance.doctor import Machine, run

WRITER, WRITER_PASSWORD = "doctor_writer", "writer-pw"


def doctor(cfg):
    return CliRunner().invoke(main, ["--config", str(cfg), "doctor"])


def _at(output: str, name: str) -> int:
    return next(i for i, x in enumerate(output.splitlines()) if f" {name}:" in x)


def line(output: str, name: str) -> str:
    """Return a check's line with its spacing collapsed: "ok name: detail"."""
    return " ".join(output.splitlines()[_at(output, name)].split())


def fix(output: str, name: str) -> str:
    """Return the fix printed under a check's line (its lines joined), or ""."""
    below = []
    for x in output.splitlines()[_at(output, name) + 1 :]:
        if not x.startswith("        "):
            break
        below.append(x.strip())
    return " ".join(below).removeprefix("fix: ")


def report(checks) -> str:
    return "\n".join(c.line() for c in checks)


def healthy(sales, make_config, mock: bool = True, **kw):
    sales.sql(
        "CREATE TABLE t (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now())", db="sales"
    )
    cfg = make_config([{"name": "public.t", "cursor": "updated_at"}], **kw)
    if mock:
        with open(cfg, "a") as f:
            f.write("\n[indicator]\nmock = true\n")
    return cfg


def fake_tool(path: Path, output: str) -> str:
    """Write an executable that prints ``output`` (a stand-in for systemctl or timedatectl)."""
    path.write_text(f"#!/bin/sh\nprintf '{output}'\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def writer(sales, tmp_path):
    """A login role that can read everything; the test grants it a way to write."""
    sales.sql(f"CREATE ROLE {WRITER} LOGIN PASSWORD '{WRITER_PASSWORD}'")
    sales.sql(f"GRANT pg_read_all_data TO {WRITER}")
    pwfile = tmp_path / "writer.password"
    pwfile.write_text(WRITER_PASSWORD)
    pwfile.chmod(0o600)
    yield {"user": WRITER, "password_file": str(pwfile)}
    sales.sql(f"DROP OWNED BY {WRITER}", db="sales")
    sales.sql(f"DROP ROLE {WRITER}")


def test_doctor_healthy_setup_is_all_ok(sales, make_config):
    result = doctor(healthy(sales, make_config))
    assert result.exit_code == 0, result.output
    for name in ("config", "secrets", "ssh", "database", "role", "tables", "disk", "gpio", "i2c"):
        assert line(result.output, name).startswith("ok"), result.output
    for name in ("replica", "state store"):  # before the agent's first start: a note, not a problem
        assert line(result.output, name).startswith("- "), result.output
        assert fix(result.output, name) == ""
    assert "all checks ok" in result.output
    assert "host key SHA256:" in line(result.output, "ssh")


def test_doctor_read_only_login_is_ok(sales, make_config):
    out = doctor(healthy(sales, make_config)).output
    assert line(out, "database").startswith("ok") and "login works, session read-only" in out
    assert line(out, "role") == "ok role: analytics_ro is not a superuser and holds no write grants"


def test_doctor_refuses_a_superuser_login(sales, make_config, tmp_path):
    pwfile = tmp_path / "super.password"
    pwfile.write_text(SUPERUSER_PASSWORD)
    pwfile.chmod(0o600)
    cfg = healthy(sales, make_config, source={"user": "postgres", "password_file": str(pwfile)})
    result = doctor(cfg)
    assert result.exit_code == 1, result.output
    assert line(result.output, "database").startswith("ok")  # the login itself works
    assert line(result.output, "role").startswith("PROBLEM role: postgres is a superuser")
    assert "GRANT pg_read_all_data TO appliance_ro" in fix(result.output, "role")
    assert "set source.user" in fix(result.output, "role")
    assert "1 problem(s)" in result.output


@pytest.mark.parametrize(
    "grant, revoke",
    [
        ("GRANT INSERT, UPDATE ON public.t TO {role}", "REVOKE INSERT, UPDATE ON public.t FROM {role};"),
        (
            "GRANT UPDATE (updated_at) ON public.t TO {role}",
            "REVOKE UPDATE (updated_at) ON public.t FROM {role};",
        ),
        ("GRANT DELETE ON public.t TO PUBLIC", "REVOKE DELETE ON public.t FROM PUBLIC;"),
        ("GRANT pg_write_all_data TO {role}", "REVOKE pg_write_all_data FROM {role};"),
        ("ALTER TABLE public.t OWNER TO {role}", "ALTER TABLE public.t OWNER TO <another role>;"),
    ],
)
def test_doctor_refuses_a_role_that_can_write(sales, make_config, writer, grant, revoke):
    cfg = healthy(sales, make_config, source=writer)
    sales.sql(grant.format(role=WRITER), db="sales")
    result = doctor(cfg)
    assert result.exit_code == 1, result.output
    assert line(result.output, "role").startswith(
        f"PROBLEM role: {WRITER} can write to the source, which the appliance must never do (1 grant(s))"
    )
    assert (
        fix(result.output, "role") == f"as an administrator of the source, run: {revoke.format(role=WRITER)}"
    )


def test_doctor_lists_every_write_grant_up_to_ten(sales, make_config, writer):
    cfg = healthy(sales, make_config, source=writer)
    for i in range(12):
        sales.sql(f"CREATE TABLE w{i:02} (id int); GRANT INSERT ON w{i:02} TO {WRITER}", db="sales")
    out = doctor(cfg).output
    assert "(12 grant(s))" in line(out, "role")
    assert "REVOKE INSERT ON public.w09 FROM doctor_writer;" in fix(out, "role")
    assert "w10" not in out and fix(out, "role").endswith("... and 2 more")


def test_doctor_replica_not_writable(sales, make_config, tmp_path):
    cfg = healthy(sales, make_config)
    (tmp_path / "a_file").write_text("")  # as root a chmod would not stop us: use a file as folder
    with open(cfg, "a") as f:
        f.write(f'\n[replica]\nurl = "sqlite:///{tmp_path}/a_file/replica.sqlite"\n')
    result = doctor(cfg)
    assert result.exit_code == 1
    assert line(result.output, "replica").startswith(
        f"PROBLEM replica: {tmp_path}/a_file/replica.sqlite cannot be written: {tmp_path}/a_file is not"
    )
    assert fix(result.output, "replica") == (
        f"make {tmp_path}/a_file a folder the service user can write: "
        f"sudo install -d -o appliance {tmp_path}/a_file"
    )


def test_doctor_replica_and_state_store_never_created_then_checked(sales, make_config, tmp_path):
    cfg = healthy(sales, make_config)
    state = tmp_path / "state"
    out = doctor(cfg).output
    assert (
        line(out, "replica")
        == f"- replica: {state} does not exist yet: the agent's unit creates it when it starts"
    )
    assert not state.exists()  # doctor runs as root: anything it made would be root's
    state.mkdir()
    out = doctor(cfg).output
    assert line(out, "state store").startswith(f"ok state store: {state}/state.sqlite does not exist yet")
    assert not (state / "replica.sqlite").exists()
    sync = CliRunner().invoke(main, ["--config", str(cfg), "sync", "--once"])
    assert sync.exit_code == 0, sync.output
    out = doctor(cfg).output
    assert (
        line(out, "replica")
        == f"ok replica: {state}/replica.sqlite is writable and passes SQLite's quick_check"
    )
    assert line(out, "state store").startswith("ok state store:")


def test_doctor_a_damaged_state_store_is_a_problem_with_its_fix(sales, make_config, tmp_path):
    cfg = healthy(sales, make_config)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    result = doctor(cfg)
    assert result.exit_code == 1
    assert line(result.output, "state store").startswith(
        f"PROBLEM state store: {tmp_path}/state/state.sqlite is damaged"
    )
    assert fix(result.output, "state store").startswith(
        "stop the agent (systemctl stop appliance-sync), move"
    )


def test_doctor_disk_space(sales, make_config, tmp_path):
    cfg = healthy(sales, make_config)
    out = doctor(cfg).output
    assert line(out, "disk").startswith("ok disk: ") and "GiB free under" in line(out, "disk")
    out = report(run(str(cfg), Machine(min_free=1 << 60)))  # more than any disk holds
    assert line(out, "disk").startswith("PROBLEM disk: ") and "1073741824.0 GiB needed" in out
    assert fix(out, "disk").startswith(f"free space under {tmp_path}")


@pytest.mark.skipif(
    bool(glob.glob("/dev/gpiochip*") or glob.glob("/dev/i2c-*")), reason="this machine has GPIO or I2C"
)
def test_doctor_without_gpio_or_i2c_says_so(sales, make_config, monkeypatch):
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    result = doctor(healthy(sales, make_config, mock=False))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert line(result.output, "gpio") == (
        "PROBLEM gpio: no /dev/gpiochip*: this machine has no GPIO, so no LEDs and no button"
    )
    assert fix(result.output, "gpio") == (
        "run the indicator on a Raspberry Pi; elsewhere set [indicator] mock = true"
    )
    assert line(result.output, "i2c").startswith("PROBLEM i2c: no /dev/i2c-1: I2C is off")
    assert "sudo raspi-config nonint do_i2c 0" in fix(result.output, "i2c")


def test_doctor_gpio_and_i2c_present(sales, make_config, tmp_path, monkeypatch):
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    cfg = healthy(sales, make_config, mock=False)
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "gpiochip0").touch()
    (dev / "i2c-1").touch()
    out = report(run(str(cfg), Machine(dev=dev)))
    assert line(out, "gpio") == f"ok gpio: {dev}/gpiochip0 is accessible"
    assert line(out, "i2c") == f"ok i2c: {dev}/i2c-1 is accessible"
    with open(cfg, "a") as f:
        f.write('\n[indicator]\noled = "none"\n')
    out = report(run(str(cfg), Machine(dev=dev)))
    assert line(out, "i2c") == '- i2c: oled = "none": no display expected'


@pytest.mark.skipif(os.path.exists("/run/systemd/system"), reason="systemd runs on this machine")
def test_doctor_without_systemd_says_so(sales, make_config):
    result = doctor(healthy(sales, make_config))
    assert result.exit_code == 0, result.output
    assert line(result.output, "units") == (
        "- units: systemd is not running here (no /run/systemd/system): units not checked"
    )
    assert line(result.output, "clock") == (
        "ok clock: synchronisation cannot be determined here (systemd is not running): "
        "counted as synchronised"
    )


@pytest.mark.parametrize(
    "states, outcome, fix_text",
    [
        ("active\\nactive\\nactive\\n", "ok units: all three units active", ""),
        (
            "active\\ninactive\\nfailed\\n",
            "PROBLEM units: appliance-web inactive, appliance-indicator failed",
            "sudo systemctl enable --now appliance-web appliance-indicator; journalctl -u appliance-web",
        ),
    ],
)
def test_doctor_units(sales, make_config, tmp_path, states, outcome, fix_text):
    cfg = healthy(sales, make_config)
    machine = Machine(systemd=tmp_path, systemctl=fake_tool(tmp_path / "systemctl", states))
    out = report(run(str(cfg), machine))
    assert line(out, "units") == outcome
    assert fix(out, "units") == fix_text


@pytest.mark.parametrize(
    "answer, outcome, fix_text",
    [
        ("yes\\n", "ok clock: synchronised (NTP)", ""),
        (
            "no\\n",
            "PROBLEM clock: not synchronised: lag and maintenance windows are not judged until it is",
            "let the Pi reach an NTP server (UDP port 123); sudo timedatectl set-ntp true; "
            "timedatectl timesync-status",
        ),
        ("", "ok clock: synchronisation cannot be determined here", ""),
    ],
)
def test_doctor_clock(sales, make_config, tmp_path, answer, outcome, fix_text):
    cfg = healthy(sales, make_config)
    machine = Machine(systemd=tmp_path, timedatectl=fake_tool(tmp_path / "timedatectl", answer))
    out = report(run(str(cfg), machine))
    assert line(out, "clock").startswith(outcome)
    assert fix(out, "clock") == fix_text


def test_doctor_names_each_broken_part(sales, make_config, sshd, tmp_path):
    cfg = healthy(sales, make_config)
    (tmp_path / "source.password").write_text("wrong")
    out = doctor(cfg).output
    assert line(out, "database").startswith("PROBLEM") and "refused the login" in out
    assert "source.password_file" in out

    (tmp_path / "source.password").write_text("x")
    os.chmod(tmp_path / "source.password", 0o644)
    out = doctor(cfg).output
    assert line(out, "secrets").startswith("PROBLEM") and "chmod 600" in out


def test_doctor_missing_table_and_host_key(sales, make_config, tmp_path):
    cfg = make_config([{"name": "public.nope"}])
    with open(cfg, "a") as f:
        f.write("\n[indicator]\nmock = true\n")
    result = doctor(cfg)
    assert result.exit_code == 1
    assert line(result.output, "tables").startswith("PROBLEM") and "public.nope" in result.output
    (tmp_path / "empty_known_hosts").write_text("")
    cfg = make_config([{"name": "public.nope"}], ssh={"known_hosts": str(tmp_path / "empty_known_hosts")})
    out = doctor(cfg).output
    assert line(out, "ssh").startswith("PROBLEM") and "not in" in out
    assert "not checked: the tunnel must work first" in out


def test_doctor_bad_config_stops_early(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text("[source]\nhost = 1\n")
    result = doctor(path)
    assert result.exit_code == 1 and line(result.output, "config").startswith("PROBLEM")
    assert "Traceback" not in result.output


def test_doctor_says_when_no_secret_is_configured(tmp_path):
    from appliance.config import parse
    from appliance.doctor import _secrets

    cfg = parse({"source": {"host": "db", "database": "d", "user": "u"}, "tables": [{"name": "public.t"}]})
    check = _secrets(cfg)
    assert check.ok is None and check.detail == "no secrets configured (no password or key file, no variable)"


def test_doctor_accept_host_key_shows_both_and_repins_only_after_yes(sales, make_config, tmp_path):
    import subprocess

    cfg = healthy(sales, make_config)
    known = Path(load(cfg).ssh.known_hosts)
    first = CliRunner().invoke(main, ["--config", str(cfg), "doctor", "--accept-host-key"])
    assert first.exit_code == 0 and "nothing to do: the presented key is the pinned one" in first.output
    # the bastion's key "changed": pin some other key, as after a rebuild of the bastion
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    entry = known.read_text().split(" ", 1)[0]
    other = (tmp_path / "other.pub").read_text().split()
    known.write_text(f"{entry} {other[0]} {other[1]}\n")
    before = known.read_text()
    refused = CliRunner().invoke(main, ["--config", str(cfg), "doctor", "--accept-host-key"], input="n\n")
    assert refused.exit_code == 1 and "nothing changed" in refused.output and known.read_text() == before
    assert "pinned in" in refused.output and "the bastion presents:  SHA256:" in refused.output
    accepted = CliRunner().invoke(main, ["--config", str(cfg), "doctor", "--accept-host-key"], input="y\n")
    assert accepted.exit_code == 0 and "pinned SHA256:" in accepted.output
    assert line(doctor(cfg).output, "ssh").startswith("ok ssh:")


def test_doctor_a_bastion_login_that_can_run_commands_is_a_problem(sales, make_config, tmp_path):
    # The shared sshd is set up as the README says (forwarding only): "ok" there.
    out = doctor(healthy(sales, make_config)).output
    assert line(out, "bastion").startswith("ok") and "may forward but not run commands" in out
    careless = Sshd(commands=True).start()  # authorized_keys without restrict or command=
    try:
        os.chmod(careless.client_key, 0o600)
        ssh = {
            "port": careless.port,
            "key_file": str(careless.client_key),
            "known_hosts": str(careless.known_hosts),
        }
        cfg = make_config([{"name": "public.t", "cursor": "updated_at"}], ssh=ssh, name="careless.toml")
        with open(cfg, "a") as f:
            f.write("\n[indicator]\nmock = true\n")
        result = doctor(cfg)
        assert result.exit_code == 1, result.output
        assert line(result.output, "bastion").startswith("PROBLEM"), result.output
        assert "can run commands on the bastion" in result.output
        assert 'command="/bin/false"' in fix(result.output, "bastion")
        assert line(result.output, "database").startswith("ok")  # the link itself works
    finally:
        careless.destroy()


def test_doctor_a_private_key_readable_by_others_is_a_problem(sales, make_config, sshd, tmp_path):
    key = tmp_path / "id_ed25519"
    key.write_bytes(Path(sshd.client_key).read_bytes())
    key.chmod(0o644)
    cfg = healthy(sales, make_config, ssh={"key_file": str(key)})
    out = doctor(cfg).output
    assert line(out, "secrets").startswith("PROBLEM") and "ssh.key_file" in line(out, "secrets")
    assert f"chmod 600 {key}" in fix(out, "secrets")
