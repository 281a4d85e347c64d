"""Opening the target: files as the user, disks as root through sudo and opener.py."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import tempfile

from appliance.flash import system
from appliance.flash.drive import Drive
from appliance.flash.errors import CommandError

OPENER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "opener.py")
_FLAGS = {"r": os.O_RDONLY, "rw": os.O_RDWR, "rwx": os.O_RDWR | os.O_EXCL}


def open_mode(drive: Drive, platform: str, write: bool) -> str:
    """Return the opener mode: O_EXCL for writing a Linux block device (fails if it is in use)."""
    if not write:
        return "r"
    return "rwx" if platform == "linux" and drive.kind != "file" else "rw"


def open_target(drive: Drive, platform: str, *, write: bool = True) -> int:
    """Return an open descriptor of the target: a file as the user, a disk as root."""
    if drive.is_file:
        flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC if write else os.O_RDONLY
        return os.open(drive.raw_path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
    mode = open_mode(drive, platform, write)
    if system.is_root():
        return _open_local(drive.raw_path, mode)
    return open_via_sudo(drive.raw_path, mode)


def _open_local(path: str, mode: str) -> int:
    """Open a device directly (we are root already)."""
    return os.open(path, _FLAGS[mode] | getattr(os, "O_CLOEXEC", 0))


def opener_argv(path: str, mode: str, sock_path: str) -> list:
    """Return the command that opens path as root (shown by --dry-run)."""
    return ["sudo", sys.executable, "-I", OPENER, mode, path, sock_path]


def open_via_sudo(path: str, mode: str) -> int:
    """Run opener.py through sudo and receive the descriptor it opened."""
    with tempfile.TemporaryDirectory(prefix="appliance-flash-") as tmp:
        sock_path = os.path.join(tmp, "s")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with server:
            server.bind(sock_path)
            server.listen(1)
            server.settimeout(0.2)
            proc = subprocess.Popen(
                opener_argv(path, mode, sock_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            conn = _accept(server, proc)
            with conn:
                msg, fds, _flags, _addr = socket.recv_fds(conn, 512, 1)
            proc.communicate()
    return _answer(path, msg, fds)


def _accept(server: socket.socket, proc: subprocess.Popen) -> socket.socket:
    """Return the opener's connection; fail when it exits without connecting."""
    while True:
        try:
            conn, _ = server.accept()
            conn.settimeout(None)
            return conn
        except socket.timeout:  # noqa: UP041 - TimeoutError is an alias only from Python 3.10
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
                raise CommandError(
                    f"sudo could not run the helper that opens the card (exit {proc.returncode})"
                    f": {err or 'no message'}. Run again and enter your password when asked."
                ) from None


def _answer(path: str, msg: bytes, fds: list) -> int:
    """Return the received descriptor, or raise the OSError the opener reported."""
    if msg.startswith(b"OK") and fds:
        return fds[0]
    for fd in fds:
        os.close(fd)
    parts = msg.decode(errors="replace").split(" ", 2)
    if parts[0] == "ERR" and len(parts) == 3 and parts[1].isdigit():
        code = int(parts[1]) or errno.EIO
        raise OSError(code, parts[2], path)
    raise CommandError(f"The helper that opens {path} answered {msg!r}.")
