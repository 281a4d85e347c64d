"""Masked columns: fetched as a keyed hash, so joins still work but values stay off the Pi.

The key is the appliance's own (32 random bytes in ``<state_dir>/mask.key``, mode 0600),
so the same value hashes the same in every table of one appliance, and differently on
another, and a dictionary of likely values cannot be hashed without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path


def mask_key(state_dir: str | os.PathLike) -> bytes:
    """Return the appliance's masking key, creating it (mode 0600) on first use."""
    path = Path(state_dir) / "mask.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        return path.read_bytes()


def masker(key: bytes, positions: list[int]):
    """Return a function that replaces the values at ``positions`` of each row by their HMAC."""

    def mask(rows: list) -> list:
        out = []
        for row in rows:
            row = list(row)
            for i in positions:
                if row[i] is not None:
                    value = row[i] if isinstance(row[i], bytes) else str(row[i]).encode()
                    row[i] = hmac.new(key, value, hashlib.sha256).hexdigest()
            out.append(row)
        return out

    return mask
