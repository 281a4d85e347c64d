"""The Flask app factory of the status page: one read-only blueprint, one for actions."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from flask import Flask, Response, render_template

from ..clock import age, format_duration, local_time, parse_iso
from ..config import Config
from ..errors import ApplianceError, SecretError
from ..secrets import read_secret
from . import actions, announcements, browse, data, data_fast, views
from .cache import RenderCache
from .hosts import allowed_hosts, host_ok, origin_ok
from .reading import lan_ip
from .site import Site

# Defence in depth behind Jinja's escaping: even injected markup could run no script.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def create_app(config: Config) -> Flask:
    """Return the status page's WSGI app for ``config`` (reads the state store only)."""
    app = Flask(__name__)
    # Per process: restarting the page invalidates sessions and CSRF tokens, which is fine.
    app.secret_key = secrets.token_bytes(32)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict", MAX_CONTENT_LENGTH=64 * 1024
    )
    app.extensions["appliance"] = Site(
        config, RenderCache(config.state_dir), _password(config), allowed_hosts(config, lan_ip)
    )
    app.add_template_filter(_when, "when")
    app.add_template_filter(_ago, "ago")
    app.add_template_filter(_duration, "duration")

    app.register_blueprint(views.bp)
    app.register_blueprint(actions.bp)
    app.register_blueprint(data.bp)
    app.register_blueprint(announcements.bp)
    app.register_blueprint(browse.bp)
    # The server finds the hot pages' fast path here: app.wsgi_app is a FastPath.
    # Flask documents wrapping wsgi_app this way; mypy refuses any assignment to a method.
    # Inside it, the data API's JSON pages skip Flask's dispatch too (data_fast).
    inner = data_fast.DataPath(app.wsgi_app, app.extensions["appliance"])
    app.wsgi_app = FastPath(inner, app.extensions["appliance"], views.HOT)  # type: ignore[method-assign]
    app.after_request(_secure)
    app.register_error_handler(404, _error_page)
    app.register_error_handler(405, _error_page)
    app.register_error_handler(ApplianceError, _unavailable)
    return app


def _password(config: Config) -> str | None:
    """Return the actions' password from [web] api_token_file / api_token_env, or None."""
    token = read_secret(
        file=config.web.api_token_file,
        env=config.web.api_token_env,
        key="web.api_token",
        environ=config.environ,
    )
    if token is not None and not token.strip():
        raise SecretError(
            "web.api_token: the token is empty. Write a long random string into "
            "the file (or variable), or unset web.api_token_file / _env."
        )
    return token


class FastPath:
    """Serve the ready bytes of the most polled pages without entering Flask.

    Cached bytes alone still paid for Flask's request context, routing and response
    objects on every poll; this answers a hit with two stat() calls and a dict lookup. A
    miss (or any other request) goes to Flask, which renders and fills the cache. The
    server asks ``route`` and ``ready`` to answer hits on its I/O thread (server.py).
    """

    def __init__(self, app: Callable, site: Site, hot: dict[str, tuple[str, str]]) -> None:
        self.app, self.site, self.hot = app, site, hot

    def route(self, method: str, path: str, query: str) -> tuple[str, str] | None:
        """Return (cache name, content type) when this request may be answered here."""
        return self.hot.get(path) if method in ("GET", "HEAD") and not query else None

    def ready(self, route: tuple[str, str]) -> bytes | None:
        """Return the ready bytes of ``route`` (the previous ones during a re-render), or None."""
        return self.site.cache.peek(route[0], stale_ok=True)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        refusal = _misdirected(environ, method, self.site.hosts)
        if refusal is not None:
            status, text = refusal
            refused = text.encode()
            start_response(
                status,
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(refused))),
                    *_HEADERS.items(),
                ],
            )
            return [refused]
        route = self.route(method, environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
        body = self.ready(route) if route else None
        if route is None or body is None:
            return self.app(environ, start_response)
        start_response(
            "200 OK",
            [
                ("Content-Type", route[1]),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-cache"),
                *_HEADERS.items(),
            ],
        )
        return [b""] if method == "HEAD" else [body]


def _misdirected(environ: dict, method: str, hosts: frozenset[str]) -> tuple[str, str] | None:
    """Return (status, text) refusing a request for a foreign host name or origin, or None.

    A request without ``Host`` (HTTP/1.0 scripts) passes: browsers always send one.
    """
    host = environ.get("HTTP_HOST")
    if host is not None and not host_ok(host, hosts):
        return (
            "400 Bad Request",
            "This status page answers only to this appliance's own names and addresses. If this "
            "name is one of them, add it to [web] allowed_hosts.\n",
        )
    if method == "POST" and not origin_ok(environ.get("HTTP_ORIGIN"), hosts):
        return "403 Forbidden", "Refused: this form was sent from a page of another site.\n"
    return None


def _secure(response: Response) -> Response:
    response.headers.update(_HEADERS)
    response.headers.setdefault("Cache-Control", "no-cache")
    return response


def _error_page(error) -> tuple[str, int]:
    return render_template(
        "error.html", code=error.code, title=error.name, message=error.description
    ), error.code


def _unavailable(error: ApplianceError) -> tuple[str, int]:
    # The state store cannot be read: say so (as text) instead of a bare 500.
    return render_template("error.html", code=503, title="Status unavailable", message=str(error)), 503


# -- template filters: times are shown in UTC, ages relative to the reading ----------------


def _when(value: str | datetime | None) -> str:
    """Return a stored time by the one rule (``clock.local_time``): "14:02:05 UTC", "never"."""
    dt = value if isinstance(value, datetime) else parse_iso(value)
    return local_time(dt, datetime.now(UTC)) if dt else "never"


def _ago(text: str | None, now: datetime) -> str:
    """Return "5m ago" for an ISO time, relative to ``now``."""
    dt = parse_iso(text)
    return age(dt, now) if dt else ""


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)
