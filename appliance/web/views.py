"""The read-only blueprint: the pages, the machine endpoints and the OLED picture.

Every page an engineer or a scraper polls is served from bytes rendered once per
generation (see ``cache``); only the older pages of the event log are rendered per
request, and those are keyset pages whose cost does not grow with the log.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse  # what redirect() returns

from ..errors import ApplianceError, ConfigError
from ..schema import lint_report
from . import advice, data_access, eventlog, history
from .metrics import CONTENT_TYPE, exposition
from .reading import EVENT_PAGE, EVENTS_ON_PAGE, events_before, history_inputs, hostname, lan_ip, read_table
from .site import Site, site

bp = Blueprint("status", __name__)

REFRESH = 15  # seconds between the page's own reloads (a meta refresh: no JavaScript)
# Drift kinds of the data checks (appliance/datachecks.py); every other kind is schema.
DATA_CHECKS = {"null_in_not_null", "value_not_allowed", "json_keys_changed"}
SIGNS = {
    "column_added": "+",
    "table_added": "+",
    "enum_label_added": "+",
    "column_dropped": "-",
    "table_dropped": "-",
    "enum_label_removed": "-",
}
WORDS = {
    "ok": "OK",
    "lagging": "Lagging",
    "drift": "Schema drift",
    "maintenance": "Maintenance",
    "outage": "Outage",
}


# The pages polled most, by path: (cache name, content type). ``app`` serves their cached
# bytes without entering Flask when they are ready.
HOT = {
    "/": ("overview", "text/html; charset=utf-8"),
    "/api/status": ("api", "application/json"),
    "/metrics": ("metrics", CONTENT_TYPE),
}


def _cached(path: str, make: Callable[[], bytes]) -> Response:
    name, content_type = HOT[path]
    return Response(site().cache.get(name, make, stale_ok=True), content_type=content_type)


def _page(template: str, s: Site, **context) -> bytes:
    """Render a page with what every page shows (state, host, address)."""
    snap = s.snapshot()
    return render_template(
        template,
        status=snap.status,
        state=snap.state,
        now=snap.now,
        words=WORDS,
        hostname=hostname(),
        address=_address(s),
        refresh=REFRESH,
        **context,
    ).encode()


def _address(s: Site) -> str:
    """Return the page's URL as others reach it: the LAN address when bound to all."""
    host = s.config.web.host
    host = lan_ip() if host in ("", "0.0.0.0", "::") else host
    return f"http://{f'[{host}]' if ':' in host else host}:{s.config.web.port}/"


def _bars(s: Site) -> dict[str, list[history.Cell]]:
    def make():
        snap = s.snapshot()
        events, runs = history_inputs(s.config, history.window_start(snap.now))
        return history.bars(snap.status, events, runs, snap.now, s.config.sync.interval)

    return s.cache.get("bars", make)


@bp.get("/")
def overview() -> Response:
    """The overview: banner, tables with their 24 h bars, the display, the newest events."""
    s = site()

    def make() -> bytes:
        snap = s.snapshot()
        return _page(
            "status/overview.html",
            s,
            bars=_bars(s),
            source=snap.source,
            next_step=advice.next_step(snap.status, snap.source),
            events=eventlog.readable(snap.events),
            recovered=eventlog.recovered(snap.events, snap.state, snap.now),
            older=len(snap.events) == EVENTS_ON_PAGE,
            oled=_frame_png() is not None,
        )

    return _cached("/", make)


@bp.get("/tables/<path:name>")
def table(name: str) -> Response:
    """One table: its state, contract, drift as a diff, data-check violations, recent runs."""
    s = site()
    try:
        t = s.config.table(name)
    except ConfigError:
        abort(404, description=f'No table "{name}" is configured on this appliance.')

    def make() -> bytes:
        entry = next(e for e in s.snapshot().status["tables"] if e["name"] == t.name)
        contract, runs = read_table(s.config, t.name)
        # A pass's summary names each table it synced ("public.orders +3/-0"): this table's
        # own passes, and the passes that failed as a whole (the source was down).
        runs = [r for r in runs if f"{t.name} +" in (r["summary"] or "") or not r["ok"]][:10]
        checks = [d for d in entry["drift"] if d.get("kind") in DATA_CHECKS or "example" in d]
        changes = [{**d, "sign": SIGNS.get(d.get("kind"), "~")} for d in entry["drift"] if d not in checks]
        return _page(
            "status/table.html",
            s,
            table=entry,
            settings=t,
            contract=contract,
            changes=changes,
            checks=checks,
            runs=runs,
            cells=_bars(s)[t.name],
            data_api=data_access.posture(s.password, s.config.web.data_api_open),
            data_words=data_access.WORDS,
            lint=lint_report.load(s.config.state_dir, t.name),
        )

    return Response(s.cache.get(("table", t.name), make, stale_ok=True), mimetype="text/html")


