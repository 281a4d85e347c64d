"""Actions: POST only, a CSRF token from the confirmation page, the optional password."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape

from appliance.health.store import StateStore
from appliance.schema import contract
from appliance.web import create_app

from .conftest import SECRETS
from .states import drift_at_source, fill

TOKEN = SECRETS["web_token"]


def _csrf(client, path: str) -> str:
    page = client.get(path).text
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def _events(config, kind: str) -> list[str]:
    with StateStore(config.state_dir, readonly=True) as store:
        return [e["message"] for e in store.events(100) if e["kind"] == kind]


def _acks(config) -> list[str]:
    return _events(config, "ack")


def _stored(config, key: str):
    with StateStore(config.state_dir, readonly=True) as store:
        return store.get(key)


@pytest.fixture
def guarded(make_config):
    """A config with [web] api_token_file set, and a client of its app."""
    config = make_config(password=True)
    return config, create_app(config).test_client()


def test_actions_ack_with_the_pages_token(config, client):
    fill(config, "outage")
    csrf = _csrf(client, "/actions/ack")
    response = client.post("/actions/ack", data={"csrf": csrf})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert client.get("/api/status").json["acknowledged"] is True
    assert "acknowledged" in client.get("/").text
    assert _acks(config) == ["outage acknowledged by web"]


def test_actions_ack_without_a_token_is_refused(config, client):
    fill(config, "outage")
    assert client.post("/actions/ack").status_code == 400
    assert client.post("/actions/ack", data={"csrf": "forged"}).status_code == 400
    assert _acks(config) == []


def test_actions_token_of_another_session_or_action_is_refused(config, app, client):
    fill(config, "drift")
    accept_token = _csrf(client, "/actions/accept/public.orders")
    assert client.post("/actions/ack", data={"csrf": accept_token}).status_code == 400
    other = app.test_client()  # another browser: its own session cookie
    ack_token = _csrf(other, "/actions/ack")
    assert client.post("/actions/ack", data={"csrf": ack_token}).status_code == 400
    assert _acks(config) == []


def test_actions_get_never_changes_state(config, client):
    fill(config, "outage")
    page = client.get("/actions/ack").text
    assert '<form method="post" action="/actions/ack">' in page
    assert 'http-equiv="refresh"' not in page  # no reload while someone types the password
    assert _acks(config) == []


def test_actions_nothing_to_acknowledge_when_ok(config, client):
    fill(config, "ok")
    assert "Nothing to acknowledge" in client.get("/actions/ack").text
    fill(config, "outage")
    token = _csrf(client, "/actions/ack")
    fill(config, "ok")
    assert client.post("/actions/ack", data={"csrf": token}).status_code == 409


def test_actions_password_is_required_when_configured(guarded):
    config, client = guarded
    fill(config, "outage")
    page = client.get("/actions/ack").text
    assert 'type="password" name="password"' in page
    csrf = _csrf(client, "/actions/ack")
    assert client.post("/actions/ack", data={"csrf": csrf}).status_code == 403
    wrong = client.post("/actions/ack", data={"csrf": csrf, "password": "guess-Typed-1"})
    assert wrong.status_code == 403 and "guess-Typed-1" not in wrong.text
    assert _acks(config) == []
    right = client.post("/actions/ack", data={"csrf": csrf, "password": TOKEN})
    assert right.status_code == 303 and _acks(config) == ["outage acknowledged by web"]


def test_actions_bearer_token_works_without_a_form(guarded):
    config, client = guarded
    fill(config, "outage")
    bad = client.post("/actions/ack", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 403 and _acks(config) == []
    good = client.post("/actions/ack", headers={"Authorization": f"Bearer {TOKEN}"})
    assert good.status_code == 303 and _acks(config) == ["outage acknowledged by web"]


def test_actions_bearer_is_ignored_when_no_password_is_configured(config, client):
    fill(config, "outage")
    response = client.post("/actions/ack", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 400 and _acks(config) == []


def test_actions_accept_drift_makes_the_live_schema_the_contract(config, client):
    fill(config, "ok")
    live = drift_at_source(config)
    before = contract.load(config.state_dir, "public.orders")
    assert client.get("/api/status").json["state"] == "drift"
    page = client.get("/actions/accept/public.orders").text
    assert escape('column "discount_code" (text) was added') in page
    csrf = _csrf(client, "/actions/accept/public.orders")
    response = client.post("/actions/accept/public.orders", data={"csrf": csrf})
    assert response.status_code == 303
    assert response.headers["Location"] == "/tables/public.orders"
    after = contract.load(config.state_dir, "public.orders")
    assert after != before and after == {"version": contract.VERSION, **live}
    assert [c["name"] for c in after["columns"]] == ["id", "total", "discount_code"]
    assert _stored(config, "drift:public.orders") == []
    assert client.get("/api/status").json["state"] == "ok"  # the page's cache was cleared
    assert _events(config, "accept") == ["public.orders: drift accepted by web (1 change(s))"]


def test_actions_accept_with_nothing_to_accept_is_409(config, client):
    fill(config, "ok")
    assert "has no drift to accept" in client.get("/actions/accept/public.items").text
    fill(config, "drift")
    csrf = _csrf(client, "/actions/accept/public.orders")
    fill(config, "ok")  # accepted elsewhere (the CLI, the button) in the meantime
    response = client.post("/actions/accept/public.orders", data={"csrf": csrf})
    assert response.status_code == 409 and "no drift to accept" in response.text


def test_actions_accept_all_accepts_new_tables_too(config, client):
    fill(config, "ok")
    live = drift_at_source(config)
    before = contract.load(config.state_dir, "public.orders")
    with StateStore(config.state_dir) as store:
        store.put(
            "source_drift",
            [
                {
                    "kind": "table_added",
                    "column": "",
                    "breaking": False,
                    "detail": "new table public.refunds appeared at the source",
                    "value": "public.refunds",
                }
            ],
        )
    assert "New at the source:" in client.get("/").text
    page = client.get("/actions/accept").text
    assert "new table public.refunds appeared" in page and escape('column "discount_code"') in page
    response = client.post("/actions/accept", data={"csrf": _csrf(client, "/actions/accept")})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    after = contract.load(config.state_dir, "public.orders")
    assert after != before and after == {"version": contract.VERSION, **live}
    assert _stored(config, "drift:public.orders") == []
    assert _stored(config, "source_drift") == []
    assert "public.refunds" in _stored(config, "known_tables")
    assert sorted(_events(config, "accept")) == [
        "new tables accepted by web",
        "public.orders: drift accepted by web (1 change(s))",
    ]
    assert client.get("/api/status").json["state"] == "ok"


def test_actions_accept_unknown_table_is_404(config, client):
    assert client.get("/actions/accept/public.nope").status_code == 404
    assert client.post("/actions/accept/public.nope").status_code == 404


def test_actions_need_post(client):
    assert client.put("/actions/ack").status_code == 405
    assert client.delete("/actions/accept/public.orders").status_code == 405


# -- who may act: closed without a token, actions_open on a trusted LAN, never a stranger --


def test_actions_are_closed_without_a_token_by_default(make_config):
    config = make_config()  # neither a token nor actions_open
    client = create_app(config).test_client()
    fill(config, "outage")
    page = client.get("/actions/ack").text
    assert "Not from this page:" in page and "api_token_file" in page and "actions_open" in page
    assert '<form method="post"' not in page
    with client.session_transaction() as session:  # even with a valid form token
        session["nonce"] = "n"
    refused = client.post("/actions/ack", data={"csrf": "x"})
    assert refused.status_code == 403 and "need a token" in refused.text
    assert _acks(config) == []


def _breaking_drift(config) -> None:
    fill(config, "ok")
    with StateStore(config.state_dir) as store:
        store.put(
            "drift:public.orders",
            [
                {
                    "kind": "column_dropped",
                    "column": "total",
                    "breaking": True,
                    "detail": 'column "total" was dropped',
                }
            ],
        )
        store.put("live:public.orders", {"table": "public.orders", "columns": [], "primary_key": ["id"]})


def test_actions_open_lan_may_acknowledge_but_never_accept_a_breaking_change(config, client):
    _breaking_drift(config)
    page = client.get("/actions/accept/public.orders").text
    assert "always needs the token" in page and '<form method="post"' not in page
    refused = client.post("/actions/accept/public.orders", data={"csrf": "whatever"})
    assert refused.status_code == 403 and "always needs the token" in refused.text
    assert client.post("/actions/accept", data={"csrf": "whatever"}).status_code == 403
    assert _stored(config, "drift:public.orders") != [] and _events(config, "accept") == []


def test_actions_a_breaking_change_is_accepted_with_the_token(guarded):
    config, client = guarded
    _breaking_drift(config)
    response = client.post("/actions/accept/public.orders", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 303 and _stored(config, "drift:public.orders") == []


def test_actions_wrong_tokens_are_throttled_per_client(guarded):
    from appliance.web.throttle import LIMIT, WINDOW, Throttle

    config, client = guarded
    fill(config, "outage")
    now = [1000.0]
    client.application.extensions["appliance"].throttle = Throttle(clock=lambda: now[0])
    for _ in range(LIMIT):
        assert client.post("/actions/ack", headers={"Authorization": "Bearer guess"}).status_code == 403
    right = {"Authorization": f"Bearer {TOKEN}"}
    blocked = client.post("/actions/ack", headers=right)
    assert blocked.status_code == 429 and "Wait 60 s" in blocked.text and _acks(config) == []
    other = client.post("/actions/ack", headers=right, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 303  # another client is not held up by the guesser
    now[0] += WINDOW + 1
    fill(config, "outage")
    assert client.post("/actions/ack", headers=right).status_code == 303


@pytest.mark.parametrize("path", ["/", "/api/status", "/metrics", "/actions/ack", "/tables/public.orders"])
def test_actions_foreign_host_names_are_refused_before_any_view(config, client, path):
    fill(config, "outage")
    response = client.get(path, headers={"Host": "rebind.attacker.example"})
    assert response.status_code == 400 and "allowed_hosts" in response.text
    assert client.get(path, headers={"Host": "localhost:8080"}).status_code == 200


def test_actions_post_from_another_origin_is_refused(config, client):
    fill(config, "outage")
    csrf = _csrf(client, "/actions/ack")
    evil = client.post(
        "/actions/ack", data={"csrf": csrf}, headers={"Origin": "http://rebind.attacker.example"}
    )
    assert evil.status_code == 403 and _acks(config) == []
    same = client.post("/actions/ack", data={"csrf": csrf}, headers={"Origin": "http://localhost:8080"})
    assert same.status_code == 303 and _acks(config) == ["outage acknowledged by web"]


def test_actions_allowed_hosts_replaces_the_defaults(make_config):
    config = make_config(actions_open=True, web={"allowed_hosts": ["pi.example.lan"]})
    client = create_app(config).test_client()
    fill(config, "ok")
    assert client.get("/", headers={"Host": "pi.example.lan:8080"}).status_code == 200
    assert client.get("/", headers={"Host": "localhost"}).status_code == 400


def test_actions_maintenance_started_and_ended_from_the_page(config, client):
    fill(config, "ok")
    page = client.get("/").text
    assert "none planned" in page and "Start maintenance" in page
    csrf = _csrf(client, "/actions/maintenance")
    started = client.post(
        "/actions/maintenance", data={"csrf": csrf, "for": "2h", "reason": "<b>upgrade</b>", "do": "start"}
    )
    assert started.status_code == 303
    window = _stored(config, "maintenance")
    assert window["by"] == "web" and window["reason"] == "<b>upgrade</b>"
    page = client.get("/").text
    assert (
        "Maintenance:</strong>\n  until" in page
        and escape("<b>upgrade</b>") in page
        and "<b>upgrade" not in page
    )
    ended = client.post(
        "/actions/maintenance", data={"csrf": _csrf(client, "/actions/maintenance"), "do": "end"}
    )
    assert ended.status_code == 303 and _stored(config, "maintenance") is None
    assert [e for e in _events(config, "maintenance")][0] == "maintenance ended by web"


def test_actions_maintenance_length_must_make_sense(config, client):
    fill(config, "ok")
    csrf = _csrf(client, "/actions/maintenance")
    for length in ("1s", "99d", "soon"):
        assert client.post("/actions/maintenance", data={"csrf": csrf, "for": length}).status_code == 400
    assert _stored(config, "maintenance") is None


def test_actions_maintenance_needs_the_token_unless_actions_are_open(make_config):
    config = make_config()
    client = create_app(config).test_client()
    fill(config, "ok")
    assert client.post("/actions/maintenance", data={"csrf": "x", "for": "1h"}).status_code == 403
    assert _stored(config, "maintenance") is None


def test_actions_announcements_need_the_token(guarded):
    config, client = guarded
    fill(config, "ok")
    body = {"table": "public.orders", "change": "add column channel text", "on": "2026-12-10", "note": "v2"}
    assert client.post("/api/announcements", json=body).status_code == 401
    assert (
        client.post("/api/announcements", json=body, headers={"Authorization": "Bearer no"}).status_code
        == 401
    )
    made = client.post("/api/announcements", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert made.status_code == 201 and made.json["kinds"] == ["column_added"]
    listed = client.get("/api/announcements").json["announcements"]
    assert [(a["table"], a["change"], a["on"]) for a in listed] == [
        ("public.orders", "add column channel text", "2026-12-10")
    ]
    bad = client.post(
        "/api/announcements",
        json={**body, "change": "teleport"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert bad.status_code == 400 and "is not a change" in bad.json["error"]
    assert "Announced changes" in client.get("/").text


def test_actions_announcements_are_closed_without_a_token_even_on_an_open_lan(config, client):
    response = client.post(
        "/api/announcements", json={"table": "public.orders", "change": "drop table", "on": "2026-12-10"}
    )
    assert response.status_code == 403 and "api_token_file" in response.json["error"]


def test_actions_table_page_gives_advance_notice_of_its_announced_changes(guarded):
    config, client = guarded
    fill(config, "ok")
    body = {"table": "public.orders", "change": "drop column coupon", "on": "2099-01-01", "note": "v2"}
    assert (
        client.post("/api/announcements", json=body, headers={"Authorization": f"Bearer {TOKEN}"}).status_code
        == 201
    )
    orders = client.get("/tables/public.orders").text
    assert "Advance notice" in orders and "drop column coupon" in orders and "(v2)" in orders
    assert "Advance notice" not in client.get("/tables/public.items").text


def test_actions_use_the_token_beside_the_config_when_none_is_named(make_config, tmp_path):
    # install-on-pi and the flasher write api.token beside appliance.toml, and the config
    # the user wrote names no token: the page must use that file, closing actions to others.
    token = tmp_path / "api.token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    config = make_config()
    assert config.web.api_token_file == str(token)
    client = create_app(config).test_client()
    fill(config, "outage")
    assert client.post("/actions/ack", headers={"Authorization": "Bearer nope"}).status_code == 403
    good = client.post("/actions/ack", headers={"Authorization": f"Bearer {TOKEN}"})
    assert good.status_code == 303 and _acks(config) == ["outage acknowledged by web"]


def test_actions_a_named_token_wins_over_the_one_beside_the_config(make_config, tmp_path):
    (tmp_path / "api.token").write_text("another-token-entirely\n")
    (tmp_path / "api.token").chmod(0o600)
    config = make_config(password=True)
    assert config.web.api_token_file == str(tmp_path / "web.token")
