"""Notifications reach a real HTTP receiver and a real SMTP server once per change."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import sqlite3
import time

import pytest
from support.pg import free_port
from support.receiver import TOKEN, Receiver, hook_url
from support.running import RunningAgent
from support.tomlconf import RO_PASSWORD, password_file, sections, write_config
from support.wait import wait_until

from appliance.clock import iso, utcnow
from appliance.config import Config, parse
from appliance.errors import ConfigError
from appliance.health import notify
from appliance.health import status as health
from appliance.health.notify import message
from appliance.health.store import StateStore
from appliance.schema.drift import Drift


def direct_config(pg, tmp_path, notify: dict):
    config = sections(
        tmp_path / "state",
        pg,
        password_file(tmp_path / "source.password"),
        source={"connect_timeout": "2s"},
        sync={"interval": "1s"},
        notify=notify,
    )
    return write_config(tmp_path / "appliance.toml", config, [{"name": "public.t", "cursor": "updated_at"}])


def test_notify_webhook_once_per_change(own_pg, tmp_path):
    receiver = Receiver()
    try:
        cfg = direct_config(own_pg, tmp_path, {"webhook_url": receiver.url})
        with RunningAgent(cfg) as run:
            run.agent.interval = 1
            run.wait_state("ok")
            own_pg.stop()
            run.wait_state("outage")
            wait_until(lambda: len(receiver.bodies) == 1)
            own_pg.start()
            run.wait_state("ok", timeout=60)
            wait_until(lambda: len(receiver.bodies) == 2)
            # a few more passes in the same state send nothing more
            passes = len(run.store.runs(100))
            wait_until(lambda: len(run.store.runs(100)) >= passes + 3)
        states = [(b["previous"], b["state"]) for b in receiver.bodies]
        assert states == [("ok", "outage"), ("outage", "ok")]
        first = receiver.bodies[0]
        assert first["text"].startswith(f"{socket.gethostname()}: OUTAGE - Database unreachable")
        assert "back to OK" in receiver.bodies[1]["text"]
        assert all(TOKEN not in json.dumps(b) and RO_PASSWORD not in json.dumps(b) for b in receiver.bodies)
    finally:
        receiver.close()


def test_notify_email_through_real_smtp(own_pg, tmp_path):
    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            received.append(envelope)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        cfg = direct_config(
            own_pg, tmp_path, {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_to": ["ops@example.com"]}
        )
        with RunningAgent(cfg) as run:
            run.agent.interval = 1
            run.wait_state("ok")
            own_pg.stop()
            run.wait_state("outage")
            wait_until(lambda: len(received) == 1)
    finally:
        controller.stop()
    body = received[0].content.decode()
    assert received[0].rcpt_tos == ["ops@example.com"]
    assert "OUTAGE" in body and "public.t" in body


def test_notify_hanging_receiver_does_not_slow_the_sync(own_pg, tmp_path):
    receiver = Receiver(hang=True)
    try:
        cfg = direct_config(own_pg, tmp_path, {"webhook_url": receiver.url})
        with RunningAgent(cfg) as run:
            run.agent.interval = 1
            run.wait_state("ok")
            own_pg.stop()
            run.wait_state("outage")
            own_pg.start()
            run.wait_state("ok", timeout=60)
            # both messages are stuck at the receiver; new rows still arrive within seconds
            own_pg.sql("INSERT INTO t VALUES (2, 'b')", db="sales")
            replica = sqlite3.connect(run.replica.path)
            try:
                wait_until(lambda: replica.execute("SELECT count(*) FROM t").fetchone()[0] == 2, timeout=10)
            finally:
                replica.close()
            assert receiver.bodies == []
            receiver.release.set()
            wait_until(lambda: len(receiver.bodies) == 2, timeout=30)
    finally:
        receiver.close()


def test_notify_message_fields():
    status = {
        "state": "lagging",
        "since": "2024-01-01T00:00:00Z",
        "reason": "orders is 12m behind",
        "tables": [{"name": "public.orders", "state": "lagging", "lag_seconds": 720}],
    }
    msg = message(status, "ok")
    assert msg["text"].endswith("LAGGING - orders is 12m behind")
    assert msg["tables"] == [{"name": "public.orders", "state": "lagging", "lag": "12m"}]


# -- delivery: retries, backoff, giving up, restarts (no database needed) -----------------


class Clock:
    """A clock the test moves by hand; it starts a second ahead of the real one, so
    messages queued just now (at ``time.time()``) are due at once."""

    def __init__(self) -> None:
        self.now = time.time() + 1

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def receivers():
    """Return a function starting webhook receivers; all are closed after the test."""
    started: list[Receiver] = []

    def start(**kwargs) -> Receiver:
        started.append(Receiver(**kwargs))
        return started[-1]

    yield start
    for r in started:
        r.close()


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on 127.0.0.1; ``answers`` scripts its replies to DATA."""
    from aiosmtpd.controller import Controller

    class Handler:
        def __init__(self) -> None:
            self.received: list = []
            self.answers: list[str] = []
            self.port = free_port()

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            if self.answers:
                return self.answers.pop(0)
            self.received.append(envelope)
            return "250 OK"

    handler = Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()


