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
    for option in ("--once", "--preview", "--interval", "--persist", "--at"):
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


def test_indicator_at_draws_the_frame_of_that_time_with_its_shift(tmp_path):
    # Two times in the same 3-minute step draw the same picture; the next step moves it.
    config = write_config(tmp_path)
    pictures = []
    for at in ("2025-11-23T14:30:05Z", "2025-11-23T14:30:50Z", "2025-11-23T14:33:05Z"):
        path = tmp_path / f"{at[-9:-1].replace(':', '')}.png"
        result = invoke(config, "--once", "--preview", str(path), "--at", at)
        assert result.exit_code == 0, result.output
        pictures.append(Image.open(path).convert("1"))
    assert pictures[0].tobytes() == pictures[1].tobytes()
    assert pictures[0].tobytes() != pictures[2].tobytes()
    # The same picture moved by one pixel: the shift, not new content.
    assert pictures[0].histogram() == pictures[2].histogram()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "2025-11-23T14:30:00Z"], "--at draws one frame"),
        (["--once", "--at", "half past two"], "is not an ISO time"),
    ],
)
def test_indicator_at_usage_errors(tmp_path, args, message):
    result = invoke(write_config(tmp_path), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_indicator_shift_every_zero_keeps_the_picture_in_place(tmp_path):
    config = write_config(tmp_path, 'mock = true\nshift_every = "0s"')
    pictures = []
    for at in ("2025-11-23T14:30:05Z", "2025-11-23T14:33:05Z", "2025-11-23T14:36:05Z"):
        path = tmp_path / f"{at[14:16]}.png"
        assert invoke(config, "--once", "--preview", str(path), "--at", at).exit_code == 0
        pictures.append(Image.open(path).convert("1").tobytes())
    assert pictures[0] == pictures[1] == pictures[2]


def test_indicator_burn_in_settings_are_read_from_the_config():
    from .statuses import config

    settings = config(dim_after="5m", blank_after="0s", shift_every="1m").indicator
    assert (settings.dim_after, settings.blank_after, settings.shift_every) == (300.0, 0.0, 60.0)
    defaults = config().indicator
    assert (defaults.dim_after, defaults.blank_after, defaults.shift_every) == (600.0, 3600.0, 180.0)
