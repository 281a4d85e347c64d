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
    # The ports beside the hosts go too (test_redact_leaves_out_addresses_and_ports).
    assert "cannot reach bastion the bastion as the SSH user with the SSH key file" in out
    assert "login of the database role to the database host refused" in out
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
        assert "cannot reach bastion the bastion (user" in page and "bastion:22" not in page


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        # libpq: the address it resolved the (already redacted) host name to, and the port
        (
            'connection to server at "db" (127.0.0.1), port 5432 failed: Connection refused',
            'connection to server at "the database host" failed: Connection refused',
        ),
        (
            'connection to server at "db" (::1), port 5432 failed: Connection refused',
            'connection to server at "the database host" failed: Connection refused',
        ),
        # libpq through the tunnel: the local end of the forward
        (
            'connection to server at "127.0.0.1", port 40123 failed: FATAL:  password authentication failed',
            'connection to server at "an address" failed: FATAL:  password authentication failed',
        ),
        # paramiko names only addresses
        (
            "[Errno None] Unable to connect to port 22 on 203.0.113.5 or 2001:db8::5",
            "[Errno None] Unable to connect to the port on an address or an address",
        ),
        # our own messages and hints: OpenSSH's [host]:port, host:port/database, ssh-keyscan -p
        (
            "cannot reach bastion [bastion.example]:2222: refused; ssh-keyscan -p 2222 bastion.example",
            "cannot reach bastion the bastion: refused; ssh-keyscan the bastion",
        ),
        (
            "database unreachable at db:5432/sales: timeout",
            "database unreachable at the database host/sales: timeout",
        ),
        (
            "from fe80::1%eth0, [2001:db8::7]:22 and ::ffff:192.0.2.1.",
            "from an address, an address and an address.",
        ),
    ],
)
def test_redact_leaves_out_addresses_and_ports(config, said, shown):
    assert redactor(config)(said) == shown


def test_redact_keeps_times_versions_and_hardware_addresses(config):
    text = "at 12:30:45 (2024-01-01T10:30:00Z), PostgreSQL 16.2, mac aa:bb:cc:dd:ee:ff, 3 ports"
    assert redactor(config)(text) == text
