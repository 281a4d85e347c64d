"""Fake diskutil, sudo, sharing, lsblk, umount and eject for the flasher's tests.

Replays captured output and records every call (one tab-separated line each) to $FAKE_LOG.
Usage: fake.py COMMAND ARGS... (the test's PATH holds one wrapper per command).
Environment: FAKE_LOG, FAKE_DISKUTIL (a folder: one file per argument line, "/" as "%2F"),
FAKE_LSBLK (JSON file), FAKE_DEV (where /dev/NAME of a fake disk lives), FAKE_STATE (markers:
shared, fail-*, user-* (fails unless through sudo), refuse-*). Only os and sys are imported
up front: the tests call this often.
"""

import os
import sys


def log(cmd, args):
    with open(os.environ["FAKE_LOG"], "a") as f:
        sudo = "sudo" if os.environ.get("FAKE_VIA_SUDO") == "1" else "user"
        f.write("\t".join([sudo, cmd, *args]) + "\n")


def state(name):
    return os.path.join(os.environ["FAKE_STATE"], name)


def dev(path):
    """Map /dev/NAME to the test's file standing in for that disk."""
    if path.startswith("/dev/"):
        return os.path.join(os.environ["FAKE_DEV"], path[len("/dev/") :])
    return path


def diskutil(args):
    if args and args[0] in ("unmountDisk", "eject", "mountDisk"):
        as_user = os.environ.get("FAKE_VIA_SUDO") != "1"
        if os.path.exists(state("fail-" + args[0])) or (as_user and os.path.exists(state("user-" + args[0]))):
            sys.stderr.write(f"Failed to {args[0]} {args[-1]}: Resource busy\n")
            return 1
        print(f"{args[0]} of {args[-1]} was successful")
        return 0
    reply = os.path.join(os.environ["FAKE_DISKUTIL"], " ".join(args).replace("/", "%2F"))
    if os.path.exists(reply):
        with open(reply, "rb") as f:
            sys.stdout.buffer.write(f.read())
        return 0
    sys.stderr.write(f"Could not find disk: {args[-1] if args else ''}\n")
    return 1


def refuse_open(args):
    """Answer the opener protocol with EPERM, as macOS does for a refused raw device."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(args[-1])
    sock.sendall(b"ERR 1 Operation not permitted")
    return 1


def sudo(args):
    import subprocess

    if args == ["-v"]:
        return 0
    env = dict(os.environ, FAKE_VIA_SUDO="1")
    if any(a.endswith("opener.py") for a in args):
        name = os.path.basename(args[-2])
        if os.path.exists(state("refuse-" + name)) and not os.path.exists(state("shared")):
            return refuse_open(args)
        args = args[:-2] + [dev(args[-2]), args[-1]]
    elif args and args[0] == "dd":
        # BSD dd takes bs=1m; the GNU dd running this fake needs bs=1M.
        args = ["dd"] + [
            "bs=1M" if a == "bs=1m" else (a[:3] + dev(a[3:]) if a.startswith("of=") else a) for a in args[1:]
        ]
    return subprocess.call(args, env=env)


def sharing(args):
    if args[:1] == ["-a"]:
        with open(state("shared"), "w") as f:
            f.write(args[1])
    elif args[:1] == ["-r"] and os.path.exists(state("shared")):
        os.remove(state("shared"))
    return 0


def lsblk(args):
    with open(os.environ["FAKE_LSBLK"], "rb") as f:
        sys.stdout.buffer.write(f.read())
    return 0


def succeed(args):
    return 0


COMMANDS = {
    "diskutil": diskutil,
    "sudo": sudo,
    "sharing": sharing,
    "lsblk": lsblk,
    "umount": succeed,
    "eject": succeed,
}


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    log(cmd, args)
    return COMMANDS[cmd](args)


if __name__ == "__main__":
    sys.exit(main())
