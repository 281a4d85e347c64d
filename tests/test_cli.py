"""Every command has help text; user mistakes never end in a traceback."""

from __future__ import annotations

import click
from click.testing import CliRunner

from appliance.cli import main


def all_commands(group: click.Group, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # loads the lazily imported ones too
        cmd = group.get_command(ctx, name)
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, (*prefix, name))


def test_cli_every_command_has_help():
    for path, cmd in all_commands(main):
        assert cmd.help and cmd.help.strip(), f"appliance {' '.join(path)} has no help"
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, path


def test_cli_bad_interval_is_a_clean_error(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text(
        '[source]\nhost = "db"\ndatabase = "d"\nuser = "u"\n[[tables]]\nname = "t"\n'
        f'[appliance]\nstate_dir = "{tmp_path}"\n'
    )
    result = CliRunner().invoke(main, ["--config", str(path), "sync", "--interval", "soon"])
    assert result.exit_code == 2 and "--interval" in result.output


def test_cli_readme_lists_every_command():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for path, _ in all_commands(main):
        if len(path) == 1:
            assert f"`appliance {path[0]}" in readme, f"README does not document appliance {path[0]}"


def test_cli_demo_bad_options_are_usage_errors(tmp_path):
    for args, option in (
        (["--duration", "soon"], "--duration"),
        (["--source", "not a url", "--duration", "1s"], "--source"),
    ):
        result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path), *args])
        assert result.exit_code == 2 and option in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_packaged_commands_load_only_when_used():
    import subprocess
    import sys

    code = (
        "import sys; from click.testing import CliRunner; from appliance.cli import main; "
        "r = CliRunner().invoke(main, ['status', '--help']); assert r.exit_code == 0; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('luma', 'gpiozero', 'flask', 'paramiko', 'appliance') and "
        "m.endswith(('.cli', 'luma', 'gpiozero', 'flask', 'paramiko'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['appliance.cli']"
    names = [p[0] for p, _ in all_commands(main) if len(p) == 1]
    assert {"flash", "image", "indicator", "web", "sync", "status"} <= set(names)
