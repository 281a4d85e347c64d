"""The open page tells what is wrong without telling a stranger where production lives."""

from __future__ import annotations

import pytest

from appliance.health.store import StateStore
from appliance.web.redact import redactor

from .states import fill


def test_redact_names_users_and_paths_of_the_config(config):
    redact = redactor(config)
    text = (
        f"cannot reach bastion bastion.example:22 as replica with {config.ssh.key_file}; "
        f"login of ro to db:5432 refused; state store {config.state_dir}/state.sqlite; "
        "agent started (pid 4242)"
    )
    out = redact(text)
    assert "bastion.example" not in out and config.ssh.key_file not in out and config.state_dir not in out
    assert "cannot reach bastion the bastion:22 as the SSH user with the SSH key file" in out
    assert "login of the database role to the database host:5432 refused" in out
    assert "the state folder/state.sqlite" in out and "pid" not in out


def test_redact_leaves_words_that_only_contain_a_name(config):
    redact = redactor(config)  # source.host "db", source.user "ro"
    assert (
        redact("dbname and roles in sdb, error: ro.") == "dbname and roles in sdb, error: the database role."
    )


@pytest.mark.parametrize("path", ["/", "/api/status", "/events", "/tables/public.orders"])
def test_redact_pages_show_no_host_user_path_or_pid(config, client, path):
    fill(config, "outage")
    with StateStore(config.state_dir) as store:
        error = f"cannot reach bastion bastion.example:22 (user replica, key {config.ssh.key_file})"
        store.put("source", {"down": True, "kind": "tunnel", "tunnel": "down", "last_error": error})
        store.event("agent", "agent started (pid 4242)")
        store.run("2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", False, 0, f"pass failed: {error}")
    page = client.get(path).text
    for secret in ("bastion.example", config.ssh.key_file, "pid 4242", '"pid"', "user replica"):
        assert secret not in page, (path, secret)
    if path in ("/", "/api/status"):
        assert "cannot reach bastion the bastion:22" in page
