"""The real server: waitress on a socket, ``appliance web``, clean stop, systemd readiness."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

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


def _start_cli(config, env=None) -> subprocess.Popen:
    code = ("import sys; from appliance.web.cli import web; "
            "web.main(['--port', '0'], obj={'config_path': sys.argv[1]})")
    return subprocess.Popen([sys.executable, "-c", code, config.path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


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
