"""Hash the login password as SHA-512 crypt (``$6$``), which every Raspberry Pi OS accepts.

Python's ``crypt`` module is gone in 3.13; libpass (the maintained fork of passlib) has a
pure-Python SHA-512 crypt that runs on a stock Mac's Python 3.9 as well as on the Pi.
"""

from __future__ import annotations

from .errors import OptionError

ROUNDS = 5000  # glibc's default: the hash then carries no "rounds=" field, like chpasswd's


def hash_password(password: str) -> str:
    """Return the SHA-512 crypt hash of ``password`` with a fresh random salt."""
    if not password:
        raise OptionError("the password file is empty; write the login password into it")
    if "\n" in password or "\r" in password:
        raise OptionError("the password file holds more than one line; keep only the password")
    try:
        from passlib.hash import sha512_crypt  # imported late: only customization needs it
    except ImportError:
        raise OptionError(
            "hashing the login password needs the Python package libpass, which is not "
            "installed: run scripts/flash-sd (it installs appliance/flash/requirements.txt), "
            "or pip install libpass"
        ) from None

    return sha512_crypt.using(rounds=ROUNDS).hash(password)
