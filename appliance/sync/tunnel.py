"""The SSH tunnel to the bastion: host key pinned, local end on 127.0.0.1, only our key.

sshtunnel's defaults are unsafe for us (BRIEF 4.1): it checks no host key unless given
one, binds 0.0.0.0, and quietly tries every key in ~/.ssh and the agent. We pin the key
from ``known_hosts``, bind loopback, and offer only the configured key.

The forwarder runs in a child process (``python -m appliance.tunnel``) so paramiko's
encryption does not share a GIL with the copy. The parent sends the settings (secrets
included) over the child's stdin, never argv; the child answers one JSON line, then
lives until its stdin closes (so a killed agent never leaves a tunnel behind) or the
SSH session dies (it reports why and exits).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from .. import errors
from ..config import SSHSettings
from ..errors import HostKeyError, SecretError, TunnelError
from ..secrets import child_environment

if TYPE_CHECKING:
    import paramiko  # imported where SSH is spoken: the agent's own process never needs it

log = logging.getLogger(__name__)


def fingerprint(key: paramiko.PKey) -> str:
    """Return the OpenSSH-style SHA256 fingerprint of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _host_entry(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def known_keys(ssh: SSHSettings) -> dict[str, paramiko.PKey]:
    """Return {key type: key} pinned for the bastion in ssh.known_hosts."""
    import paramiko

    from ..secrets import check_trusted_file

    try:
        if os.path.exists(ssh.known_hosts):  # a missing file gets its own hint below
            check_trusted_file(ssh.known_hosts, "ssh.known_hosts")  # others could pin their bastion
        hostkeys = paramiko.HostKeys(ssh.known_hosts)
    except SecretError as e:
        raise HostKeyError(str(e)) from None
    except FileNotFoundError:
        raise HostKeyError(
            f"ssh.known_hosts: {ssh.known_hosts} does not exist. Pin the "
            f"bastion's key: ssh-keyscan -p {ssh.port} {ssh.host} > "
            f"{ssh.known_hosts} (then check its fingerprint with the bastion's "
            f"admin)."
        ) from None
    except (OSError, paramiko.SSHException) as e:
        raise HostKeyError(f"ssh.known_hosts: cannot read {ssh.known_hosts}: {e}") from None
    entry = hostkeys.lookup(_host_entry(ssh.host, ssh.port))
    return dict(entry) if entry else {}


def _connect_socket(host: str, port: int, timeout: float) -> socket.socket:
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as e:
        raise TunnelError(
            f"ssh.host: cannot resolve bastion {host}: {e.strerror}. Check the name and the Pi's DNS."
        ) from None
    except TimeoutError:
        raise TunnelError(
            f"bastion {host}:{port} did not answer within {timeout:.0f}s. Check "
            f"ssh.host, ssh.port and that the network allows SSH."
        ) from None
    except OSError as e:
        raise TunnelError(
            f"cannot reach bastion {host}:{port}: {e.strerror or e}. Check "
            f"ssh.host, ssh.port and that sshd runs there."
        ) from None


def _handshake(
    host: str, port: int, key_types: list[str], timeout: float
) -> tuple[paramiko.Transport, paramiko.PKey]:
    """Return a transport past the key exchange (not authenticated) and the host key it
    presented; the caller closes the transport."""
    import paramiko

    transport = paramiko.Transport(_connect_socket(host, port, timeout))
    try:
        if key_types:
            # Ask for a key type we have pinned, so a server with several keys shows that one.
            supported = [k for k in key_types if k in transport._preferred_keys]
            if supported:
                transport.get_security_options().key_types = supported
        transport.start_client(timeout=timeout)
        # start_client returns at its timeout without raising: a silent server shows here.
        return transport, transport.get_remote_server_key()
    except paramiko.SSHException as e:
        transport.close()
        raise TunnelError(f"SSH handshake with {host}:{port} failed: {e}") from None


def presented_key(host: str, port: int, key_types: list[str], timeout: float) -> paramiko.PKey:
    """Return the host key the server presents (key exchange only, no authentication)."""
    transport, key = _handshake(host, port, key_types, timeout)
    transport.close()
    return key


def check_pinned(ssh: SSHSettings, pinned: dict[str, paramiko.PKey], key: paramiko.PKey) -> None:
    """Refuse a presented host key that known_hosts does not pin (unknown or changed)."""
    entry = _host_entry(ssh.host, ssh.port)
    if not pinned:
        raise HostKeyError(
            f"the bastion {entry} is not in {ssh.known_hosts}; it presented {key.get_name()} "
            f"{fingerprint(key)}. Refusing to connect. If the bastion's admin confirms this "
            f"fingerprint, add it: ssh-keyscan -p {ssh.port} {ssh.host} >> {ssh.known_hosts}"
        )
    expected = pinned.get(key.get_name())
    if expected is None or expected.asbytes() != key.asbytes():
        want = ", ".join(f"{k.get_name()} {fingerprint(k)}" for k in pinned.values())
        raise HostKeyError(
            f"HOST KEY CHANGED for bastion {entry}: it presented {key.get_name()} "
            f"{fingerprint(key)} but {ssh.known_hosts} pins {want}. Refusing to connect. "
            f"This can be an attack; if the bastion was rebuilt, confirm the new fingerprint "
            f"with its admin, then remove the old line (ssh-keygen -R '{entry}' -f "
            f"{ssh.known_hosts}) and add the new one."
        )


def pinned_host_key(ssh: SSHSettings) -> paramiko.PKey:
    """Return the bastion's key after checking it against known_hosts; refuse unknown or changed."""
    pinned = known_keys(ssh)
    key = presented_key(ssh.host, ssh.port, list(pinned), ssh.connect_timeout)
    check_pinned(ssh, pinned, key)
    return key


PROBE = "echo appliance-doctor-$((6 * 7))"  # prints ...-42 only where a shell ran it


def key_runs_commands(ssh: SSHSettings, password: str | None) -> bool:
    """Return True when the bastion lets the appliance's login run a command.

    The appliance only forwards one port; a key that can also run commands hands a shell
    on the bastion to whoever takes the Pi. The host key is checked first, as always, on
    the same connection (one handshake: doctor also runs over slow links).
    """
    import paramiko

    pinned = known_keys(ssh)
    transport, key = _handshake(ssh.host, ssh.port, list(pinned), ssh.connect_timeout)
    try:
        check_pinned(ssh, pinned, key)
        if ssh.key_file:
            transport.auth_publickey(ssh.user, load_private_key(ssh.key_file, password))
        else:
            transport.auth_password(ssh.user, password or "")
        try:
            chan = transport.open_session(timeout=ssh.connect_timeout)
        except paramiko.ChannelException:
            return False  # no sessions at all for this login: the best answer
        chan.settimeout(ssh.connect_timeout)
        chan.exec_command(PROBE)
        out = b""
        while len(out) < 4096 and (data := chan.recv(1024)):
            out += data
        return b"appliance-doctor-42" in out
    except paramiko.AuthenticationException:
        raise TunnelError(f"the bastion refused the login of {ssh.user}") from None
    except (paramiko.SSHException, OSError) as e:
        raise TunnelError(f"checking the bastion's restrictions failed: {e}") from None
    finally:
        transport.close()


def load_private_key(path: str, passphrase: str | None = None) -> paramiko.PKey:
    """Return the private key in ``path``; clear errors for missing, open or encrypted keys."""
    import paramiko

    from ..secrets import check_private_file

    check_private_file(path, "ssh.key_file")
    try:
        return paramiko.PKey.from_path(path, password=passphrase)
    except paramiko.PasswordRequiredException:
        raise SecretError(
            f"ssh.key_file: {path} is encrypted with a passphrase. Use a key "
            f"without one for the appliance (ssh-keygen -t ed25519 -N '')."
        ) from None
    except (paramiko.SSHException, paramiko.UnknownKeyType, ValueError, UnicodeDecodeError) as e:
        raise SecretError(
            f"ssh.key_file: {path} is not a usable private key ({e}). Create "
            f"one with: ssh-keygen -t ed25519 -N '' -f {path}"
        ) from None


@dataclass
class TunnelSpec:
    """Everything the child needs, sent over its stdin (secrets never on argv)."""

    host: str
    port: int
    user: str
    key_file: str
    password: str | None
    known_hosts: str
    keepalive: float
    connect_timeout: float
    remote_host: str
    remote_port: int
    compression: bool = True


def _check_forwarding(transport: paramiko.Transport, spec: TunnelSpec) -> None:
    """Open one forwarded channel now, so a refused permitopen is reported at start."""
    import paramiko

    try:
        chan = transport.open_channel(
            "direct-tcpip",
            (spec.remote_host, spec.remote_port),
            ("127.0.0.1", 0),
            timeout=spec.connect_timeout,
        )
    except paramiko.ChannelException as e:
        raise TunnelError(
            f"the bastion refused to forward to {spec.remote_host}:{spec.remote_port} "
            f"({e.text or e}). Check source.host/source.port as the bastion sees them, and the "
            f"permitopen= option of the key's authorized_keys line on the bastion."
        ) from None
    except paramiko.SSHException as e:
        raise TunnelError(f"forwarding to {spec.remote_host}:{spec.remote_port} failed: {e}") from None
    chan.close()


def open_forwarder(spec: TunnelSpec):
    """Start an sshtunnel forwarder in this process and return it (caller stops it)."""
    import sshtunnel

    ssh = SSHSettings(
        spec.host,
        spec.port,
        spec.user,
        spec.key_file,
        "",
        "",
        spec.known_hosts,
        spec.keepalive,
        spec.connect_timeout,
        spec.compression,
    )
    host_key = pinned_host_key(ssh)
    pkey = load_private_key(spec.key_file) if spec.key_file else None
    quiet = logging.getLogger("appliance.sshtunnel")
    quiet.setLevel(logging.CRITICAL)
    connection = _AckAtOnce(_connect_socket(spec.host, spec.port, spec.connect_timeout))
    forwarder = sshtunnel.SSHTunnelForwarder(
        (spec.host, spec.port),
        ssh_proxy=connection,  # our own connected socket, see _AckAtOnce
        ssh_config_file=None,  # never ~/.ssh/config: no alias, ProxyCommand or other key
        ssh_username=spec.user,
        ssh_pkey=pkey,
        ssh_password=spec.password if not pkey else None,
        ssh_host_key=host_key,
        allow_agent=False,
        host_pkey_directories=[],
        remote_bind_address=(spec.remote_host, spec.remote_port),
        local_bind_address=("127.0.0.1", 0),
        set_keepalive=spec.keepalive,
        # zlib, offered by us and chosen by the bastion's sshd (BRIEF 9): the bastion
        # compresses the rows, the Pi only inflates them; a bastion with Compression no
        # answers "none" and the link is plain.
        compression=spec.compression,
        logger=quiet,
    )
    sshtunnel.SSH_TIMEOUT = spec.connect_timeout
    sshtunnel.TUNNEL_TIMEOUT = spec.connect_timeout
    try:
        forwarder.start()
    except sshtunnel.BaseSSHTunnelForwarderError as e:
        _abandon(forwarder)
        raise TunnelError(
            f"the bastion {spec.host}:{spec.port} refused the login of {spec.user!r} with "
            f"{'ssh.key_file ' + spec.key_file if pkey else 'the configured password'} ({e}). "
            f"Check the user and that the key's public half is in the bastion's "
            f"authorized_keys."
        ) from None
    _send_at_once(forwarder)
    try:
        _check_forwarding(forwarder._transport, spec)
    except TunnelError:
        forwarder.stop(force=True)
        raise
    forwarder.link_socket = connection  # the child's watch reads when it last heard the bastion
    return forwarder


def negotiated_compression(forwarder) -> str:
    """Return the compression the bastion chose for what it sends us ("none": plain)."""
    transport = getattr(forwarder, "_transport", None)
    return getattr(transport, "remote_compression", None) or "none"


class _AckAtOnce:
    """The SSH connection's socket, acknowledging what it receives at once.

    A bastion's sshd sends forwarded data with Nagle's algorithm on (OpenSSH turns it off
    only for interactive sessions), so the last, partial segment of every reply waits for
    our ACK, which Linux delays by up to 40 ms: each query answered in more than one
    segment took 45 ms longer through the tunnel than direct. TCP_QUICKACK turns delayed
    ACKs off, but only for a while, so it is set again before every read (Linux only).
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = _no_delay(sock)
        self.last_heard = time.monotonic()  # when the bastion last sent us a byte

    def recv(self, size: int) -> bytes:
        if _QUICKACK is not None:
            self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        data = self._sock.recv(size)
        if data:
            self.last_heard = time.monotonic()
        return data

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def _no_delay(sock: socket.socket) -> socket.socket:
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _send_at_once(forwarder) -> None:
    """Turn off Nagle's algorithm on every forwarded connection, as on the SSH connection:
    otherwise the end of each reply to the driver waits for its delayed ACK, as above."""
    for server in forwarder._server_list:
        accept = server.get_request

        def get_request(accept=accept):
            conn, address = accept()
            return _no_delay(conn), address

        server.get_request = get_request


def _abandon(forwarder) -> None:
    """Release a forwarder whose start failed (its stop() would wait for a loop never run)."""
    for server in getattr(forwarder, "_server_list", []):
        server.server_close()
    transport = getattr(forwarder, "_transport", None)
    if transport is not None:
        transport.close()


def _child_main() -> int:
    """Run the forwarder for a parent process; see the module docstring for the protocol."""
    spec = TunnelSpec(**json.loads(sys.stdin.readline()))
    out = sys.stdout

    def say(**msg):
        out.write(json.dumps(msg) + "\n")
        out.flush()

    try:
        forwarder = open_forwarder(spec)
    except errors.ApplianceError as e:
        say(error=type(e).__name__, message=str(e))
        return 2
    say(port=forwarder.local_bind_port, compression=negotiated_compression(forwarder))
    parent_gone = threading.Event()

    def watch_stdin():
        sys.stdin.read()  # returns at EOF: the parent closed us or died
        parent_gone.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    code = 0
    silence = Silence(forwarder._transport, forwarder.link_socket, spec.keepalive)
    while not parent_gone.wait(0.5):
        if not forwarder.is_active:
            say(down=f"the SSH session to {spec.host}:{spec.port} ended")
            code = 3
            break
        quiet = silence.check()
        if quiet is not None:
            say(
                down=f"the SSH session to {spec.host}:{spec.port} went silent for {quiet:.0f}s "
                f"(the link stalled: nothing arrived, not even an answer to a keepalive)"
            )
            # Shut the dead connection first: a clean stop would queue a goodbye behind it.
            with contextlib.suppress(OSError):
                forwarder.link_socket.shutdown(socket.SHUT_RDWR)
            code = 3
            break
    forwarder.stop(force=True)
    return code


class Silence:
    """Notice a link that stalls without closing.

    paramiko's keepalive asks for no answer and a stalled TCP connection never fails, so
    a link that stops forwarding (a router that hangs, a 4G cell that drops out) would
    hang every statement until the kernel gives up, many minutes later. So: after
    ``keepalive / 2`` seconds in which the bastion sent nothing, ask it for an answer
    (``keepalive@openssh.com``, want-reply); after ``keepalive`` seconds of silence the
    session counts as dead. Any byte counts as an answer, so a slow link busy with a big
    page never looks silent.
    """

    def __init__(self, transport, sock, keepalive: float, clock=time.monotonic) -> None:
        self.transport, self.sock, self.keepalive, self.clock = transport, sock, keepalive, clock
        self._asking: threading.Thread | None = None

    def check(self) -> float | None:
        """Return the seconds of silence when the session counts as dead, else None."""
        quiet = self.clock() - self.sock.last_heard
        if quiet >= self.keepalive:
            return quiet
        if quiet >= self.keepalive / 2 and (self._asking is None or not self._asking.is_alive()):
            # global_request(wait=True) blocks until answered: in a thread of its own.
            self._asking = threading.Thread(target=self._ask, daemon=True)
            self._asking.start()
        return None

    def _ask(self) -> None:
        try:
            self.transport.global_request("keepalive@openssh.com", wait=True)
        except Exception:  # noqa: BLE001 - a dying transport; check() sees the silence
            pass


class Tunnel:
    """A tunnel to ``remote`` through the bastion, owned by a child process."""

    def __init__(self, spec: TunnelSpec) -> None:
        self.spec = spec
        self.local_port: int | None = None
        self.compression = "none"  # what the bastion chose: "zlib@openssh.com", "zlib" or "none"
        self._proc: subprocess.Popen | None = None

    @classmethod
    def from_config(
        cls, ssh: SSHSettings, remote_host: str, remote_port: int, password: str | None
    ) -> Tunnel:
        return cls(
            TunnelSpec(
                ssh.host,
                ssh.port,
                ssh.user,
                ssh.key_file,
                password,
                ssh.known_hosts,
                ssh.keepalive,
                ssh.connect_timeout,
                remote_host,
                remote_port,
                ssh.compression,
            )
        )

    def open(self) -> Tunnel:
        """Start the child and wait until it forwards, or raise its error."""
        env = child_environment()  # not the agent's secrets: it gets its one secret on stdin
        proc = self._proc = subprocess.Popen(
            [sys.executable, "-m", "appliance.sync.tunnel"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None  # both are pipes
        proc.stdin.write(json.dumps(self.spec.__dict__) + "\n")
        proc.stdin.flush()
        line = self._read_line(proc.stdout, timeout=self.spec.connect_timeout * 3 + 5)
        msg = json.loads(line) if line else {}
        if "port" not in msg:
            detail = "" if "error" in msg else self._stderr_tail(proc)
            self.close()
            if "error" in msg:
                cls = getattr(errors, msg["error"], TunnelError)
                raise cls(msg["message"])
            raise TunnelError(f"the tunnel process failed to start: {detail or 'no output'}")
        self.local_port = int(msg["port"])
        self.compression = msg.get("compression") or "none"
        return self

    @staticmethod
    def _read_line(stream: IO[str], timeout: float) -> str:
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        return result[0] if result else ""

    @staticmethod
    def _stderr_tail(proc: subprocess.Popen) -> str:
        try:
            _, err = proc.communicate(timeout=1)
        except (subprocess.TimeoutExpired, ValueError):
            return ""
        return (err or "").strip().splitlines()[-1:][0] if (err or "").strip() else ""

    def is_up(self) -> bool:
        """Return True while the child runs and its SSH session is alive."""
        return self._proc is not None and self._proc.poll() is None

    def wait_ended(self, timeout: float) -> bool:
        """Return True once the child has ended, waiting at most ``timeout`` seconds."""
        if self._proc is None:
            return False
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def exit_reason(self) -> str:
        """Return why the child ended (its last report), once it has."""
        proc = self._proc
        if proc is None or proc.poll() is None or proc.stdout is None:
            return ""
        try:
            lines = [json.loads(x) for x in proc.stdout.read().splitlines() if x.strip()]
        except (ValueError, OSError):
            lines = []
        for msg in reversed(lines):
            if "down" in msg:
                return msg["down"]
        return f"the tunnel process ended (exit code {proc.returncode})"

    def close(self) -> None:
        """Stop the child (closing its stdin asks it to stop; kill if it hangs)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()

    def __enter__(self) -> Tunnel:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(_child_main())
