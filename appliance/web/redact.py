"""What the open page never shows: the bastion's and the database's names, users, paths, pids.

Reading is open to the LAN, so everything the page and its JSON serve passes through
here first: error texts keep their meaning ("cannot reach the bastion: Connection refused")
without telling a stranger where production lives or where the keys are kept. The full
text stays on the Pi: ``appliance status`` and the journal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..config import Config

_PID = re.compile(r"\s*\(pid \d+\)|\bpid \d+\b")
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
        return _PID.sub("", text)

    return redact


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
