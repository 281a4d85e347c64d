"""A real OpenSSH sshd on a loopback port with throwaway host and client keys."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .pg import free_port


def sshd_binary() -> str:
    for path in ("/usr/sbin/sshd", shutil.which("sshd")):
        if path and os.path.exists(path):
            return path
    raise RuntimeError("sshd not found: install openssh-server (scripts/test does as root)")


def keygen(path: Path, kind: str = "ed25519") -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "test", "-f", str(path)], check=True)


class Sshd:
    """sshd -D on 127.0.0.1:<port>; the client key may forward to anything by default, and run
    no command unless ``commands`` (a bastion set up carelessly)."""

    def __init__(
        self, base: str | None = None, permitopen: str | None = None, commands: bool = False
    ) -> None:
        self.dir = Path(base or tempfile.mkdtemp(prefix="appliance-sshd-"))
        self.port = free_port()
        self.user = getpass.getuser()
        self.host_key = self.dir / "host_ed25519"
        self.client_key = self.dir / "client_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.proc: subprocess.Popen | None = None
        keygen(self.host_key)
        keygen(self.client_key)
        # As the README tells a bastion's admin: forwarding only, no command, no shell.
        opts = [] if commands else ["restrict", "port-forwarding", 'command="/bin/false"']
        opts += [f'permitopen="{permitopen}"'] if permitopen else []
        options = ",".join(opts) + " " if opts else ""
        pub = (self.client_key.with_suffix(".pub")).read_text().strip()
        (self.dir / "authorized_keys").write_text(options + pub + "\n")
        self.write_known_hosts()
        self.write_config()

    def host_pub(self) -> str:
        return self.host_key.with_suffix(".pub").read_text().split()[:2]

    def write_known_hosts(self) -> None:
        kind, blob = self.host_pub()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {kind} {blob}\n")

    def write_config(self) -> None:
        (self.dir / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"AuthorizedKeysFile {self.dir}/authorized_keys\nPidFile {self.dir}/sshd.pid\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "AllowTcpForwarding yes\nLogLevel ERROR\nClientAliveInterval 5\n"
            "MaxStartups 100\n"
        )

    def regenerate_host_key(self) -> None:
        """Give the server a new host key (the pinned one in known_hosts stays old)."""
        self.host_key.unlink()
        self.host_key.with_suffix(".pub").unlink()
        keygen(self.host_key)

    def start(self) -> Sshd:
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        with open(self.dir / "log", "ab") as log:
            self.proc = subprocess.Popen(
                [sshd_binary(), "-D", "-e", "-f", str(self.dir / "sshd_config")],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.dir / 'log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("sshd did not start")

    def stop(self) -> None:
        """Kill sshd and every session it forked (a cut tunnel)."""
        if self.proc is not None:
            for pid in [*descendants(self.proc.pid), self.proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
            self.proc = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def descendants(pid: int) -> list[int]:
    """Return the pids of every process below ``pid`` (sshd sessions call setsid)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
