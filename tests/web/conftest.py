"""Fixtures of the status page tests: a config file, a state store in tmp_path, the app."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.config import Config, load
from appliance.web import create_app

from .states import HOSTILE_TABLE

SECRETS = {
    "ssh_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAKEYCONTENTSECRET\n",
    "source_password": "src-Pa55-S3CRET",
    "webhook_token": "XoXbWeBhOoKtOkEn42",
    "web_token": "web-T0ken-S3CRET",
}


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _secret_file(path: Path, text: str) -> str:
    path.write_text(text)
    os.chmod(path, 0o600)
    return str(path)


@pytest.fixture
def make_config(tmp_path) -> Callable[..., Config]:
    """Return a function writing appliance.toml (with secrets configured) and loading it."""

    def make(
        *,
        tables: list[dict] | None = None,
        password: bool = False,
        hostile: bool = False,
        actions_open: bool = False,
        web: dict | None = None,
    ) -> Config:
        sections = {
            "appliance": {"state_dir": str(tmp_path / "state")},
            "ssh": {
                "host": "bastion.example",
                "user": "replica",
                "key_file": _secret_file(tmp_path / "id_ed25519", SECRETS["ssh_key"]),
                "known_hosts": str(tmp_path / "known_hosts"),
            },
            "source": {
                "host": "db",
                "database": "sales",
                "user": "ro",
                "password_file": _secret_file(tmp_path / "source.password", SECRETS["source_password"]),
            },
            "sync": {"interval": "30s", "warn_lag": "10m", "max_lag": "1h"},
            "notify": {"webhook_url": "https://hooks.example.com/services/T0/B0/" + SECRETS["webhook_token"]},
            "web": {"host": "127.0.0.1", "port": 8080, "actions_open": actions_open, **(web or {})},
        }
        if password:
            sections["web"]["api_token_file"] = _secret_file(
                tmp_path / "web.token", SECRETS["web_token"] + "\n"
            )
        tables = tables or [{"name": "public.orders"}, {"name": "public.items"}]
        if hostile:
            tables = [{"name": HOSTILE_TABLE, "replica_name": "evil"}, *tables]
        lines = []
        for name, values in sections.items():
            lines.append(f"[{name}]")
            lines += [f"{k} = {_toml(v)}" for k, v in values.items()]
        for t in tables:
            lines.append("[[tables]]")
            lines += [f"{k} = {_toml(v)}" for k, v in t.items()]
        path = tmp_path / "appliance.toml"
        path.write_text("\n".join(lines) + "\n")
        return load(path, environ={})

    return make


@pytest.fixture
def config(make_config) -> Config:
    """A trusted-LAN config: actions open without a token (the forms' CSRF rules still apply)."""
    return make_config(actions_open=True)


@pytest.fixture
def app(config):
    return create_app(config)


@pytest.fixture
def client(app):
    return app.test_client()
