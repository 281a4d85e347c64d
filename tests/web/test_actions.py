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
