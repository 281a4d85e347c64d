"""The real server: waitress on a socket, ready pages on its I/O thread, ``appliance web``,
clean stop, systemd readiness."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner
from waitress.channel import HTTPChannel

from appliance.web import views
from appliance.web.cli import web
from appliance.web.server import PageServer

from .states import fill


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_server_serves_over_a_socket_and_closes(config):
    fill(config, "outage")
    server = PageServer(config, "127.0.0.1", 0).start()
    try:
        assert server.port > 0 and server.local_url == f"http://127.0.0.1:{server.port}/"
        assert _get(server.local_url)[0] == 200
        assert _get(server.local_url + "readyz")[0] == 503
        assert server.alive()
        # The page shows the port it is really served on.
        assert f":{server.port}/".encode() in _get(server.local_url)[1]
    finally:
        server.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_server_is_waitress(config):
    with PageServer(config, "127.0.0.1", 0).start() as server:
        with urllib.request.urlopen(server.local_url + "livez", timeout=5) as response:
            assert response.headers["Server"] == "appliance"  # waitress's ident, not Werkzeug


@pytest.fixture
def watched(config):
    """A started server whose WSGI calls record (path?query, thread); its cache's clock
    moves only when a test moves ``server.clock[0]``."""
    fill(config, "ok")
    server = PageServer(config, "127.0.0.1", 0).start()
    server.clock = [1000.0]
    server.app.extensions["appliance"].cache.clock = lambda: server.clock[0]
    fast, calls = server.app.wsgi_app, []

    def recorded(environ, start_response):
        query = environ.get("QUERY_STRING")
        path = environ["PATH_INFO"] + (f"?{query}" if query else "")
        calls.append((path, threading.current_thread().name))
        return fast(environ, start_response)

    server.app.wsgi_app = recorded  # the server keeps its own reference to ``fast``
    server.calls = calls
    try:
        yield server
    finally:
        server.close()


def _exchange(port: int, requests: list[bytes], rcvbuf: int | None = None) -> list[tuple]:
    """Send ``requests`` in one write (pipelined); return (status line, headers, body) of each."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"".join(requests))
        data, out = b"", []
        while len(out) < len(requests):
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                status, *lines = head.decode().split("\r\n")
                headers = {k.lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)}
                size = 0 if b"HEAD" in requests[len(out)][:5] else int(headers["content-length"])
                if len(rest) >= size:
                    out.append((status, headers, rest[:size]))
                    data = rest[size:]
                    continue
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"the server closed after {len(out)} responses")
            data += chunk
        return out


def _get_request(path: str, method: str = "GET", version: str = "1.1") -> bytes:
    return f"{method} {path} HTTP/{version}\r\nHost: localhost\r\n\r\n".encode()


def test_server_answers_ready_pages_on_its_io_thread(watched):
    conn = http.client.HTTPConnection("127.0.0.1", watched.port, timeout=5)
    try:
        bodies = {}
        for path in ("/", "/api/status", "/metrics") * 3 + ("/livez", "/?page=1"):
            conn.request("GET", path)
            response = conn.getresponse()
            assert response.status == 200 and response.getheader("X-Frame-Options") == "DENY"
            bodies.setdefault(path, set()).add(response.read())
    finally:
        conn.close()
    io_thread = watched._thread.name
    threads = {}
    for path, thread in watched.calls:
        threads.setdefault(path, []).append(thread)
    for path in ("/", "/api/status", "/metrics"):
        # The first asks Flask to render (on a worker); the cached bytes then never leave
        # the I/O thread, and they are the bytes Flask gave.
        assert threads[path][0].startswith("waitress-")
        assert threads[path][1:] == [io_thread, io_thread]
        assert len(bodies[path]) == 1
    # Not a cached page; a query: Flask's.
    assert threads["/livez"][0].startswith("waitress-")
    assert threads["/?page=1"][0].startswith("waitress-")