def notify_config(tmp_path, tables=None, environ=None, **notify) -> Config:
    return parse(
        {
            "appliance": {"state_dir": str(tmp_path / "state")},
            "source": {"host": "db", "database": "d", "user": "u", "password_env": "DB_PASSWORD"},
            "sync": {"warn_lag": "10m", "max_lag": "1h"},
            "notify": notify,
            "tables": tables or [{"name": "public.orders"}],
        },
        environ=environ,
    )


STATUS = {
    "state": "outage",
    "since": "2024-01-01T00:00:00Z",
    "reason": "Database unreachable: connection refused",
    "tables": [{"name": "public.orders", "state": "outage", "lag_seconds": 90}],
}


def queue_one(cfg: Config) -> list[dict]:
    """Queue one state change (ok -> outage) the way health.status.update does; return the outbox."""
    with StateStore(cfg.state_dir) as store:
        notify.enqueue(cfg, store, STATUS, "ok")
        return store.outbox()


def try_due(sender: notify.Sender, cfg: Config) -> tuple[int, list[dict]]:
    """Run one delivery round; return (delivered, the outbox afterwards)."""
    with StateStore(cfg.state_dir) as store:
        return sender.deliver_due(store), store.outbox()


def test_notify_retries_after_5xx_until_delivered(tmp_path, receivers):
    receiver = receivers(answers=[500, 503])
    cfg = notify_config(tmp_path, webhook_url=receiver.url)
    [queued] = queue_one(cfg)
    clock = Clock()
    sender = notify.Sender(cfg, clock=clock)
    errors = []
    for attempt in (1, 2):
        delivered, [item] = try_due(sender, cfg)
        assert (delivered, item["attempts"], item["sent"]) == (0, attempt, None)
        errors.append(item["last_error"])
        # not tried again before its time
        assert try_due(sender, cfg)[0] == 0 and len(receiver.hits) == attempt
        clock.now = item["next_try"]
    delivered, [item] = try_due(sender, cfg)
    assert errors == ["HTTP 500", "HTTP 503"]
    assert (delivered, item["attempts"]) == (1, 3)
    assert item["sent"] not in (None, "gave up")
    assert receiver.hits == [500, 503, 200]
    assert receiver.bodies == [queued["payload"]]
    # delivered means done: later rounds send nothing more
    clock.now += 3600
    assert try_due(sender, cfg)[0] == 0 and len(receiver.hits) == 3


@pytest.mark.parametrize("answer", ["refused", "garbage"])
def test_notify_retries_after_a_dead_or_garbled_receiver(tmp_path, receivers, answer):
    port = free_port()
    if answer == "garbage":  # answers something that is not HTTP, then 200
        receivers(answers=["garbage"], port=port)
    cfg = notify_config(tmp_path, webhook_url=hook_url(port))
    queue_one(cfg)
    clock = Clock()
    sender = notify.Sender(cfg, clock=clock)
    delivered, [item] = try_due(sender, cfg)
    assert (delivered, item["attempts"], item["sent"]) == (0, 1, None)
    expected = "Connection refused" if answer == "refused" else "BadStatusLine"
    assert expected in item["last_error"]
    receiver = receivers(port=port) if answer == "refused" else None
    clock.now = item["next_try"]
    delivered, [item] = try_due(sender, cfg)
    assert (delivered, item["attempts"]) == (1, 2)
    assert item["sent"] not in (None, "gave up")
    if receiver is not None:
        assert len(receiver.bodies) == 1


