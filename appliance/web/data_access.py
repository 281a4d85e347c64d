"""Who may read the data API and the table browser: closed, token-protected or open.

The data is production's, so the API is closed by default (BRIEF 9, "Data API"): with
neither a token (``[web] api_token_file`` / ``api_token_env``) nor ``[web] data_api_open``
every data route answers 403 with a body saying how to open it. With a token a request
carries it as ``Authorization: Bearer TOKEN``, or as the password of HTTP Basic (any user
name), which is what a spreadsheet's "from web" dialog and a browser's prompt send.
``data_api_open = true`` serves the data without a token on a trusted LAN; the token then
still guards the actions. The token is compared in constant time and never echoed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json

from flask import Response
from werkzeug.wrappers import Request  # Flask's request, or the bare one of data_fast

from .throttle import Throttle

CLOSED, TOKEN, OPEN = "closed", "token", "open"

# What the status page says about each posture.
WORDS = {
    CLOSED: "closed (no token set and data_api_open is false)",
    TOKEN: "protected by the token in web.api_token_file / api_token_env",
    OPEN: "open to anyone on this network (data_api_open = true)",
}

HOW_TO_OPEN = (
    "The data API is closed. To open it, put a long random token into a file only the "
    "service user can read and name it in the config ([web] api_token_file, or "
    "api_token_env for an environment variable), then send it as 'Authorization: Bearer "
    "TOKEN' or as the password of HTTP Basic; or set [web] data_api_open = true to serve "
    "the data without a token on a trusted network. Restart appliance-web afterwards."
)
HOW_TO_AUTHENTICATE = (
    "This data needs the appliance's token: send 'Authorization: Bearer TOKEN', or HTTP "
    "Basic with any user name and the token as the password."
)
REALM = 'Basic realm="appliance data", charset="UTF-8"'


def posture(token: str | None, data_api_open: bool) -> str:
    """Return CLOSED, TOKEN or OPEN for this configuration."""
    if data_api_open:
        return OPEN
    return TOKEN if token else CLOSED


def presented(request: Request) -> str | None:
    """Return the token a request carries (Bearer, or the password of Basic), else None."""
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def refusal(
    token: str | None,
    data_api_open: bool,
    request: Request,
    html: bool = False,
    throttle: Throttle | None = None,
) -> Response | None:
    """Return the 403/401 (429 for a client guessing tokens) answer for a request that may
    not read the data, or None."""
    state = posture(token, data_api_open)
    if state == OPEN:
        return None
    if state == CLOSED:
        return _error(403, HOW_TO_OPEN, html)
    client = request.remote_addr or "unknown"
    wait = throttle.wait(client) if throttle is not None else 0.0
    if wait:
        return _error(429, f"Too many wrong tokens from this address: wait {wait:.0f} s.", html)
    given = presented(request)
    if given is not None and token is not None and hmac.compare_digest(given.encode(), token.encode()):
        return None
    if given is not None and throttle is not None:  # a wrong token, not a first request without one
        throttle.failed(client)
    response = _error(401, HOW_TO_AUTHENTICATE, html)
    # Makes a browser (and Excel, LibreOffice) ask for the token as a password.
    response.headers["WWW-Authenticate"] = REALM
    return response


def _error(code: int, message: str, html: bool) -> Response:
    if html:
        from flask import render_template

        title = {403: "Data closed", 429: "Too many wrong tokens"}.get(code, "Token needed")
        return Response(render_template("error.html", code=code, title=title, message=message), code)
    return Response(json.dumps({"error": message}) + "\n", code, mimetype="application/json")
