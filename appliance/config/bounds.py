"""Checks on values beyond their type: durations within sane bounds, URLs and e-mail
addresses that can work, and SQL filters that are one expression and nothing more.

A value can be well typed and still harmful: ``statement_timeout = "0s"`` turns the
timeout off at the source, ``interval = "1ms"`` floods it, and a ``where`` holding
``; COMMIT; ...`` runs statements of its own. Each problem names its key and the fix.
"""

from __future__ import annotations

import re
from email.utils import parseaddr
from urllib.parse import urlsplit

from ..clock import format_duration
from .settings import Problem

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
# key -> (shortest, longest) in seconds; keys not listed have no bound beyond their type.
DURATION_BOUNDS: dict[str, tuple[float, float]] = {
    "ssh.connect_timeout": (1, 5 * MINUTE),
    "ssh.keepalive": (2, 10 * MINUTE),  # the link counts as dead after this much silence
    "source.statement_timeout": (1, DAY),
    "source.connect_timeout": (1, 5 * MINUTE),
    "sync.interval": (1, DAY),
    "sync.probe_interval": (1, HOUR),
    "sync.lookback": (0, DAY),
    "sync.reconcile_every": (1, 30 * DAY),
    "sync.verify_every": (1, 365 * DAY),
    "sync.warn_lag": (1, 30 * DAY),
    "sync.max_lag": (1, 365 * DAY),
    "retention.events": (DAY, 10 * 365 * DAY),
    "retention.runs": (HOUR, 365 * DAY),
    "retention.outbox": (HOUR, 365 * DAY),
    "retention.history": (DAY, 10 * 365 * DAY),
}
# key -> (smallest, largest) for whole numbers with a range narrower than their type's.
NUMBER_BOUNDS: dict[str, tuple[int, int]] = {
    # Fewer versions than this would drop a busy table's history within hours; more would
    # let one table's history fill a card (each version is about 100 bytes).
    "retention.history_rows": (1_000, 100_000_000),
    # Rows per page (pages are also bounded by bytes): more only costs memory on a Pi.
    "sync.batch_size": (1, 200_000),
}
_CONTROL = re.compile(r"[\x00-\x20\x7f]")  # no spaces either in a URL or a host name
_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f]")


def duration_problems(values: dict[str, dict]) -> list[Problem]:
    """Return a problem per duration outside its bounds; ``values`` is {section: {key: seconds}}.

    Numbers outside theirs (``NUMBER_BOUNDS``) too: loading calls this for every section."""
    problems = []
    for key, (low, high) in DURATION_BOUNDS.items():
        section, name = key.split(".")
        seconds = values.get(section, {}).get(name)
        if seconds is None or low <= seconds <= high:
            continue
        low_text = "0s" if low == 0 else format_duration(low)
        problems.append(
            Problem(
                key,
                f"{_short(seconds)} is outside {low_text}..{format_duration(high)}",
                f"choose a duration between {low_text} and {format_duration(high)}",
            )
        )
    return problems + number_problems(values)


def number_problems(values: dict[str, dict]) -> list[Problem]:
    """Return a problem per whole number outside its bounds (``NUMBER_BOUNDS``)."""
    problems = []
    for key, (low, high) in NUMBER_BOUNDS.items():
        section, name = key.split(".")
        number = values.get(section, {}).get(name)
        if number is None or low <= number <= high:
            continue
        problems.append(
            Problem(
                key, f"{number:,} is outside {low:,}..{high:,}", f"choose a number between {low} and {high}"
            )
        )
    return problems


def _short(seconds: float) -> str:
    if seconds == 0 or seconds >= 1:
        return format_duration(seconds)
    return f"{seconds * 1000:g}ms"


