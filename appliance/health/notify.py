"""Notifications on state changes: a webhook (Slack-compatible JSON) and optional e-mail.

A state change puts one message per channel into the outbox in the state store (so one
message per change, not per cycle, and nothing is lost across restarts). A sender thread
delivers them off the sync path with exponential backoff; a slow or hanging receiver only
delays its own message. Messages carry the status, never secrets; the webhook URL (which
often holds a token) is never logged.
"""

from __future__ import annotations

import json
import logging
import re
import smtplib
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage

from ..clock import format_duration
from ..config import Config
from .store import StateStore

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds for one delivery attempt
MAX_ATTEMPTS = 12  # about 27 minutes of retries with the backoff below (1 s doubling, capped)
MAX_DELAY = 600.0


def channels(config: Config) -> list[str]:
    out = []
    if config.notify.webhook_url:
        out.append("webhook")
    if config.notify.smtp_host and config.notify.smtp_to:
        out.append("email")
    return out


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
TEXT_LIMIT = 500  # a reason from the source can be any size: a message stays readable


def one_line(text: object, limit: int = TEXT_LIMIT) -> str:
    """Return ``text`` on one line: control characters (CR, LF, NUL ...) become one space.

    Names and messages from the source can hold anything; a line break in an e-mail header
    raises, and in a webhook's text it fakes lines of its own.
    """
    flat = " ".join(_CONTROL.sub(" ", str(text)).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def slack_escape(text: str) -> str:
    """Escape what Slack-style receivers read as markup (``<!channel>``, ``<url|link>``),
    and Mattermost's plain mentions (``@channel``, ``@here``, ``@someone``): a zero-width
    space after each ``@`` shows the same text and pings nobody."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("@", "@\u200b")


def headline(appliance: str, state: str, previous: str | None, reason: str) -> str:
    """Return the one line that says what happened, plain (no markup), cleaned."""
    if state == "maintenance":  # planned: said once, calmly, instead of an outage alert
        return one_line(f"{appliance}: maintenance started - {reason}")
    if previous == "maintenance" and state != "outage":
        return one_line(f"{appliance}: maintenance ended, now {state.upper()}. {reason}")
    if state == "ok" and previous not in (None, "start", "ok"):
        return one_line(f"{appliance}: back to OK (was {previous}). {reason}")
    return one_line(f"{appliance}: {state.upper()} - {reason}")


def message(status: dict, previous: str | None) -> dict:
    """Return the notification for a new status: a text line plus structured fields.

    ``text`` is escaped for Slack-style receivers; the structured fields are plain (JSON
    escapes them) but on one line each.
    """
    host = socket.gethostname()
    state = status["state"]
    text = slack_escape(headline(host, state, previous, status["reason"]))
    tables = [
        {
            "name": one_line(t["name"]),
            "state": t["state"],
            "lag": format_duration(t["lag_seconds"]) if t["lag_seconds"] is not None else None,
        }
        for t in status["tables"]
    ]
    return {
        "text": text,
        "appliance": host,
        "state": state,
        "previous": previous,
        "since": status["since"],
        "reason": one_line(status["reason"]),
        "tables": tables,
    }


def agent_message(down: bool, status: dict) -> dict:
    """Return the notification that the sync agent stopped (or runs again)."""
    beat = status["agent"].get("last_heartbeat") or "never"
    if down:
        state, previous = "agent down", "agent running"
        reason = (
            f"the sync agent is not running (last heartbeat {beat}): the local data stops updating. "
            f"On the Pi: systemctl status appliance-sync; journalctl -u appliance-sync"
        )
    else:
        state, previous = "agent running", "agent down"
        reason = f"the sync agent runs again; the appliance is {status['state']}: {status['reason']}"
    return {
        **message(status, None),
        "state": state,
        "previous": previous,
        "reason": one_line(reason),
        "text": slack_escape(headline(socket.gethostname(), state, previous, reason)),
    }


def announcement_message(entry: dict, reminder: bool = False) -> dict:
    """Return the notification that a schema change was announced (or ships tomorrow)."""
    host = socket.gethostname()
    state = "change tomorrow" if reminder else "change announced"
    note = f" ({entry['note']})" if entry.get("note") else ""
    reason = one_line(f"{entry['table']}: {entry['change']} on {entry['on']}{note}")
    return {
        "text": slack_escape(headline(host, state, None, reason)),
        "appliance": host,
        "state": state,
        "previous": None,
        "since": entry.get("at") or "",
        "reason": reason,
        "tables": [],
        "announcement": entry,
    }


def enqueue(config: Config, store: StateStore, status: dict, previous: str | None) -> None:
    """Queue the message for every configured channel."""
    payload = message(status, previous)
    for channel in channels(config):
        store.enqueue(channel, payload)


def send_webhook(url: str, payload: dict) -> None:
    """POST the JSON payload; raise OSError on failure (HTTP errors included)."""
    body = json.dumps(payload).encode()
    req = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "appliance-notify"},
    )
    with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310 - URL is config
        resp.read()


def send_email(config: Config, payload: dict) -> None:
    """Send the message by SMTP; raise OSError/smtplib errors on failure."""
    msg = EmailMessage()
    # one line: a header with a line break raises ValueError, and a reason can hold one
    # (a quoted PostgreSQL identifier may contain a newline)
    msg["Subject"] = one_line(
        headline(payload["appliance"], payload["state"], payload.get("previous"), payload["reason"]), 120
    )
    msg["From"] = config.notify.smtp_from
    msg["To"] = ", ".join(config.notify.smtp_to)
    plain = headline(payload["appliance"], payload["state"], payload.get("previous"), payload["reason"])
    lines = [plain, "", f"since: {payload['since']}", ""]
    lines += [
        one_line(f"{t['name']}: {t['state']}" + (f", lag {t['lag']}" if t["lag"] else ""))
        for t in payload["tables"]
    ]
    msg.set_content("\n".join(lines))
    with smtplib.SMTP(config.notify.smtp_host, config.notify.smtp_port, timeout=TIMEOUT) as smtp:
        smtp.send_message(msg)


def backoff(attempts: int) -> float:
    """Return the seconds to wait after a message has failed ``attempts + 1`` times."""
    return min(MAX_DELAY, 2.0**attempts)


def _describe(error: Exception) -> str:
    """Return the error without its text, which may hold the URL (and the token in it)."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    return type(error).__name__ + (f": {error.reason}" if hasattr(error, "reason") else "")


class Sender:
    """Deliver the outbox in a background thread until stopped.

    ``clock`` returns the time in seconds (``time.time``), the base of the outbox's retry
    times; ``max_attempts`` is how many failures make the sender give a message up.
    """

    def __init__(
        self, config: Config, clock: Callable[[], float] = time.time, max_attempts: int = MAX_ATTEMPTS
    ) -> None:
        self.config = config
        self.clock = clock
        self.max_attempts = max_attempts
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="notify", daemon=True)

    def start(self) -> Sender:
        if channels(self.config):
            self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout=TIMEOUT + 2)

    def _loop(self) -> None:
        with StateStore(self.config.state_dir) as store:
            while not self.stopping.is_set():
                try:
                    self.deliver_due(store)
                except Exception:  # a busy or damaged state store: the thread must outlive it
                    log.exception("notification pass failed; trying again")
                self.wake.wait(1.0)
                self.wake.clear()

    def deliver_due(self, store: StateStore) -> int:
        """Try every due message once; return how many were delivered."""
        delivered = 0
        for item_id, channel, payload, attempts in store.due(self.clock()):
            if not store.claim(item_id, self.clock(), self.clock() + 3 * TIMEOUT):
                continue  # the other process's sender has it
            try:
                if channel == "webhook":
                    send_webhook(self.config.notify.webhook_url, payload)
                else:
                    send_email(self.config, payload)
            # Refused, timed out, HTTP 4xx/5xx, SMTP errors, a garbled reply, a malformed URL, or
            # anything a hostile payload provokes: that message's failure, never the sender's.
            except Exception as e:
                give_up = attempts + 1 >= self.max_attempts
                delay = backoff(attempts)
                store.retry_later(item_id, self.clock() + delay, _describe(e), give_up)
                log.warning(
                    "notification by %s failed (%s); %s",
                    channel,
                    _describe(e),
                    "giving up" if give_up else f"retrying in {delay:.0f}s",
                )
                if give_up:
                    store.event("notify", f"gave up sending a {channel} notification: {_describe(e)}")
                continue
            store.sent(item_id)
            delivered += 1
        return delivered
