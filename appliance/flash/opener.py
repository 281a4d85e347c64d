"""Open a disk as root and hand the open file back to the flasher over a Unix socket.

Run by the flasher as `sudo python3 -I opener.py MODE PATH SOCKET` (MODE: r, rw or rwx for
read-write with O_EXCL). Only this step runs as root: decompression, hashing and the write
loop run as the user on the descriptor passed back, as macOS's own authopen does it.
Standard library only, so root runs nothing but this file.
"""

import os
import socket
import sys

MODES = {"r": os.O_RDONLY, "rw": os.O_RDWR, "rwx": os.O_RDWR | os.O_EXCL}


def send_error(sock: socket.socket, err: OSError) -> None:
    """Tell the flasher why the open failed (errno and text)."""
    sock.sendall(f"ERR {err.errno or 0} {err.strerror or err}".encode())


def main(args=None) -> int:
    """Open PATH in MODE and send the descriptor to SOCKET; return the exit status."""
    args = sys.argv[1:] if args is None else args
    if len(args) != 3 or args[0] not in MODES:
        sys.stderr.write("usage: opener.py r|rw|rwx PATH SOCKET\n")
        return 2
    mode, path, sock_path = args
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sock_path)
    try:
        fd = os.open(path, MODES[mode] | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        send_error(sock, err)
        return 1
    socket.send_fds(sock, [b"OK"], [fd])
    return 0


if __name__ == "__main__":
    sys.exit(main())
