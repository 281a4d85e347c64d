"""What makes a card complete, checked before anything is written (``check_card``)."""

from __future__ import annotations

import dataclasses
import subprocess

import pytest
from image_support import APP_TOML

from appliance.image import check_card
from appliance.image.errors import IncompleteCardError, OptionError


def _config(tmp_path, text: str = APP_TOML):
    path = tmp_path / "appliance.toml"
    path.write_text(text)
    return str(path)


def test_complete_full_options_pass(secrets, full_options):
    plan = check_card(str(secrets.config), full_options)
    assert plan.missing == []
    # The config names no token and does not open actions: the card gets a generated one.
    assert set(plan.settings.secrets) == {"id_ed25519", "known_hosts", "source.password", "api.token"}


def test_complete_encrypted_or_cut_tunnel_key_is_refused(secrets, full_options, tmp_path):
    locked = tmp_path / "locked"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret-phrase", "-f", str(locked)], check=True
    )
    with pytest.raises(OptionError, match="passphrase") as refused:
        check_card(str(secrets.config), dataclasses.replace(full_options, tunnel_key_file=str(locked)))
    assert "ssh-keygen -p -N ''" in str(refused.value)
    cut = tmp_path / "cut"
    cut.write_bytes(secrets.tunnel_key.read_bytes()[:120])
    with pytest.raises(OptionError, match="cut off"):
        check_card(str(secrets.config), dataclasses.replace(full_options, tunnel_key_file=str(cut)))


def test_complete_known_hosts_must_pin_the_bastion(secrets, full_options, tmp_path):
    key = secrets.known_hosts.read_text().split(" ", 1)[1]
    hosts = tmp_path / "known_hosts"
    for text, error in [
        ("bastion.example.com ssh-ed25519 AAAA-not-base64\n", "line 1 is not"),
        (f"elsewhere.example.com {key}", "pins no key for bastion.example.com"),
    ]:
        hosts.write_text(text)
        with pytest.raises(OptionError, match=error):
            check_card(str(secrets.config), dataclasses.replace(full_options, known_hosts_file=str(hosts)))
    hosts.write_text(f"# pinned\nbastion.example.com {key}")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(hosts)], check=True, capture_output=True)
    assert "|1|" in hosts.read_text()  # hashed names are matched too
    check_card(str(secrets.config), dataclasses.replace(full_options, known_hosts_file=str(hosts)))
    on_port = _config(tmp_path, APP_TOML.replace('user = "replica"', 'user = "replica"\nport = 2222'))
    hosts.write_text(f"[bastion.example.com]:2222 {key}")
    check_card(on_port, dataclasses.replace(full_options, known_hosts_file=str(hosts)))


def test_complete_secrets_from_the_environment_cannot_reach_the_pi(secrets, full_options, tmp_path):
    text = APP_TOML.replace(
        'password_file = "/etc/appliance/source.password"', 'password_env = "DB_PASSWORD"'
    )
    options = dataclasses.replace(full_options, source_password_file="")
    with pytest.raises(IncompleteCardError) as refused:
        check_card(_config(tmp_path, text), options)
    assert 'source.password_env = "DB_PASSWORD"' in str(refused.value)
    assert "--source-password-file FILE" in str(refused.value)


def test_complete_api_token_travels_to_the_name_the_config_gives(secrets, full_options, tmp_path):
    config = _config(tmp_path, APP_TOML + '\n[web]\napi_token_file = "/etc/appliance/api.token"\n')
    with pytest.raises(IncompleteCardError, match=r"/etc/appliance/api.token .*--api-token-file FILE"):
        check_card(config, full_options)
    token = tmp_path / "token"
    token.write_text("t0ken-value\n")
    plan = check_card(config, dataclasses.replace(full_options, api_token_file=str(token)))
    assert plan.settings.secrets["api.token"] == b"t0ken-value\n"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../etc/passwd", "Europe London"])
def test_complete_timezone_must_be_a_zone_name(secrets, full_options, zone):
    with pytest.raises(OptionError, match="--timezone"):
        check_card(str(secrets.config), dataclasses.replace(full_options, timezone=zone))


def test_complete_unknown_init_format_is_refused(secrets, full_options):
    with pytest.raises(Exception, match='"cloudinit-v9"'):
        check_card(str(secrets.config), dataclasses.replace(full_options, listed_format="cloudinit-v9"))
