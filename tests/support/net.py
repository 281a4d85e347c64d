"""Loopback ports that behave one known way for as long as a test holds them."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """Yield a port where every connection is refused: bound by us, never listening.

    Unlike a port found free and released, nothing else (say another test's sshd) can start
    listening on it while the block runs.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """Yield a port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]
