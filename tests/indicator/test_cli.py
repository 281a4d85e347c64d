"""`appliance indicator` through click's CliRunner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from appliance.indicator.cli import indicator

ON_A_PI = Path("/dev/gpiomem").exists() or os.environ.get("APPLIANCE_HARDWARE") == "1"


def write_config(tmp_path: Path, indicator_lines: str = "mock = true") -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(f"""
[appliance]
state_dir = "{tmp_path / "state"}"

[source]
host = "db.internal"
database = "sales"
user = "ro"

[[tables]]
name = "public.orders"
cursor = "updated_at"

[indicator]
{indicator_lines}
""")
    return path


def invoke(config_path, *args):
    # Without the caller's GPIOZERO_PIN_FACTORY: the config file alone decides here.
    runner = CliRunner(env={"GPIOZERO_PIN_FACTORY": None})
    return runner.invoke(indicator, list(args), obj={"config_path": str(config_path)})


def test_indicator_help_lists_the_options():
    result = CliRunner().invoke(indicator, ["--help"])
    assert result.exit_code == 0
    for option in ("--once", "--preview", "--interval", "--persist"):
        assert option in result.output


def test_indicator_missing_config_is_a_clean_error(tmp_path):
    result = invoke(tmp_path / "nope.toml", "--once")
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert "Traceback" not in result.output


def test_indicator_bad_interval_is_a_usage_error(tmp_path):
    result = invoke(write_config(tmp_path), "--interval", "soon")
    assert result.exit_code == 2
    assert "not a duration" in result.output


def test_indicator_once_preview_writes_the_picture(tmp_path):
    path = tmp_path / "oled.png"
    result = invoke(write_config(tmp_path), "--once", "--preview", str(path))
    assert result.exit_code == 0, result.output
    assert f"picture written to {path}" in result.output
    image = Image.open(path)
    assert (image.mode, image.size) == ("1", (128, 64))
    assert image.getbbox() is not None


@pytest.mark.skipif(ON_A_PI, reason="this machine has GPIO")
def test_indicator_without_hardware_says_what_to_check(tmp_path):
    result = invoke(write_config(tmp_path, "mock = false"), "--once")
    assert result.exit_code == 1
    assert "No GPIO pins were found" in result.output
    assert "GPIOZERO_PIN_FACTORY=mock" in result.output
    assert "Traceback" not in result.output
