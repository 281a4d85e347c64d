"""The actions blueprint: acknowledge the alert, accept a table's drift.

Each action is a confirmation page (GET, never cached, never auto-refreshed, so a
half-typed password survives) and a POST that does it. A POST needs:

- a CSRF token from that page: signed with the per-process secret, bound to the action
  and to a nonce in the browser's session cookie (SameSite=Strict), valid for an hour;
- the password (``[web] api_token_file`` / ``api_token_env``), in the form or as
  ``Authorization: Bearer``. A Bearer request needs no CSRF token: a page on another site
  cannot make a browser send that header. Wrong tokens are throttled per client.

Without a token the actions are closed, unless ``[web] actions_open = true`` opens them on
a trusted LAN; accepting a breaking change needs the token even then (BRIEF 9).

Neither the password nor anything typed into the form is ever echoed back.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response as BaseResponse  # what redirect() returns

from ..clock import parse_duration, utcnow
from ..errors import ConfigError
from ..health import status as health
from ..health.maintenance import end_now, start_now
from ..health.store import StateStore
from .site import site

bp = Blueprint("actions", __name__, url_prefix="/actions")

TOKEN_AGE = 3600  # seconds a confirmation page's form stays usable


def _serializer() -> URLSafeTimedSerializer:
    key = current_app.secret_key
    if key is None:  # create_app sets one per process
        raise RuntimeError("the status page app has no secret_key: build it with create_app")
    return URLSafeTimedSerializer(key, salt="appliance-actions")


def _csrf_token(action: str) -> str:
    """Return a token for ``action``, tied to this browser's session."""
    nonce = session.setdefault("nonce", secrets.token_urlsafe(16))
    return _serializer().dumps({"action": action, "nonce": nonce})


def _csrf_ok(action: str) -> bool:
    try:
        data = _serializer().loads(request.form.get("csrf", ""), max_age=TOKEN_AGE)
    except BadSignature:  # also covers an expired token
        return False
    nonce = session.get("nonce")
    return (
        isinstance(data, dict)
        and data.get("action") == action
        and isinstance(nonce, str)
        and bool(nonce)
        and hmac.compare_digest(str(data.get("nonce")), nonce)
    )


def _same(given: str, password: str) -> bool:
    return hmac.compare_digest(given.encode(), password.encode())


CLOSED = (
    "Actions from the page need a token: put a long random string in a file of mode 0600 and "
    "name it in [web] api_token_file (install-on-pi makes one), or, on a trusted LAN only, set "
    "[web] actions_open = true. On the Pi itself: appliance ack, appliance schema accept."
)
BREAKING = (
    "Accepting a breaking change copies the table again, so it always needs the token "
    "([web] api_token_file), also with actions_open. On the Pi itself: appliance schema accept."
)


def closed_because(breaking: bool = False) -> str | None:
    """Return why the page may not act without a token, or None when it may."""
    if site().password:
        return None
    if not site().config.web.actions_open:
        return CLOSED
    return BREAKING if breaking else None


def _client() -> str:
    return request.remote_addr or "unknown"


def _wrong(title: str, message: str) -> Response:
    site().throttle.failed(_client())
    return _result(title, message, 403)


def _guard(action: str, breaking: bool = False) -> Response | None:
    """Return the refusal for a POST that may not do ``action``, or None to go ahead."""
    why = closed_because(breaking)
    if why:
        return _result("Token needed", why, 403)
    wait = site().throttle.wait(_client())
    if wait:
        return _result("Too many wrong tokens", f"Wait {wait:.0f} s before trying again.", 429)
    password = site().password
    auth = request.headers.get("Authorization", "")
    if password and auth.startswith("Bearer "):
        if _same(auth.removeprefix("Bearer ").strip(), password):
            return None
        return _wrong("Wrong token", "The Bearer token is not the configured one.")
    if not _csrf_ok(action):
        return _result(
            "Form expired",
            "This form is out of date or did not come from this page. Open the page again and retry.",
            400,
        )
    if password and not _same(request.form.get("password", ""), password):
        return _wrong("Wrong password", "The password is not the one in web.api_token.")
    return None


def _result(title: str, message: str, code: int, back: str | None = None) -> Response:
    body = render_template(
        "actions/result.html", title=title, message=message, back=back or url_for("status.overview")
    )
    return Response(body, code, mimetype="text/html")


