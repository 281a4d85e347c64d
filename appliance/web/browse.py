"""The table browser: a table's rows on the status page, paged, filtered and sorted.

The same queries as the data API (``data_query``) and the same posture (``data_access``):
closed, token (a browser asks for it through HTTP Basic) or open. Every value is
escaped by the templates; a long value is shortened, with its whole text one click
away (``<details>``: no JavaScript).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from . import data_query as dq
from .data import TABLE_TIME_LIMIT, open_replica, served_tables, with_query
from .data_access import WORDS, posture, refusal
from .reading import hostname
from .replica_read import QueryTimeout, ReplicaMissing
from .site import site

bp = Blueprint("browse", __name__, url_prefix="/data")

PAGE = 50  # rows per page of the browser
SHORT = 40  # characters shown of a long value before "more"
OPS = [
    ("exact", "="),
    ("ne", "≠"),
    ("gt", ">"),
    ("gte", "≥"),
    ("lt", "<"),
    ("lte", "≤"),
    ("in", "in (a,b)"),
    ("isnull", "is null (1/0)"),
]


@bp.before_request
def _guard() -> Response | None:
    s = site()
    return refusal(s.password, s.config.web.data_api_open, request, html=True, throttle=s.throttle)


def _render(template: str, status: int = 200, **context: Any) -> Response:
    s = site()
    body = render_template(
        template,
        hostname=hostname(),
        address=request.host_url,
        posture=posture(s.password, s.config.web.data_api_open),
        posture_words=WORDS,
        **context,
    )
    return Response(body, status, mimetype="text/html")


@bp.get("/")
def index() -> Response:
    """The replicated tables, with links to browse each and to its JSON and CSV."""
    status = {t["name"]: t for t in site().snapshot().status["tables"]}
    tables = [(name, t, status.get(t.name, {})) for name, t in served_tables().items()]
    return _render("data/index.html", tables=tables)


@bp.get("/<path:name>")
def table(name: str) -> BaseResponse:
    """One table's rows: the API's filters and sorting, a page at a time."""
    if name not in served_tables():
        return _render(
            "error.html", 404, code=404, title="Not found", message=f"No table {name!r} is served."
        )
    args = request.args.to_dict(flat=False)
    column = request.args.get("_filter_column")
    if column is not None:  # the filter form: turn it into the API's column__op=value
        op = request.args.get("_filter_op", "exact")
        for k in ("_filter_column", "_filter_op", "_filter_value", "_next"):
            args.pop(k, None)
        key = column if op == "exact" else f"{column}__{op}"
        args.setdefault(key, []).append(request.args.get("_filter_value", ""))
        return redirect(with_query(url_for(".table", name=name), args), 303)
    try:
        with open_replica(time_limit=TABLE_TIME_LIMIT) as ro:
            info = dq.table_info(ro, name)
            if info is None:
                raise ReplicaMissing(f"{name} has not been synced yet.")
            q = dq.parse(info, request.args, args, PAGE)
            size = q.size or PAGE
            sql, params = dq.select(q, size + 1)
            fetched = ro.fetch(ro.execute(sql, params), size + 1)
    except (dq.BadRequest, QueryTimeout) as e:
        return _render("error.html", 400, code=400, title="Cannot show these rows", message=str(e))
    except ReplicaMissing as e:
        return _render("error.html", 503, code=503, title="Not synced yet", message=str(e))
    page = fetched[:size]
    here = url_for(".table", name=name)
    nxt = None
    if len(fetched) > size:
        nxt = with_query(here, {**args, "_next": dq.token(dq.order_values(q, page[-1]))})
    filters = [
        (k, v, _without(here, args, k, v)) for k, vs in args.items() if k not in dq.RESERVED for v in vs
    ]
    plain = {k: v for k, v in args.items() if k != "_next"}
    return _render(
        "data/table.html",
        name=name,
        settings=served_tables()[name],
        columns=[c.name for c in info.columns],
        rows=[[_cell(v) for v in row[: len(info.columns)]] for row in page],
        filters=filters,
        sort=q.sort or request.args.get("_sort"),
        desc=q.desc,
        ops=OPS,
        next_url=nxt,
        first_url=with_query(here, plain) if request.args.get("_next") else None,
        json_url=with_query(url_for("data.rows", name=f"{name}.json"), {"_size": [str(size)], **args}),
        csv_url=with_query(
            url_for("data.rows", name=f"{name}.csv"), {k: v for k, v in plain.items() if k != "_size"}
        ),
        sort_url=lambda col, desc: with_query(
            here,
            {
                **{k: v for k, v in plain.items() if k not in ("_sort", "_sort_desc")},
                ("_sort_desc" if desc else "_sort"): col,
            },
        ),
    )


def _without(here: str, args: dict[str, list[str]], key: str, value: str) -> str:
    """Return the page's URL without one filter (and from the first page)."""
    rest = {k: [v for v in vs if not (k == key and v == value)] for k, vs in args.items() if k != "_next"}
    return with_query(here, rest)


def _cell(value: Any) -> dict[str, Any]:
    """Return how the template shows one value: null, bytes, short text or shortened text."""
    if value is None:
        return {"null": True}
    if isinstance(value, bytes):
        return {"text": f"<{len(value):,} bytes>", "blob": True}
    text = str(value)
    return {"text": text, "short": text[:SHORT] + "…" if len(text) > SHORT else None}
