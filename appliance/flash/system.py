"""The outside world of the flasher: which platform, whether we are root, running commands."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence

from appliance.flash.errors import CommandError, UnsupportedPlatformError

PLATFORM_ENV = "APPLIANCE_FLASH_PLATFORM"
PLATFORMS = ("darwin", "linux")


def platform_name() -> str:
    """Return the drive backend, "darwin" or "linux" (APPLIANCE_FLASH_PLATFORM forces one)."""
    forced = os.environ.get(PLATFORM_ENV, "").strip().lower()
    if forced:
        if forced not in PLATFORMS:
            raise UnsupportedPlatformError(
                f"{PLATFORM_ENV}={forced!r} is not a drive backend: use darwin or linux."
            )
        return forced
    if sys.platform == "darwin":
        return "darwin"
    if sys.platform.startswith("linux"):
        return "linux"
    raise UnsupportedPlatformError()


def is_root() -> bool:
    """Return True when this process already runs as root (then sudo is not needed)."""
    return os.geteuid() == 0


def as_root(argv: Sequence[str]) -> list:
    """Return argv prefixed with sudo unless we are root already."""
    return list(argv) if is_root() else ["sudo", *argv]


def quote(argv: Sequence[str]) -> str:
    """Return argv as one shell-quoted line, as a user would type it."""
    return " ".join(shlex.quote(str(a)) for a in argv)


def have(command: str) -> bool:
    """Return True when command is on PATH."""
    return shutil.which(command) is not None


def run(
    argv: Sequence[str], *, root: bool = False, check: bool = True, timeout: float | None = 120
) -> subprocess.CompletedProcess:
    """Run a command (through sudo when root is needed) and return its captured output."""
    full = as_root(argv) if root else list(argv)
    try:
        done = subprocess.run(full, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise CommandError(
            f"`{full[0]}` was not found: it is needed to run `{quote(full)}`; install it or check PATH."
        ) from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"`{quote(full)}` did not finish within {timeout:.0f} s.") from None
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).decode(errors="replace").strip()
        raise CommandError(f"`{quote(full)}` failed (exit {done.returncode}): {detail}")
    return done


def sudo_validate() -> None:
    """Ask sudo for the password once, before any progress bar hides its prompt."""
    if is_root():
        return
    try:
        done = subprocess.run(["sudo", "-v"], check=False)
    except FileNotFoundError:
        raise CommandError(
            "sudo was not found: unmounting and writing the card need root; run this as root or install sudo."
        ) from None
    if done.returncode != 0:
        raise CommandError(
            "sudo did not grant root (wrong password or not an administrator): writing the card "
            "needs it; run again as an administrator user."
        )
