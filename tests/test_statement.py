"""One statement per call: sync/statement.py against the server's own parser.

psycopg2 sends every statement with the simple query protocol, which runs as many
statements as a string holds; the appliance scans each one first. The oracle here is
PostgreSQL itself over the extended protocol (psycopg 3's ``exec_params``), which refuses
a string of two statements: whatever the scan accepts, the server must parse as one.
"""

from __future__ import annotations

import dataclasses

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.tomlconf import RO_PASSWORD, RO_USER

from appliance.config import parse
from appliance.errors import QueryError
from appliance.sync.source import Source
from appliance.sync.statement import _flaw, one_statement

ONE = [
    "SELECT 1",
    "SELECT ';'",
    "SELECT 'it''s; fine'",
    "SELECT E'\\';' ",
    "SELECT $$;$$",
    "SELECT $tag$ $$ ; $tag$",
    'SELECT 1 AS "a;b"',
    "SELECT 1 /* ; /* nested ; */ still ; */",
    "SELECT 1 -- ; a comment to the end",
    "SELECT U&'\\0041;'",
    "SELECT a$b FROM (SELECT 1 AS a$b) s",
    "SELECT x'1F', b'101', n'x;y'",
]
TWO = [
    "SELECT 1; SELECT 2",
    "SELECT 1;",
    "SELECT E'\\\\'; INSERT INTO t VALUES (1)",  # E'\\' is one backslash: the quote ends
    "SELECT 'a''' ; COMMIT",
    "SELECT $a$ x $b$; $b$ $a$ ; DROP TABLE t",
    "SELECT 1 /* */ ; SELECT 2",
    "SELECT 1 -- \n; SELECT 2",
    "SELECT 1 AS \u00a0$$; SELECT 2; SELECT 1 AS \u00a0$$",  # to PostgreSQL U+00A0 is a letter
]
UNSURE = ["SELECT 'open", 'SELECT "open', "SELECT $$ open", "SELECT /* open", "SELECT $", "SELECT '\x00'"]


@pytest.mark.parametrize("sql", ONE)
def test_statement_one_statement_passes(sql):
    assert _flaw(sql) is None
    assert one_statement(sql) == sql


@pytest.mark.parametrize("sql", TWO + UNSURE)
def test_statement_two_statements_or_an_unclosed_quote_are_refused(sql):
    with pytest.raises(QueryError) as e:
        one_statement(sql)
    assert "was not sent to the source" in str(e.value) and "`where`" in str(e.value)


def _server_sees_several(conn: psycopg.Connection, sql: str) -> bool:
    """Ask the server, over the extended protocol, whether ``sql`` is several statements."""
    result = conn.pgconn.exec_params(sql.encode(), [])
    message = (result.error_message or b"").decode(errors="replace")
    return "cannot insert multiple commands" in message


@pytest.fixture(scope="module")
def server(pg):
    with psycopg.connect(
        host="127.0.0.1", port=pg.port, dbname="sales", user=RO_USER, password=RO_PASSWORD, autocommit=True
    ) as conn:
        conn.execute("SET statement_timeout = '2s'")
        yield conn


def test_statement_the_servers_parser_agrees_on_the_examples(server):
    for sql in ONE:
        assert not _server_sees_several(server, sql), sql
    for sql in TWO[:1] + TWO[2:]:  # "SELECT 1;" is one statement to the server; refused anyway
        assert _server_sees_several(server, sql), sql


PIECES = [
    "'", '"', "$$", "$a$", "$b$", "E'", "e'", "U&'", "x'", "\\", "''", ";", "--", "/*", "*/",
    "\n", "1", "x", " ", "a$", "é", "\u00a0", "\u3000", "\x1c", "-", "/", "*", "(", ")", "SELECT 2",
]  # fmt: skip


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(PIECES), max_size=14))
def test_statement_what_the_scan_accepts_the_server_parses_as_one(server, pieces):
    sql = "SELECT 1 " + "".join(pieces)
    if _flaw(sql) is None:
        assert not _server_sees_several(server, sql), sql


TEXT = st.text(alphabet=st.sampled_from(list("ab;'\"$\\-/*\n é\u00a0")), max_size=8)


@st.composite
def atoms(draw) -> str:
    """One well-formed piece of a SELECT list: each kind of quoting PostgreSQL has."""
    v = draw(TEXT)
    kind = draw(st.sampled_from(["string", "estring", "dollar", "ident", "block", "line"]))
    if kind == "string":
        return "'" + v.replace("'", "''") + "'"
    if kind == "estring":
        return "E'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if kind == "dollar":
        return "$q$" + v.replace("$q", "") + "$q$"
    if kind == "ident":
        return '1 AS "' + (v.replace('"', '""') or "x") + '"'
    if kind == "block":
        return "/*" + v.replace("*", ".").replace("/", ".") + "*/ 1"
    return "1 --" + v.replace("\n", " ") + "\n"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(atoms(), min_size=1, max_size=4), st.booleans())
def test_statement_the_scan_and_the_server_agree_on_well_formed_statements(server, items, second):
    sql = "SELECT " + ", ".join(items) + ("; SELECT 2" if second else "")
    assert (_flaw(sql) is not None) == second, sql
    assert _server_sees_several(server, sql) == second, sql  # the generator is right too


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")))
def test_statement_any_value_as_a_parameter_is_one_statement_and_comes_back_exact(source, value):
    # psycopg2 quotes parameters into the text the scan reads: every value must pass it.
    assert source.execute("SELECT %s::text", (value,)) == [(value,)]


@pytest.fixture(scope="module")
def source(pg):
    with Source(pg.url(RO_USER, RO_PASSWORD, "sales")) as src:
        yield src


def test_statement_a_where_that_escaped_the_config_check_never_reaches_the_source(sales):
    # The config refuses such a `where` (test_bounds); this is the second wall, proven with a
    # role that CAN write, so nothing but the scan stands between the text and an INSERT.
    sales.sql("CREATE TABLE public.canary (n int); CREATE TABLE public.orders (id int)", db="sales")
    config = parse(
        {"source": {"host": "db", "database": "sales", "user": "ro"}, "tables": [{"name": "orders"}]}
    )
    evil = "true) ; COMMIT; INSERT INTO public.canary VALUES (11); SELECT 1 FROM public.orders WHERE (true"
    table = dataclasses.replace(config.tables[0], where=evil)
    with Source(sales.url(db="sales")) as writer:
        with pytest.raises(QueryError) as e:
            writer.count(table)
        assert "was not sent to the source" in str(e.value)
        assert writer.execute("SELECT count(*) FROM public.canary") == [(0,)]