@bp.get("/events")
def events() -> Response:
    """The event log, newest first, keyset-paged with ``?before=ID``."""
    raw = request.args.get("before", "")
    if raw and not (raw.isascii() and raw.isdigit() and len(raw) <= 18):  # SQLite integers are 64-bit
        abort(400, description="before must be an event number.")
    s = site()
    page = events_before(s.config, int(raw) if raw else None)
    body = _page(
        "status/events.html", s, events=eventlog.readable(page), older=len(page) == EVENT_PAGE, first=not raw
    )
    return Response(body, mimetype="text/html")


@bp.get("/api/status")
def api_status() -> Response:
    """The status document, exactly as ``appliance status --json`` prints it."""
    s = site()
    try:
        return _cached("/api/status", lambda: (json.dumps(s.snapshot().status, indent=2) + "\n").encode())
    except ApplianceError as e:
        return Response(json.dumps({"error": str(e)}) + "\n", 503, mimetype="application/json")


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition."""
    s = site()
    return _cached("/metrics", lambda: exposition(s.snapshot()))


# The tab's icon says the state at a glance, in the page's colours, with a shape as well as a
# colour (a circle when ok, a triangle when something needs looking at, a square in an outage).
_ICON_COLOURS = {
    "ok": "#1b7f3b",
    "lagging": "#b7791f",
    "drift": "#c2570c",
    "maintenance": "#2b6cb0",
    "outage": "#c53030",
}
_ICON_SHAPES = {
    "ok": '<circle cx="16" cy="16" r="14" fill="{c}"/>',
    "outage": '<rect x="3" y="3" width="26" height="26" rx="3" fill="{c}"/>',
}
_TRIANGLE = '<path d="M16 2 L30 29 L2 29 Z" fill="{c}"/>'


@bp.get("/favicon.svg")
def favicon() -> Response:
    """The state as the browser tab's icon."""
    try:
        state = site().snapshot().state
    except ApplianceError:
        state = "outage"
    shape = _ICON_SHAPES.get(state, _TRIANGLE).format(c=_ICON_COLOURS.get(state, "#718096"))
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">{shape}</svg>'
    return Response(svg, mimetype="image/svg+xml", headers={"Cache-Control": "no-cache"})


@bp.get("/livez")
def livez() -> Response:
    """200 while the web process answers (reads nothing)."""
    return Response("alive\n", mimetype="text/plain")


@bp.get("/readyz")
def readyz() -> Response:
    """503 during an outage (or when the state cannot be read), else 200."""
    try:
        status = site().snapshot().status
    except ApplianceError as e:
        return Response(f"not ready: {e}\n", 503, mimetype="text/plain")
    if status["state"] == "outage":
        return Response(f"not ready: outage: {status['reason']}\n", 503, mimetype="text/plain")
    return Response(f"ready: {status['state']}\n", mimetype="text/plain")


@bp.get("/oled.png")
def oled() -> Response:
    """What the OLED shows now, drawn by the indicator's own code (404 without it)."""
    draw = _frame_png()
    if draw is None:
        abort(404, description="The indicator's drawing code is not installed.")
    s = site()

    def make() -> bytes:
        from ..indicator.address import page_address

        snap = s.snapshot()
        return draw(snap.status, page_address(s.config.web).short, now=snap.now)

    return Response(s.cache.get("oled", make, stale_ok=True), mimetype="image/png")


@bp.get("/favicon.ico")
def favicon_ico() -> BaseResponse:
    """Browsers that ask here anyway get the state icon's address."""
    return redirect(url_for("status.favicon"), 302)


@functools.cache
def _frame_png() -> Callable[..., bytes] | None:
    """Return the indicator's ``frame_png``, or None when it cannot be imported."""
    try:
        from ..indicator.frame import frame_png
    except ImportError:
        return None
    return frame_png
