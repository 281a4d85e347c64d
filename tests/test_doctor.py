"""`appliance doctor` against a healthy setup and against each broken variant."""

from __future__ import annotations

import os

from click.testing import CliRunner

from appliance.cli import main


def doctor(cfg):
    return CliRunner().invoke(main, ["--config", str(cfg), "doctor"])


def line(output: str, name: str) -> str:
    return next(x for x in output.splitlines() if f" {name}:" in x)


def healthy(sales, make_config, **kw):
    sales.sql(
        "CREATE TABLE t (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now())", db="sales"
    )
    cfg = make_config([{"name": "public.t", "cursor": "updated_at"}], **kw)
    with open(cfg, "a") as f:
        f.write("\n[indicator]\nmock = true\n")
    return cfg


def test_doctor_healthy_setup_is_all_ok(sales, make_config):
    result = doctor(healthy(sales, make_config))
    assert result.exit_code == 0, result.output
    for name in ("config", "secrets", "ssh", "database", "tables", "replica", "disk", "gpio", "i2c"):
        assert line(result.output, name).startswith("ok"), result.output
    assert "all checks ok" in result.output
    assert "host key SHA256:" in line(result.output, "ssh")


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
