"""The tunnel against a real sshd: pinned host key, our key only, clear errors."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import pytest
from support.net import refused_port
from support.sshd import Sshd, keygen

from appliance.errors import HostKeyError, SecretError, TunnelError
from appliance.sync.tunnel import Tunnel, TunnelSpec, fingerprint, open_forwarder, presented_key


def spec_for(server: Sshd, pg, **over) -> TunnelSpec:
    os.chmod(server.client_key, 0o600)
    values = dict(
        host="127.0.0.1",
        port=server.port,
        user=server.user,
        key_file=str(server.client_key),
        password=None,
        known_hosts=str(server.known_hosts),
        keepalive=5,
        connect_timeout=5,
        remote_host="127.0.0.1",
        remote_port=pg.port,
    )
    values.update(over)
    return TunnelSpec(**values)


@pytest.fixture
def own_sshd():
    server = Sshd().start()
    yield server
    server.destroy()


def test_tunnel_forwards_to_the_database_on_loopback(sshd, pg):
    import psycopg2

    with Tunnel(spec_for(sshd, pg)) as tunnel:
        assert tunnel.is_up()
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=tunnel.local_port,
            user="postgres",
            password="super-secret-pw",
            dbname="postgres",
        )
        with conn.cursor() as cur:
            cur.execute("SELECT 42")
            assert cur.fetchone() == (42,)
        conn.close()
        # bound to loopback only, never 0.0.0.0
        from pathlib import Path

        listening = Path("/proc/net/tcp").read_text() + Path("/proc/net/tcp6").read_text()
        port_hex = f":{tunnel.local_port:04X} "
        lines = [line for line in listening.splitlines() if port_hex in line.split()[1] + " "]
        assert lines and all(line.split()[1].startswith("0100007F") for line in lines)
    assert not tunnel.is_up()


def test_tunnel_unknown_host_key_is_refused_with_fingerprint(sshd, pg, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyError) as e:
        Tunnel(spec_for(sshd, pg, known_hosts=str(empty))).open()
    key = presented_key("127.0.0.1", sshd.port, [], 5)
    assert fingerprint(key) in str(e.value)
    assert "not in" in str(e.value) and "ssh-keyscan" in str(e.value)


def test_tunnel_changed_host_key_is_refused(own_sshd, pg):
    own_sshd.stop()
    own_sshd.regenerate_host_key()  # known_hosts still pins the old key
    own_sshd.start()
    with pytest.raises(HostKeyError) as e:
        Tunnel(spec_for(own_sshd, pg)).open()
    assert "HOST KEY CHANGED" in str(e.value)
    new = presented_key("127.0.0.1", own_sshd.port, [], 5)
    assert fingerprint(new) in str(e.value)


def test_tunnel_wrong_key_gives_a_clear_message(sshd, pg, tmp_path):
    other = tmp_path / "other_key"
    keygen(other)
    with pytest.raises(TunnelError) as e:
        Tunnel(spec_for(sshd, pg, key_file=str(other))).open()
    assert "refused the login" in str(e.value)
    assert str(other) in str(e.value) and "authorized_keys" in str(e.value)


def test_tunnel_does_not_try_keys_from_home_ssh(sshd, pg, tmp_path, monkeypatch):
    # The right key sits in ~/.ssh; the configured one is wrong: we must still fail.
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    shutil.copy(sshd.client_key, home / ".ssh" / "id_ed25519")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    other = tmp_path / "other_key"
    keygen(other)
    with pytest.raises(TunnelError):
        Tunnel(spec_for(sshd, pg, key_file=str(other))).open()


def test_tunnel_ignores_home_ssh_config(sshd, pg, tmp_path, monkeypatch):
    # sshtunnel reads ~/.ssh/config by default: a stray alias, port or ProxyCommand there
    # must not change where the appliance connects.
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        "Host *\n  HostName 192.0.2.1\n  Port 1\n  ProxyCommand false\n  User nobody-here\n"
    )
    monkeypatch.setenv("HOME", str(home))
    with Tunnel(spec_for(sshd, pg)) as tunnel:
        assert tunnel.is_up()


def test_tunnel_sockets_send_and_acknowledge_at_once(sshd, pg):
    # Nagle's algorithm plus delayed ACKs held the end of every multi-segment reply for
    # 40 ms (bench_sync: page round trip 45 ms through the tunnel, 2 ms direct).
    forwarder = open_forwarder(spec_for(sshd, pg))
    try:
        ssh_socket = forwarder._transport.sock
        assert ssh_socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        # every read re-arms quick ACKs (Linux clears them after a while)
        ssh_socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
        assert ssh_socket.recv(0) == b""
        assert ssh_socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK)
        server = forwarder._server_list[0]
        accepted, accept = [], server.get_request

        def recording_accept():
            request = accept()
            accepted.append(request[0])
            return request

        server.get_request = recording_accept
        with socket.create_connection(("127.0.0.1", forwarder.local_bind_port), timeout=5):
            deadline = time.monotonic() + 10
            while not accepted and time.monotonic() < deadline:
                time.sleep(0.02)
            assert accepted, "the forwarder never accepted the connection"
            assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        forwarder.stop(force=True)


def test_tunnel_key_file_readable_by_others_is_refused(sshd, pg, tmp_path):
    loose = tmp_path / "loose_key"
    shutil.copy(sshd.client_key, loose)
    os.chmod(loose, 0o644)
    with pytest.raises(SecretError) as e:
        Tunnel(spec_for(sshd, pg, key_file=str(loose))).open()
    assert "chmod 600" in str(e.value)


def test_tunnel_unreachable_bastion_is_reported(pg, sshd):
    # The port is held by a socket that never listens: every connection is refused, and no
    # server can take the port meanwhile (so the host key check is never reached).
    with refused_port() as port:
        with pytest.raises(TunnelError) as e:
            Tunnel(spec_for(sshd, pg, port=port)).open()
    assert type(e.value) is TunnelError
    assert str(e.value) == (
        f"cannot reach bastion 127.0.0.1:{port}: Connection refused. "
        "Check ssh.host, ssh.port and that sshd runs there."
    )


def test_tunnel_forwarding_refused_by_permitopen(pg):
    server = Sshd(permitopen="127.0.0.1:1").start()
    try:
        with pytest.raises(TunnelError) as e:
            Tunnel(spec_for(server, pg)).open()
        assert "refused to forward" in str(e.value) and "permitopen" in str(e.value)
    finally:
        server.destroy()


def test_tunnel_cut_is_noticed(own_sshd, pg):
    import time

    tunnel = Tunnel(spec_for(own_sshd, pg)).open()
    try:
        own_sshd.stop()
        deadline = time.monotonic() + 15
        while tunnel.is_up() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not tunnel.is_up()
    finally:
        tunnel.close()


def _select_42(port: int) -> int:
    import psycopg2

    conn = psycopg2.connect(
        host="127.0.0.1", port=port, user="postgres", password="super-secret-pw", dbname="postgres"
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 42")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_tunnel_asks_for_compression_and_the_bastion_grants_it(sshd, pg):
    with Tunnel(spec_for(sshd, pg)) as tunnel:
        assert tunnel.compression == "zlib@openssh.com"  # OpenSSH's delayed zlib, after login
        assert _select_42(tunnel.local_port) == 42


def test_tunnel_compression_off_gives_a_plain_link(sshd, pg):
    with Tunnel(spec_for(sshd, pg, compression=False)) as tunnel:
        assert tunnel.compression == "none"
        assert _select_42(tunnel.local_port) == 42


def test_tunnel_bastion_that_declines_compression_gives_a_plain_link(pg):
    server = Sshd()
    config = server.dir / "sshd_config"
    config.write_text(config.read_text() + "Compression no\n")
    server.start()
    try:
        with Tunnel(spec_for(server, pg)) as tunnel:
            assert tunnel.compression == "none"
            assert _select_42(tunnel.local_port) == 42
    finally:
        server.destroy()


def test_tunnel_child_inherits_no_secret_from_the_agents_environment(sshd, pg, monkeypatch):
    # source.password_env puts the password in the agent's environment; an SSH agent's
    # socket would offer other keys. The child needs neither: it gets its spec on stdin.
    monkeypatch.setenv("SOURCE_DB_PASSWORD", "pw-in-the-environment-1")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
    monkeypatch.setenv("PYTHONWARNINGS", "error")  # would turn paramiko's warnings into crashes
    with Tunnel(spec_for(sshd, pg)) as tunnel:
        assert tunnel.is_up()
        environ = Path(f"/proc/{tunnel._proc.pid}/environ").read_bytes().split(b"\0")
    names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
    assert b"pw-in-the-environment-1" not in b"".join(environ)
    assert names and not names & {"SOURCE_DB_PASSWORD", "SSH_AUTH_SOCK", "PYTHONWARNINGS", "HOME"}
    assert "PATH" in names
