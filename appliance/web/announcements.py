"""``/api/announcements``: the source team announces a schema change from their own tools.

``GET`` lists what is announced (reading is open, like the page). ``POST`` a JSON object
``{"table", "change", "on", "note", "auto_accept"}`` with ``Authorization: Bearer TOKEN``:
announcing always needs the token, ``actions_open`` or not (it silences drift alarms).
"""

from __future__ import annotations

import hmac
from datetime import date

from flask import Blueprint, Response, jsonify, request

from ..clock import utcnow
from ..errors import ConfigError
from ..health import announce
from ..health.store import StateStore
from .site import site

bp = Blueprint("announcements", __name__, url_prefix="/api/announcements")


def _error(message: str, code: int) -> tuple[Response, int]:
    return jsonify({"error": message}), code


@bp.get("")
def listing() -> Response:
    """Return the announced changes, by date."""
    config = site().config
    with StateStore(config.state_dir, readonly=True) as store:
        return jsonify({"announcements": announce.announcements(config, store)})


@bp.post("")
def create() -> tuple[Response, int]:
    """Record one announcement (token required)."""
    token = site().password
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not token:
        return _error("announcing needs [web] api_token_file on the appliance, and that token as Bearer", 403)
    wait = site().throttle.wait(request.remote_addr or "unknown")
    if wait:
        return _error(f"too many wrong tokens: wait {wait:.0f} s", 429)
    if not hmac.compare_digest(given.encode(), token.encode()):
        site().throttle.failed(request.remote_addr or "unknown")
        return _error("send the token as Authorization: Bearer TOKEN", 401)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error('send a JSON object: {"table": ..., "change": ..., "on": "YYYY-MM-DD"}', 400)
    try:
        day = date.fromisoformat(str(body.get("on")))
    except ValueError:
        return _error('"on" must be a date like 2026-12-10', 400)
    config = site().config
    try:
        with StateStore(config.state_dir) as store:
            entry = announce.announce(
                config,
                store,
                str(body.get("table") or ""),
                str(body.get("change") or ""),
                day,
                str(body.get("note") or "")[:500],
                "api",
                utcnow(),
                bool(body.get("auto_accept", False)),
            )
    except ConfigError as e:
        return _error(str(e), 400)
    site().cache.clear()
    return jsonify(entry), 201