def test_server_refuses_a_foreign_host_on_the_io_thread_too(watched):
    conn = http.client.HTTPConnection("127.0.0.1", watched.port, timeout=5)
    try:
        conn.request("GET", "/")  # render once: the next "/" would be answered on the I/O thread
        assert conn.getresponse().read()
        for host in ("rebind.attacker.example", "rebind.attacker.example:8080"):
            conn.request("GET", "/", headers={"Host": host})
            response = conn.getresponse()
            assert response.status == 400 and b"allowed_hosts" in response.read()
        conn.request("GET", "/", headers={"Host": f"127.0.0.1:{watched.port}"})
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    assert [path for path, _ in watched.calls].count("/") == 4  # the refusals went through the check


def test_server_answers_the_previous_page_during_a_rerender(watched, monkeypatch):
    before = _get(watched.local_url)
    entered, release = threading.Event(), threading.Event()
    page = views._page

    def slow_page(*args, **kwargs):
        entered.set()
        release.wait(10)
        return page(*args, **kwargs)

    monkeypatch.setattr(views, "_page", slow_page)
    watched.clock[0] += 60  # the ages on the page moved on: the next request re-renders
    renderer = threading.Thread(target=_get, args=(watched.local_url,))
    renderer.start()
    try:
        assert entered.wait(10)
        del watched.calls[:]
        # Not queued behind the render: the previous bytes, at once, from the I/O thread.
        assert _get(watched.local_url) == before
        assert watched.calls == [("/", watched._thread.name)]
    finally:
        release.set()
        renderer.join(10)


def test_server_answers_head_and_http_1_0_from_the_io_thread(watched):
    _, (_, get_headers, body) = _exchange(
        watched.port, [_get_request("/api/status"), _get_request("/")]
    )  # now ready
    del watched.calls[:]
    [(status, headers, head_body)] = _exchange(watched.port, [_get_request("/", "HEAD")])
    assert status == "HTTP/1.1 200 OK" and head_body == b""
    assert headers["content-length"] == get_headers["content-length"] == str(len(body))
    with socket.create_connection(("127.0.0.1", watched.port), timeout=5) as sock:
        sock.sendall(_get_request("/api/status", version="1.0"))
        answer = b""
        while chunk := sock.recv(65536):  # HTTP/1.0 without keep-alive: the server closes
            answer += chunk
    assert answer.startswith(b"HTTP/1.0 200 OK") and b"\r\nConnection: close\r\n" in answer
    assert answer.rstrip().endswith(b"}")
    assert watched.calls == [("/", watched._thread.name), ("/api/status", watched._thread.name)]


def test_server_answers_pipelined_requests_in_order(watched):
    _exchange(watched.port, [_get_request("/"), _get_request("/api/status")])  # make them ready
    paths = ["/", "/livez", "/api/status", "/", "/metrics"]
    answers = _exchange(watched.port, [_get_request(p) for p in paths] + [_get_request("/", "HEAD")])
    assert [a[0] for a in answers] == ["HTTP/1.1 200 OK"] * 6
    assert answers[1][2] == b"alive\n" and answers[2][2].startswith(b"{")
    assert answers[0][2] == answers[3][2] and answers[0][2].startswith(b"<!doctype html>")
    assert answers[5][2] == b"" and answers[5][1]["content-length"] == str(len(answers[0][2]))


def test_server_keeps_answering_while_a_client_does_not_read(watched):
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", watched.port))
    try:
        stuck.sendall(_get_request("/") * 300)  # pipelined, and never read
        for _ in range(3):
            assert _get(watched.local_url + "api/status")[0] == 200
    finally:
        stuck.close()


