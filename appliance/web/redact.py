"""What the open page never shows: the bastion's and the database's names, addresses, ports,
users, paths, pids.

Reading is open to the LAN, so everything the page and its JSON serve passes through
here first: error texts keep their meaning ("cannot reach the bastion: Connection refused")
without telling a stranger where production lives or where the keys are kept. The
configured names are not enough: libpq adds the address it resolved ('"db" (10.1.2.3),
port 5432') and paramiko names only addresses ("port 22 on 203.0.113.5"), so every IP
address (v4 and v6) and every port beside a host goes too. The full text stays on the
Pi: ``appliance status`` and the journal.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from ..config import Config

_PID = re.compile(r"\s*\(pid \d+\)|\bpid \d+\b")
# Candidates only: ipaddress decides (a time such as 12:30:45 is no address).
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?!\w|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?(?:%[\w.-]+)?(?![\w:]|\.\d)"
)
ADDRESS = "an address"
_HOSTS = f"(the bastion|the database host|{ADDRESS})"
# '[host]:2222' (OpenSSH's form), 'host:5432', '"host" (an address), port 5432' (libpq),
# 'port 22 on an address' (paramiko), 'ssh-keyscan -p 2222 host' (our own hints).
_PORTS = [
    (re.compile(r"\s*\(" + ADDRESS + r"\)"), ""),
    (re.compile(r"\[" + _HOSTS + r"\]"), r"\1"),
    (re.compile(_HOSTS + r":\d+\b"), r"\1"),
    (re.compile(r", port \d+\b"), ""),
    (re.compile(r"\bport \d+\b"), "the port"),
    (re.compile(r"(?<=\s)-p \d+ "), ""),
]
# Values that are names of our own making or of the tables, never free text.
_KEEP = {"state", "name", "replica_name", "kind", "column", "since", "last_sync", "at", "tunnel", "database"}


def _word(value: str) -> re.Pattern[str]:
    """Match ``value`` as a whole name: "db" in "db:5432", never inside "sdb" or "dbname"."""
    return re.compile(r"(?<![\w.-])" + re.escape(value) + r"(?![\w-])")


def redactor(config: Config) -> Callable[[str], str]:
    """Return a function that replaces this config's names, users and paths in a text."""
    names: list[tuple[str, str]] = []
    if config.ssh is not None:
        names += [
            (config.ssh.key_file, "the SSH key file"),
            (config.ssh.known_hosts, "the known_hosts file"),
            (config.ssh.password_file, "the SSH password file"),
            (config.ssh.host, "the bastion"),
            (config.ssh.user, "the SSH user"),
        ]
    names += [
        (config.source.password_file, "the database password file"),
        (config.web.api_token_file, "the token file"),
        (config.state_dir, "the state folder"),
        (config.source.host, "the database host"),
        (config.source.user, "the database role"),
    ]
    # Longest first, so a path is replaced whole before a host name inside it.
    pairs = [(_word(value), label) for value, label in sorted(names, key=lambda p: -len(p[0])) if value]

    def redact(text: str) -> str:
        for pattern, label in pairs:
            text = pattern.sub(label, text)
        return _PID.sub("", _without_addresses(text))

    return redact


def _address(match: re.Match[str]) -> str:
    candidate = match.group(0)
    try:
        ipaddress.ip_address(candidate.split("%", 1)[0])
    except ValueError:
        return candidate
    return ADDRESS if any(c.isalnum() for c in candidate) else candidate


def _without_addresses(text: str) -> str:
    """Return ``text`` with IP addresses replaced and the ports beside hosts left out."""
    text = _IPV4.sub(_address, _IPV6.sub(_address, text))  # v6 first: ::ffff:192.0.2.1
    for pattern, replacement in _PORTS:
        text = pattern.sub(replacement, text)
    return text


def redacted(value: Any, redact: Callable[[str], str]) -> Any:
    """Return ``value`` (a status document, an event, a list of them) with every text redacted
    and every ``pid`` left out."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            k: v if k in _KEEP and isinstance(v, str) else redacted(v, redact)
            for k, v in value.items()
            if k != "pid"
        }
    if isinstance(value, list):
        return [redacted(v, redact) for v in value]
    return value