def notify_problems(notify: dict) -> list[Problem]:
    """Return problems with the webhook URL and the SMTP settings (never echoing the URL)."""
    problems = []
    url = notify.get("webhook_url") or ""
    if url:
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
            port_ok = True
        except ValueError:
            port_ok = False
        if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or _CONTROL.search(url):
            # The URL often holds a token: name what is wrong, never the URL itself.
            problems.append(
                Problem(
                    "notify.webhook_url",
                    "is not an http:// or https:// URL with a host name (its text is not shown: "
                    "it may hold a token)",
                    'write webhook_url = "https://hooks.example.com/..."',
                )
            )
    host = notify.get("smtp_host") or ""
    if host and (_CONTROL.search(host) or "/" in host or "@" in host):
        problems.append(
            Problem(
                "notify.smtp_host", f"{host!r} is not a host name", 'write smtp_host = "mail.example.com"'
            )
        )
    for key, addresses in (
        ("smtp_from", [notify.get("smtp_from") or ""]),
        ("smtp_to", notify.get("smtp_to") or []),
    ):
        for address in addresses:
            if address and not _is_address(address):
                problems.append(
                    Problem(
                        f"notify.{key}", f"{address!r} is not one e-mail address", 'e.g. "ops@example.com"'
                    )
                )
    return problems


def _is_address(text: str) -> bool:
    name, address = parseaddr(text)
    return bool(address) and address.count("@") == 1 and not _LINE_BREAKING.search(text) and "," not in text


def expression_problem(key: str, text: str) -> Problem | None:
    """Return a problem unless ``text`` is one SQL expression: no ``;``, no comment, no
    dollar quoting, quotes closed and parentheses balanced (so it cannot close ours)."""
    why = _expression_flaw(text)
    if why is None:
        return None
    return Problem(
        key,
        f"is not one SQL expression: {why}",
        'write a single condition such as "NOT is_test" or "status <> \'demo\'"',
    )


# Functions a filter may not call: they act at the source rather than compute a value. A
# read-only transaction stops most writes, not these: large objects (lo_from_bytea, lo_create
# on PostgreSQL 15), session settings that outlive the statement (set_config: the statement
# timeout, the quoting rule the one-statement scan relies on), notifications, signals to other
# sessions, sleeps and locks (pg_*), other connections (dblink), and statements hidden in a
# string (query_to_xml and its kin run the text they are given).
_SIDE_EFFECT_PREFIXES = ("pg_", "lo_", "dblink", "query_to_", "cursor_to_", "table_to_", "schema_to_",
                         "database_to_", "txid_")  # fmt: skip
_SIDE_EFFECT_NAMES = frozenset({"set_config", "nextval", "setval", "currval", "lastval", "loread", "lowrite"})
_STRING = re.compile(r"'(?:[^']|'')*'")
_CALL = re.compile(r'("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s*\(')


def _forbidden_call(text: str) -> str | None:
    """Return the first function in ``text`` that a filter may not call, or None."""
    for match in _CALL.finditer(_STRING.sub("''", text)):
        name = match.group(1)
        name = name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()
        if name in _SIDE_EFFECT_NAMES or name.startswith(_SIDE_EFFECT_PREFIXES):
            return name
    return None


def _expression_flaw(text: str) -> str | None:
    called = _forbidden_call(text)
    if called is not None:
        return f"it calls {called}(), which acts at the source instead of computing a value"
    if "\\" in text:
        # E'\'' ends a string where this scan (and standard SQL) would not: refuse escapes.
        return "it holds a backslash (escape strings are not allowed)"
    depth, i, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            end = i + 1
            while end < n and (text[end] != ch or text[end : end + 2] == ch * 2):
                end += 2 if text[end : end + 2] == ch * 2 else 1
            if end >= n:
                return "a quote is not closed"
            i = end + 1
            continue
        if ch == ";":
            return 'it holds ";" (a second statement)'
        if text[i : i + 2] in ("--", "/*"):
            return "it holds a comment"
        if ch == "$":
            return 'it holds "$" (dollar quoting)'
        if ch == "\x00":
            return "it holds a NUL character"
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return 'a ")" closes more than it opened'
        i += 1
    return "a parenthesis is not closed" if depth else None
