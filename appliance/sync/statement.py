"""One statement per call: the last check before any text is sent to the source.

psycopg2 speaks only PostgreSQL's simple query protocol, in which one string may carry
several statements ("...; COMMIT; BEGIN READ WRITE; INSERT ..."). The extended protocol
would refuse that, but psycopg2 cannot use it (the named driver, BRIEF 8). So every
statement, after psycopg2 has put its parameters in, is scanned here with PostgreSQL's
own lexical rules (scan.l: quotes, E'' escapes, dollar quotes, nested comments, quoted
identifiers) and refused unless it holds exactly one statement and nothing unterminated.

The scan is deliberately stricter than the server: anything it cannot place (an
unterminated quote or comment, a "$" that is neither a parameter nor a dollar quote) is
refused, so a difference between this scan and the server's can only refuse a statement,
never let a second one through. The session pins ``standard_conforming_strings=on``
(source.pg_session_options), the rule for plain '...' strings assumed here.
"""

from __future__ import annotations

import re

from ..errors import QueryError

_IDENT_START = r"A-Za-z_\u0080-\U0010ffff"
_IDENT_REST = _IDENT_START + r"0-9$"
_TOKEN = re.compile(
    r"""
      (?P<space>[ \t\n\r\f\v]+)  # PostgreSQL's whitespace: a non-ASCII space is a letter to it
    | (?P<line_comment>--[^\n\r]*)
    | (?P<block_comment>/\*)
    | (?P<estring>[eE]'(?:[^'\\]|\\.|'')*')
    | (?P<prefixed>(?:[uU]&|[bBxXnN])'(?:[^']|'')*')
    | (?P<uident>[uU]&"(?:[^"]|"")*")
    | (?P<string>'(?:[^']|'')*')
    | (?P<ident>"(?:[^"]|"")*")
    | (?P<dollar>\$(?:[START][START0-9]*)?\$)
    | (?P<param>\$[0-9]+)
    | (?P<lone_dollar>\$)
    | (?P<word>[START][REST]*)
    | (?P<number>[0-9]+)
    | (?P<semicolon>;)
    | (?P<other>[^REST'"$;/\s-]+|[/-])
    """.replace("START", _IDENT_START).replace("REST", _IDENT_REST),
    re.VERBOSE | re.DOTALL,
)
_COMMENT_EDGE = re.compile(r"/\*|\*/")


def one_statement(sql: str) -> str:
    """Return ``sql`` unchanged, or raise QueryError unless it is exactly one statement."""
    flaw = _flaw(sql)
    if flaw is not None:
        raise QueryError(
            f"a statement was not sent to the source: {flaw}. The appliance sends one "
            f"statement at a time; check the table's `where` and `tag` settings in the "
            f"config (each must be a single condition)."
        )
    return sql


def _flaw(sql: str) -> str | None:
    """Return why ``sql`` is not one statement, or None."""
    pos, n = 0, len(sql)
    if "\x00" in sql:
        return "it holds a NUL character"
    while pos < n:
        m = _TOKEN.match(sql, pos)
        if m is None:  # an opening quote with no end: the server would read on
            return f"a quote or identifier opened at character {pos} is not closed"
        kind = m.lastgroup
        if kind == "semicolon":
            return 'it holds ";", the end of a statement, followed by more'
        if kind == "block_comment":
            end = _comment_end(sql, m.end())
            if end is None:
                return f"a comment opened at character {pos} is not closed"
            pos = end
            continue
        if kind == "dollar":
            close = sql.find(m.group(), m.end())
            if close < 0:
                return f"a dollar quote opened at character {pos} is not closed"
            pos = close + len(m.group())
            continue
        if kind == "lone_dollar":
            return f'a "$" at character {pos} is neither a parameter nor a dollar quote'
        pos = m.end()
    return None


def _comment_end(sql: str, pos: int) -> int | None:
    """Return the index after a block comment's end; PostgreSQL's comments nest."""
    depth = 1
    for edge in _COMMENT_EDGE.finditer(sql, pos):
        depth += 1 if edge.group() == "/*" else -1
        if depth == 0:
            return edge.end()
    return None
