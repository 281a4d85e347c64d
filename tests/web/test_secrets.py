"""No secret of the config appears in any response: page, API, metrics, errors, actions."""

from __future__ import annotations

import re

import pytest

from appliance.errors import SecretError
from appliance.web import create_app

from .conftest import SECRETS
from .states import fill

GETS = [
    "/",
    "/tables/public.orders",
    "/tables/orders",
    "/events",
    "/events?before=5",
    "/api/status",
    "/metrics",
    "/livez",
    "/readyz",
    "/oled.png",
    "/static/style.css",
    "/favicon.ico",
    "/actions/ack",
    "/actions/accept",
    "/actions/accept/public.orders",
    "/tables/public.nope",
    "/events?before=x",
    "/nothing/here",
]


def _needles(config) -> list[bytes]:
    """Return every secret value configured, and the parts of them worth leaking."""
    values = [*SECRETS.values(), config.notify.webhook_url, *SECRETS["ssh_key"].splitlines()]
    return [v.strip().encode() for v in values if v.strip()]


def _responses(client):
    """Yield (what, response) for every route, and for each way of calling an action."""
    for path in GETS:
        with client.get(path) as response:
            yield f"GET {path}", response
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/actions/ack").text).group(1)
    forms = [
        {},
        {"csrf": csrf},
        {"csrf": csrf, "password": "wrong"},
        {"csrf": csrf, "password": SECRETS["web_token"]},
    ]
    for form in forms:
        yield f"POST /actions/ack {sorted(form)}", client.post("/actions/ack", data=form)
    for auth in ("Bearer wrong", f"Bearer {SECRETS['web_token']}"):
        yield (
            f"POST bearer {auth[:12]}",
            client.post("/actions/accept/public.orders", headers={"Authorization": auth}),
        )
    yield "POST accept all", client.post("/actions/accept", data={"csrf": csrf})


@pytest.mark.parametrize("state", ["outage", "drift"])
def test_secrets_never_appear_in_any_response(make_config, state):
    config = make_config(password=True)
    fill(config, state)
    client = create_app(config).test_client()
    seen = 0
    for what, response in _responses(client):
        seen += 1
        raw = response.get_data() + str(response.headers).encode()
        leaked = [n for n in _needles(config) if n in raw]
        assert not leaked, f"{what} leaks {leaked}"
    assert seen == len(GETS) + 7
    assert client.get("/api/status").json["acknowledged"] is True  # the right password worked


def test_secrets_missing_token_file_is_a_clear_error(make_config, tmp_path):
    config = make_config(password=True)
    (tmp_path / "web.token").unlink()
    with pytest.raises(SecretError, match="web.api_token_file: .* does not exist"):
        create_app(config)


def test_secrets_empty_token_is_refused(make_config, tmp_path):
    config = make_config(password=True)
    (tmp_path / "web.token").write_text("\n")
    with pytest.raises(SecretError, match="the token is empty") as info:
        create_app(config)
    assert SECRETS["web_token"] not in str(info.value)
