"""systemd's side of every long-running process: sd_notify on a real socket, the stop flag.

The agent, the page server and the indicator share ``appliance.service``; the agent's
READY=1, WATCHDOG=1 and STOPPING=1 are checked here as systemd would receive them, on a
``NOTIFY_SOCKET`` the test binds, from a real ``appliance sync`` process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading

import pytest
from support.wait import wait_until

from appliance.service import StopFlag, Systemd


class NotifySocket:
    """A datagram socket where systemd would listen; collects what it receives."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.received: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                self.received.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def lines(self) -> list[str]:
        return [line for message in list(self.received) for line in message.splitlines()]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    listener = NotifySocket(str(tmp_path / "notify"))
    monkeypatch.setenv("NOTIFY_SOCKET", listener.path)  # sdnotify reads the process's own
    yield listener
    listener.close()


def test_service_sends_ready_watchdog_status_and_stopping(notify_socket):
    with Systemd({"NOTIFY_SOCKET": notify_socket.path}) as systemd:
        assert systemd.active
        systemd.ready()
        systemd.alive("ok")
        systemd.alive("ok")  # the same status is not repeated
        systemd.alive()
        systemd.stopping()
    wait_until(lambda: len(notify_socket.received) == 5, what="5 notifications")
    assert notify_socket.received == [
        "READY=1",
        "WATCHDOG=1\nSTATUS=ok",
        "WATCHDOG=1",
        "WATCHDOG=1",
        "STOPPING=1",
    ]


def test_service_is_silent_and_harmless_outside_systemd(tmp_path):
    systemd = Systemd({})
    assert not systemd.active
    systemd.ready()
    systemd.alive("ok")
    systemd.stopping()
    systemd.close()


@pytest.mark.parametrize(("usec", "every"), [("400000", 0.2), ("30000000", 15.0), ("", 20.0), ("0", 20.0)])
def test_service_pets_twice_per_watchdog_period(usec, every):
    assert Systemd({"WATCHDOG_USEC": usec}).pet_every == every


def test_service_stop_flag_is_set_by_sigterm_and_restores_the_old_handler():
    before = signal.getsignal(signal.SIGTERM)
    with StopFlag() as flag:
        assert not flag.is_set() and not flag()
        os.kill(os.getpid(), signal.SIGTERM)
        assert flag.wait(10), "SIGTERM did not set the flag"
        assert flag()
    assert signal.getsignal(signal.SIGTERM) is before


def test_service_stop_flag_wait_returns_at_once_when_set_from_another_thread():
    flag = StopFlag()
    threading.Timer(0.01, flag.set).start()
    assert flag.wait(60) is True


def test_service_agent_tells_systemd_ready_alive_and_stopping(sales, make_config, notify_socket):
    sales.sql(
        "CREATE TABLE t (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO t VALUES (1)",
        db="sales",
    )
    cfg = make_config([{"name": "public.t", "cursor": "updated_at"}])
    env = {**os.environ, "NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "10000000"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "--config", str(cfg), "sync", "--interval", "1s"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: "READY=1" in notify_socket.lines(), what="READY=1 from the agent")
        # WATCHDOG=1 only after real work: the first pass's pages and summary.
        wait_until(lambda: "WATCHDOG=1" in notify_socket.lines(), what="WATCHDOG=1 from the agent")
        assert "STOPPING=1" not in notify_socket.lines()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-2000:]
    wait_until(lambda: "STOPPING=1" in notify_socket.lines(), timeout=10, what="STOPPING=1")
    lines = notify_socket.lines()
    assert lines.index("READY=1") < lines.index("WATCHDOG=1") < lines.index("STOPPING=1")
    assert lines[-1] == "STOPPING=1"


def test_service_one_agent_per_state_folder(sales, make_config):
    sales.sql(
        "CREATE TABLE t (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO t VALUES (1)",
        db="sales",
    )
    cfg = make_config([{"name": "public.t", "cursor": "updated_at"}])
    argv = [sys.executable, "-m", "appliance.cli", "--config", str(cfg), "sync"]
    first = subprocess.Popen(
        [*argv, "--interval", "1s"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state = str(cfg.parent / "state")
    try:
        from appliance.health.store import StateStore

        def started() -> bool:
            with StateStore(state, readonly=True) as store:
                return any(e["message"].startswith("agent started") for e in store.events(20))

        wait_until(started, what="the first agent")
        second = subprocess.run([*argv, "--once"], capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and f"another agent (pid {first.pid}) already runs" in second.stderr
        assert "Traceback" not in second.stderr
        with StateStore(state, readonly=True) as store:
            starts = [e for e in store.events(50) if e["message"].startswith("agent started")]
        assert len(starts) == 1  # the refused one wrote nothing into the live log
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        third = subprocess.run([*argv, "--once"], capture_output=True, text=True, timeout=120)
        assert third.returncode == 0, third.stderr[-2000:]  # the kernel dropped the dead one's lock
    finally:
        first.kill()
        first.wait()