def test_notify_backoff_doubles_up_to_a_cap(tmp_path):
    cfg = notify_config(tmp_path, webhook_url=hook_url(free_port()))  # nobody listens
    queue_one(cfg)
    clock = Clock()
    sender = notify.Sender(cfg, clock=clock, max_attempts=100)
    delays = []
    for _ in range(12):
        _, [item] = try_due(sender, cfg)
        delays.append(item["next_try"] - clock.now)
        # a minute early is too early; on time it is tried
        clock.now = item["next_try"] - 60
        assert try_due(sender, cfg)[1][0]["attempts"] == item["attempts"]
        clock.now = item["next_try"]
    assert item["attempts"] == 12
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, notify.MAX_DELAY, notify.MAX_DELAY]


@pytest.mark.parametrize("max_attempts", [None, 3])
def test_notify_gives_up_after_max_attempts(tmp_path, receivers, caplog, max_attempts):
    receiver = receivers(answers=[500] * 50)
    cfg = notify_config(tmp_path, webhook_url=receiver.url)
    queue_one(cfg)
    clock = Clock()
    limit = max_attempts or notify.MAX_ATTEMPTS
    sender = notify.Sender(cfg, clock=clock, **({"max_attempts": max_attempts} if max_attempts else {}))
    for _ in range(limit):
        _, [item] = try_due(sender, cfg)
        clock.now = item["next_try"]
    assert (item["attempts"], item["sent"], item["last_error"]) == (limit, "gave up", "HTTP 500")
    assert receiver.hits == [500] * limit
    assert "giving up" in caplog.text
    with StateStore(cfg.state_dir) as store:
        assert "gave up sending a webhook notification: HTTP 500" in [e["message"] for e in store.events()]
    # given up means no more tries, however late it gets
    clock.now += 10 * 86400
    delivered, [item] = try_due(sender, cfg)
    assert (delivered, item["attempts"], len(receiver.hits)) == (0, limit, limit)


def test_notify_outbox_survives_a_restart(tmp_path, receivers):
    port = free_port()
    cfg = notify_config(tmp_path, webhook_url=hook_url(port))
    [queued] = queue_one(cfg)
    clock = Clock()
    _, [item] = try_due(notify.Sender(cfg, clock=clock), cfg)  # the first process fails once ...
    assert (item["attempts"], item["sent"]) == (1, None)
    receiver = receivers(port=port)  # ... and stops; the receiver comes back
    clock.now = item["next_try"]
    sender = notify.Sender(cfg, clock=clock).start()  # a new process, its own thread and store
    try:
        wait_until(lambda: len(receiver.bodies) == 1, timeout=15)
    finally:
        sender.stop()
    assert receiver.bodies == [queued["payload"]]
    with StateStore(cfg.state_dir) as store:
        [item] = store.outbox()
    assert item["attempts"] == 2 and item["sent"] not in (None, "gave up")


def test_notify_email_retried_after_smtp_refusal(tmp_path, smtp_server):
    smtp_server.answers = ["451 4.3.0 Try again later", "554 5.3.0 Not today"]
    cfg = notify_config(
        tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_to=["ops@example.com"]
    )
    queue_one(cfg)
    clock = Clock()
    sender = notify.Sender(cfg, clock=clock)
    for attempt in (1, 2):
        delivered, [item] = try_due(sender, cfg)
        assert (delivered, item["attempts"], item["channel"]) == (0, attempt, "email")
        assert item["last_error"] == "SMTPDataError"
        clock.now = item["next_try"]
    delivered, [item] = try_due(sender, cfg)
    assert (delivered, item["attempts"]) == (1, 3)
    [mail] = smtp_server.received
    assert mail.rcpt_tos == ["ops@example.com"]
    assert "OUTAGE - Database unreachable" in mail.content.decode()


# -- what is sent: drift, ignored drift, no secrets ----------------------------------------

DROPPED = Drift("column_dropped", "code", True, 'column "code" was dropped').as_dict()
ADDED = Drift("column_added", "note", False, 'column "note" was added (text)').as_dict()
NEW_TABLE = Drift("table_added", "", False, "new table public.refunds", "public.refunds").as_dict()


def drift_config(tmp_path, orders: str, items: str, **notify_settings) -> Config:
    tables = [{"name": "public.orders", "on_drift": orders}, {"name": "public.items", "on_drift": items}]
    return notify_config(tmp_path, tables=tables, **notify_settings)