def _confirm(token_for: str, breaking: bool = False, **context: Any) -> str:
    snap = site().snapshot()
    return render_template(
        "actions/confirm.html",
        status=snap.status,
        state=snap.state,
        csrf=_csrf_token(token_for),
        password=bool(site().password),
        closed=closed_because(breaking),
        **context,
    )


def _breaking(tables: list[dict]) -> bool:
    return any(d.get("breaking") for t in tables for d in t.get("drift") or [])


@bp.get("/ack")
def ack_form() -> str:
    """Ask before acknowledging the current alert."""
    return _confirm("ack", action="ack", target=url_for(".ack"))


@bp.post("/ack")
def ack() -> BaseResponse:
    """Acknowledge the current alert (like the button and ``appliance ack``)."""
    refused = _guard("ack")
    if refused:
        return refused
    if not health.acknowledge(site().config, by="web"):
        return _result("Nothing to acknowledge", "The state is ok: there is no alert.", 409)
    site().cache.clear()
    return redirect(url_for("status.overview"), 303)


def _table_name(name: str) -> str:
    try:
        return site().config.table(name).name
    except ConfigError:
        abort(404, description=f'No table "{name}" is configured on this appliance.')


@bp.get("/accept/<path:name>")
def accept_form(name: str) -> str:
    """Ask before accepting a table's drift, listing what would be accepted."""
    table = _table_name(name)
    entry = next(t for t in site().snapshot().status["tables"] if t["name"] == table)
    return _confirm(
        f"accept:{table}",
        _breaking([entry]),
        action="accept",
        table=entry,
        target=url_for(".accept", name=table),
    )


@bp.get("/accept")
def accept_all_form() -> str:
    """Ask before accepting every change, new tables at the source included."""
    status = site().snapshot().status
    return _confirm(
        "accept:*",
        _breaking(status["tables"]),
        action="accept_all",
        tables=status["tables"],
        new_tables=status["source"].get("drift", []),
        target=url_for(".accept_all"),
    )


@bp.post("/accept")
def accept_all() -> BaseResponse:
    """Accept every table's drift and the new tables at the source."""
    refused = _guard("accept:*", _breaking(site().snapshot().status["tables"]))
    if refused:
        return refused
    if not health.accept_drift(site().config, None, by="web"):
        return _result("Nothing to accept", "There is no drift to accept.", 409)
    site().cache.clear()
    return redirect(url_for("status.overview"), 303)


@bp.post("/accept/<path:name>")
def accept(name: str) -> BaseResponse:
    """Accept the table's drift: the live schema becomes its contract."""
    table = _table_name(name)
    entry = next(t for t in site().snapshot().status["tables"] if t["name"] == table)
    refused = _guard(f"accept:{table}", _breaking([entry]))
    if refused:
        return refused
    back = url_for("status.table", name=table)
    if not health.accept_drift(site().config, table, by="web"):
        return _result("Nothing to accept", f"{table} has no drift to accept.", 409, back)
    site().cache.clear()
    return redirect(back, 303)


@bp.get("/maintenance")
def maintenance_form() -> str:
    """Ask before starting, extending or ending a maintenance window."""
    return _confirm("maintenance", action="maintenance", window=_window(), target=url_for(".maintenance"))


def _window() -> dict | None:
    return (site().snapshot().status.get("maintenance") or {}).get("active")


@bp.post("/maintenance")
def maintenance() -> BaseResponse:
    """Start a window now (``for`` and ``reason``), or end the one started by hand (``do=end``)."""
    refused = _guard("maintenance")
    if refused:
        return refused
    config = site().config
    with StateStore(config.state_dir) as store:
        if request.form.get("do") == "end":
            if not end_now(store, by="web"):
                return _result(
                    "Nothing to end", "No window was started by hand (the config's run their course).", 409
                )
        else:
            try:
                seconds = parse_duration(request.form.get("for", ""))
            except ValueError:
                seconds = 0
            if not 60 <= seconds <= 7 * 86400:
                return _result("Not a length", "Choose how long the window lasts: 1m to 7d.", 400)
            start_now(config, store, seconds, request.form.get("reason", "")[:200], utcnow(), by="web")
        health.update(config, store)
    site().cache.clear()
    return redirect(url_for("status.overview"), 303)
