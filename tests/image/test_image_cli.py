"""``appliance image customize`` through click: the report, JSON, errors, and no secret shown."""

from __future__ import annotations

import json

from click.testing import CliRunner

from appliance.image.cli import image


def args_for(target, s) -> list:
    return [
        "customize",
        str(target),
        "--config",
        str(s.config),
        "--user",
        "admin",
        "--ssh-key",
        str(s.pubkey),
        "--password-file",
        str(s.password_file),
        "--hostname",
        "appliance-site1",
        "--wifi-ssid",
        "Shop",
        "--wifi-country",
        "DE",
        "--wifi-password-file",
        str(s.wifi_password_file),
        "--tunnel-key",
        str(s.tunnel_key),
        "--known-hosts",
        str(s.known_hosts),
        "--source-password-file",
        str(s.source_password),
    ]


def secret_values(s) -> list:
    key_body = s.tunnel_key.read_text().splitlines()[1]
    return [s.password, s.wifi_password, s.source_secret, key_body]


def test_cli_customize_prints_a_report_without_secrets(bookworm, secrets):
    result = CliRunner().invoke(image, args_for(bookworm.path, secrets))
    assert result.exit_code == 0, result.output
    assert "first boot by firstrun.sh" in result.output
    assert "wrote appliance/id_ed25519" in result.output and "secret" in result.output
    assert "read back all" in result.output
    for value in secret_values(secrets):
        assert value not in result.output
    assert "$6$" not in result.output


def test_cli_customize_json(trixie, secrets):
    result = CliRunner().invoke(image, args_for(trixie.path, secrets) + ["--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["format"] == "cloud-init" and report["verified"] is True
    by_path = {f["path"]: f for f in report["files"]}
    assert by_path["appliance/id_ed25519"]["secret"] is True
    assert by_path["appliance/appliance.toml"]["secret"] is False
    assert by_path["network-config"]["secret"] is True
    for value in secret_values(secrets):
        assert value not in result.output


def test_cli_customize_errors_are_clean_messages(bookworm, secrets, tmp_path):
    short = tmp_path / "short-wifi"
    short.write_text("hunter2\n")
    args = args_for(bookworm.path, secrets)
    args[args.index("--wifi-password-file") + 1] = str(short)
    result = CliRunner().invoke(image, args)
    assert result.exit_code == 1
    assert "Error: the Wi-Fi passphrase has 7 characters" in result.output
    assert "hunter2" not in result.output and "Traceback" not in result.output


def test_cli_customize_needs_the_config_and_existing_files(bookworm, secrets):
    result = CliRunner().invoke(image, ["customize", str(bookworm.path)])
    assert result.exit_code == 2 and "--config" in result.output
    result = CliRunner().invoke(
        image,
        ["customize", str(bookworm.path), "--config", str(secrets.config), "--tunnel-key", "/nonexistent"],
    )
    assert result.exit_code == 2 and "does not exist" in result.output


def test_cli_every_option_has_help():
    command = image.commands["customize"]
    assert command.help and image.help
    for param in command.params:
        if param.param_type_name == "option":
            assert param.help, param.name


def test_cli_flash_and_customize_take_the_same_customization_options():
    from appliance.flash.cli import flash

    def names(command) -> set:
        return {o for p in command.params for o in p.opts if p.param_type_name == "option"}

    shared = names(image.commands["customize"]) - {"--json"}
    assert shared <= names(flash)
    for flag in ("--timezone", "--api-token-file", "--allow-incomplete", "--tunnel-key", "--known-hosts"):
        assert flag in shared


def test_cli_customize_says_done_only_for_a_complete_card(bookworm, secrets):
    result = CliRunner().invoke(image, args_for(bookworm.path, secrets))
    assert result.exit_code == 0, result.output
    assert f"Done: {bookworm.path} boots into a working appliance." in result.output
    short = args_for(bookworm.path, secrets)[:-2] + ["--allow-incomplete"]  # no database password
    result = CliRunner().invoke(image, short)
    assert result.exit_code == 0, result.output
    assert "Done" not in result.output and "INCOMPLETE" in result.output
    assert "--source-password-file FILE" in result.output