def change_to_drift(cfg: Config, drift: dict[str, list[dict]]) -> dict:
    """Bring the health to ok, then record ``drift`` (key -> entries) and update; return the status."""
    with StateStore(cfg.state_dir) as store:
        for t in cfg.tables:
            store.record_table(t.name, t.replica_name, last_sync=iso(utcnow()), rows=5)
        store.put("source", {"tunnel": "direct", "database": "up", "last_error": "", "down": False})
        assert health.update(cfg, store)["state"] == "ok"
        for key, entries in drift.items():
            store.put(key, entries)
        return health.update(cfg, store)


def test_notify_drift_is_sent_with_its_content(tmp_path, receivers, smtp_server):
    receiver = receivers()
    cfg = drift_config(
        tmp_path,
        "evolve",
        "evolve",
        webhook_url=receiver.url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_to=["ops@example.com"],
    )
    status = change_to_drift(cfg, {"drift:public.orders": [DROPPED, ADDED]})
    assert status["state"] == "drift"
    assert try_due(notify.Sender(cfg, clock=Clock()), cfg)[0] == 2
    [body] = receiver.bodies
    assert (body["state"], body["previous"]) == ("drift", "ok")
    assert body["reason"] == 'public.orders: column "code" was dropped (and 1 more).'
    assert body["text"].endswith('DRIFT - public.orders: column "code" was dropped (and 1 more).')
    assert {t["name"]: t["state"] for t in body["tables"]} == {"public.orders": "drift", "public.items": "ok"}
    [mail] = smtp_server.received
    text = mail.content.decode()
    assert 'DRIFT - public.orders: column "code" was dropped' in text
    assert "public.orders: drift" in text and "public.items: ok" in text


@pytest.mark.parametrize(
    "orders,items,drift,sent",
    [
        ("ignore", "evolve", {"drift:public.orders": [DROPPED]}, False),
        ("ignore", "ignore", {"drift:public.orders": [DROPPED], "drift:public.items": [ADDED]}, False),
        ("ignore", "evolve", {"drift:public.orders": [DROPPED], "drift:public.items": [ADDED]}, True),
        ("ignore", "freeze", {"drift:public.items": [ADDED]}, True),
        ("ignore", "ignore", {"source_drift": [NEW_TABLE]}, True),
    ],
    ids=["ignored-table", "all-ignored", "one-not-ignored", "other-table", "new-source-table"],
)
def test_notify_drift_policy_ignore_sends_nothing(tmp_path, receivers, orders, items, drift, sent):
    receiver = receivers()
    cfg = drift_config(tmp_path, orders, items, webhook_url=receiver.url)
    status = change_to_drift(cfg, drift)
    # ignored drift is still the state and still in the event log, so nobody misses it
    assert status["state"] == "drift"
    with StateStore(cfg.state_dir) as store:
        assert store.events(1)[0]["message"].startswith("ok -> drift: ")
    delivered, outbox = try_due(notify.Sender(cfg, clock=Clock()), cfg)
    assert (delivered, len(outbox), len(receiver.bodies)) == ((1, 1, 1) if sent else (0, 0, 0))


def test_notify_secrets_stay_out_of_messages_logs_and_the_outbox(tmp_path, receivers, caplog):
    password = "db-pass-5ecret"
    # one receiver fails in every way, then accepts; the URL and the password must not show
    receiver = receivers(answers=[500, "garbage", 401])
    cfg = notify_config(tmp_path, environ={"DB_PASSWORD": password}, webhook_url=receiver.url)
    queue_one(cfg)
    clock = Clock()
    sender = notify.Sender(cfg, clock=clock)
    for _ in range(4):
        _, [item] = try_due(sender, cfg)
        clock.now = item["next_try"]
    # a URL urllib would reject with its text (the token) in the error is refused at load,
    # without quoting it
    with pytest.raises(ConfigError) as refused:
        notify_config(tmp_path / "bad", webhook_url=f"http://127.0.0.1:8x/hooks/T000/{TOKEN}")
    assert receiver.hits == [500, "garbage", 401, 200]
    with StateStore(cfg.state_dir) as store:
        kept = json.dumps([store.outbox(), store.events(100)]) + str(refused.value)
    seen = {"body": json.dumps(receiver.bodies), "log": caplog.text, "state store": kept}
    for where, text in seen.items():
        assert TOKEN not in text and password not in text, where


