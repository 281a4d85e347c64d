"""Notifications reach a real HTTP receiver and a real SMTP server once per change."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from support.pg import free_port
from support.tomlconf import RO_PASSWORD, password_file, sections, write_config
from test_outage import RunningAgent, own_pg  # noqa: F401 - fixture

from appliance.health.notify import message


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hang: bool = False):
        self.bodies: list[dict] = []
        self.hang = hang
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.hang:
                    receiver.release.wait(30)
                receiver.bodies.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/T000/SECRETTOKEN"

    def close(self):
        self.release.set()
        self.shutdown()
        self.server_close()


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


def poll(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_notify_webhook_once_per_change(own_pg, tmp_path):  # noqa: F811
    receiver = Receiver()
    try:
        cfg = direct_config(own_pg, tmp_path, {"webhook_url": receiver.url})
        with RunningAgent(cfg) as run:
            run.agent.interval = 1
            run.wait_state("ok")
            own_pg.stop()
            run.wait_state("outage")
            assert poll(lambda: len(receiver.bodies) == 1)
            own_pg.start()
            run.wait_state("ok", timeout=60)
            assert poll(lambda: len(receiver.bodies) == 2)
            # a few more passes in the same state send nothing more
            passes = len(run.store.runs(100))
            assert poll(lambda: len(run.store.runs(100)) >= passes + 3)
        states = [(b["previous"], b["state"]) for b in receiver.bodies]
        assert states == [("ok", "outage"), ("outage", "ok")]
        first = receiver.bodies[0]
        assert first["text"].startswith(f"{socket.gethostname()}: OUTAGE - Database unreachable")
        assert "back to OK" in receiver.bodies[1]["text"]
        assert all(
            "SECRETTOKEN" not in json.dumps(b) and RO_PASSWORD not in json.dumps(b) for b in receiver.bodies
        )
    finally:
        receiver.close()


def test_notify_email_through_real_smtp(own_pg, tmp_path):  # noqa: F811
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
            assert poll(lambda: len(received) == 1)
    finally:
        controller.stop()
    body = received[0].content.decode()
    assert received[0].rcpt_tos == ["ops@example.com"]
    assert "OUTAGE" in body and "public.t" in body


def test_notify_hanging_receiver_does_not_slow_the_sync(own_pg, tmp_path):  # noqa: F811
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
                assert poll(lambda: replica.execute("SELECT count(*) FROM t").fetchone()[0] == 2, timeout=10)
            finally:
                replica.close()
            assert receiver.bodies == []
            receiver.release.set()
            assert poll(lambda: len(receiver.bodies) == 2, timeout=30)
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
