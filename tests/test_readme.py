"""The README's references are the code's: the config keys and every command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.readme_refs import cli_reference, config_reference, replace

from appliance.cli import main

README = Path(__file__).parents[1] / "README.md"


@pytest.mark.parametrize("key", ["config", "cli"])
def test_readme_reference_is_current(key):
    body = config_reference() if key == "config" else cli_reference(main)
    text = README.read_text()
    current = replace(text, key, body)
    if os.environ.get("UPDATE_README") == "1":
        assert os.environ.get("CI") != "true", "never rewrite the README under CI"
        README.write_text(current)
        pytest.fail(f"README {key} reference rewritten: review and commit README.md")
    assert current == text, (
        f"the README's {key} reference is out of date: run UPDATE_README=1 scripts/test tests/test_readme.py"
    )


def test_readme_reference_lists_every_key_and_command():
    config = config_reference()
    assert '| `statement_timeout` | duration | `"60s"` |' in config and "between 1s and 1d" in config
    assert "| `actions_open` | bool | false |" in config
    cli = cli_reference(main)
    assert (
        "`appliance maintenance start [--for] [--reason]`" in cli and "`appliance schema lint [TABLE]" in cli
    )