def test_notify_email_with_a_line_break_in_the_reason_is_delivered(tmp_path, smtp_server):
    cfg = notify_config(
        tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_to=["o@example.com"]
    )
    status = {**STATUS, "state": "drift", "reason": 'public.orders: column "a\nb" was dropped.'}
    with StateStore(cfg.state_dir) as store:
        notify.enqueue(cfg, store, status, "ok")
    assert try_due(notify.Sender(cfg, clock=Clock()), cfg)[0] == 1
    [mail] = smtp_server.received
    assert email.message_from_bytes(mail.content)["Subject"].endswith('column "a b" was dropped.')


HOSTILE_TABLE = "public.\nBcc: attacker@evil.example\r\n<!channel> @channel <https://evil.example|click>"


def _hostile_status() -> dict:
    return {
        **STATUS,
        "reason": f"{HOSTILE_TABLE}: canceling statement\x00\x1b[31m due to <b>timeout</b> & more",
        "tables": [{"name": HOSTILE_TABLE, "state": "outage", "lag_seconds": 5}],
    }


def test_notify_hostile_table_name_reaches_email_as_one_clean_line(tmp_path, smtp_server):
    cfg = notify_config(
        tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_to=["o@example.com"]
    )
    with StateStore(cfg.state_dir) as store:
        notify.enqueue(cfg, store, _hostile_status(), "ok")
    assert try_due(notify.Sender(cfg, clock=Clock()), cfg)[0] == 1
    [mail] = smtp_server.received
    assert mail.rcpt_tos == ["o@example.com"]  # no Bcc smuggled in through a header
    parsed = email.message_from_bytes(mail.content, policy=email.policy.default)  # unfolds headers
    assert parsed["Bcc"] is None
    subject = str(parsed["Subject"])
    assert "\n" not in subject and "\r" not in subject and "\x00" not in subject
    assert "Bcc: attacker@evil.example" in subject  # kept as text, on the one line
    body = parsed.get_content()
    assert "\x00" not in body and "\x1b" not in body


def test_notify_hostile_text_is_escaped_for_slack_style_receivers(tmp_path, receivers):
    receiver = receivers()
    cfg = notify_config(tmp_path, webhook_url=receiver.url)
    with StateStore(cfg.state_dir) as store:
        notify.enqueue(cfg, store, _hostile_status(), "ok")
    assert try_due(notify.Sender(cfg, clock=Clock()), cfg)[0] == 1
    [body] = receiver.bodies
    assert "<!channel>" not in body["text"] and "&lt;!channel&gt;" in body["text"]
    assert "@channel" not in body["text"] and "@\u200bchannel" in body["text"]  # Mattermost
    assert "<https://evil.example|click>" not in body["text"] and "&amp; more" in body["text"]
    assert "\n" not in body["text"] and "\x00" not in body["text"] and "\x1b" not in body["text"]
    assert "\n" not in body["tables"][0]["name"] and "\n" not in body["reason"]


def test_notify_one_undeliverable_message_does_not_hold_up_the_next(tmp_path, smtp_server, receivers):
    receiver = receivers()
    cfg = notify_config(
        tmp_path,
        webhook_url=receiver.url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_to=["o@example.com"],
    )
    with StateStore(cfg.state_dir) as store:
        # an outbox row from an older version, without the fields e-mail is built from
        store.enqueue("email", {"text": "old"})
        notify.enqueue(cfg, store, STATUS, "ok")
    delivered, outbox = try_due(notify.Sender(cfg, clock=Clock()), cfg)
    assert delivered == 2 and len(receiver.bodies) == 1 and len(smtp_server.received) == 1
    broken = [row for row in outbox if row["sent"] is None]
    assert len(broken) == 1 and broken[0]["attempts"] == 1 and broken[0]["last_error"] == "KeyError"


def test_notify_a_message_claimed_by_the_other_process_is_not_sent_twice(tmp_path, receivers):
    receiver = receivers()
    cfg = notify_config(tmp_path, webhook_url=receiver.url)
    [item] = queue_one(cfg)
    clock = Clock()
    with StateStore(cfg.state_dir) as store:  # the agent's sender is on it ...
        assert store.claim(item["id"], clock(), clock() + 30)
        assert not store.claim(item["id"], clock(), clock() + 30)
    assert try_due(notify.Sender(cfg, clock=clock), cfg)[0] == 0  # ... so the page's leaves it
    assert receiver.bodies == []
    clock.now += 31  # the claim ran out (its sender died mid-attempt): the message is due again
    assert try_due(notify.Sender(cfg, clock=clock), cfg)[0] == 1 and len(receiver.bodies) == 1