def test_server_io_thread_survives_a_failing_answer(watched, monkeypatch):
    assert _get(watched.local_url)[0] == 200  # ready now
    service = HTTPChannel.service

    def fail_once(channel):
        monkeypatch.setattr(HTTPChannel, "service", service)
        raise RuntimeError("injected")

    monkeypatch.setattr(HTTPChannel, "service", fail_once)
    with pytest.raises(ConnectionError):  # that connection is closed, not left hanging
        _exchange(watched.port, [_get_request("/")])
    assert HTTPChannel.service is service
    assert _get(watched.local_url)[0] == 200 and _get(watched.local_url + "livez")[0] == 200


def _start_cli(config, env=None) -> subprocess.Popen:
    code = (
        "import sys; from appliance.web.cli import web; "
        "web.main(['--port', '0'], obj={'config_path': sys.argv[1]})"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, config.path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_server_cli_prints_the_url_and_stops_on_sigterm(config):
    proc = _start_cli(config)
    try:
        line = proc.stdout.readline()
        assert line.startswith("Status page: http://") and "listening on 127.0.0.1:" in line
        port = int(line.split("listening on 127.0.0.1:")[1].split(",")[0])
        assert _get(f"http://127.0.0.1:{port}/livez") == (200, b"alive\n")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Status page stopped." in out and "Traceback" not in err


def test_server_tells_systemd_it_is_ready_and_alive(config, tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(15)
    proc = _start_cli(config, {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    try:
        messages = set()
        deadline = time.monotonic() + 15
        while not {"READY=1", "WATCHDOG=1"} <= messages and time.monotonic() < deadline:
            messages.add(sock.recv(4096).decode())
        assert {"READY=1", "WATCHDOG=1"} <= messages
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
        assert proc.returncode == 0
    finally:
        proc.kill()
        sock.close()


def test_server_cli_port_in_use_is_a_clear_message(config):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(web, ["--port", str(port)], obj={"config_path": config.path})
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in result.output
    assert "Traceback" not in result.output


def test_server_cli_bad_config_is_a_clear_message(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[web]\nport = 'eighty'\n")
    result = CliRunner().invoke(web, [], obj={"config_path": str(bad)})
    assert result.exit_code == 1 and "web.port: expected a whole number" in result.output


def test_server_cli_has_help():
    result = CliRunner().invoke(web, ["--help"])
    assert result.exit_code == 0 and "--host" in result.output and "--port" in result.output


def test_server_cli_module_loads_without_flask():
    # The lead's ``appliance`` group imports this command for every invocation.
    code = "import sys, appliance.web.cli; assert 'flask' not in sys.modules, 'flask loaded'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_server_refuses_a_huge_body_from_its_length_without_reading_it(watched):
    with socket.create_connection(("127.0.0.1", watched.port), timeout=10) as sock:
        sock.sendall(
            b"POST /actions/ack HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 10485760\r\n\r\n" + b"x" * 1024
        )
        head = sock.recv(4096).decode(errors="replace")
    assert head.startswith("HTTP/1.1 413"), head[:200]
    assert not [path for path, _ in watched.calls if path.startswith("/actions")]  # never reached the app


def test_server_one_client_cannot_take_every_connection(watched):
    from appliance.web.server import PER_CLIENT

    hogs = []
    try:
        for _ in range(PER_CLIENT + 20):  # half-sent requests, held open (slowloris)
            sock = socket.create_connection(("127.0.0.1", watched.port), timeout=10)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
            hogs.append(sock)
        # another client (another loopback address) is still served
        other = socket.socket()
        other.settimeout(10)
        other.bind(("127.0.0.2", 0))
        other.connect(("127.0.0.1", watched.port))
        other.sendall(_get_request("/livez"))
        assert other.recv(4096).startswith(b"HTTP/1.1 200")
        other.close()
        # the hog's connections beyond PER_CLIENT were closed at once
        closed = 0
        for sock in hogs[PER_CLIENT:]:
            sock.settimeout(5)
            try:
                closed += sock.recv(1) == b""
            except ConnectionResetError:
                closed += 1
        assert closed == 20
    finally:
        for sock in hogs:
            sock.close()
