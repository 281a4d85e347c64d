"""The status page's token, made by the flasher when the config names none (issue 14).

Actions on the page (acknowledge, accept drift, maintenance) and the data API need a token
by default. When the config names neither ``[web] api_token_file`` nor ``api_token_env``
and no ``--api-token-file`` is given, the card gets a new one: 32 random bytes as hex,
carried to ``/etc/appliance/api.token``, where the page looks beside its config when the
config names none. ``actions_open = true`` does not make it needless: accepting a breaking
change always asks for the token, and so does the data API unless ``data_api_open``
(install-on-pi makes one in the same case).

The person who flashed the card needs it too, so a copy stays on this machine beside the
config it belongs to, as ``<config name>.token`` (``appliance.toml`` -> ``appliance.token``),
mode 0600. Beside the config, not in a folder of its own: that folder already holds the site's
other secrets (tunnel key, database password) and is kept out of git; the name ties the token
to its config, so two sites' configs in one folder get two tokens. A card flashed again from
the same config gets the same token (scripts that use it keep working); delete the copy to
get a new one. The token itself is never printed: only where it is and how to use it.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import OptionError, SecretFileError

PI_TOKEN_NAME = "api.token"  # appliance.config.load.TOKEN_BESIDE_CONFIG, read on the Pi
TOKEN_BYTES = 32


@dataclass
class TokenPlan:
    """A token the flasher made (or made earlier) for the card, and its copy on this machine."""

    path: str  # the copy beside the config
    data: bytes  # what goes on the card; never printed
    reused: bool  # the copy existed already (made by an earlier run for this config)

    def lines(self, host: str, port: int) -> list[str]:
        """Return where the token is and how to use it (never the token itself)."""
        how = "reused the token made earlier for this config" if self.reused else "generated a new token"
        return [
            f"api.token: {how}; it protects the page's actions and data API. "
            f"Your copy: {self.path} (mode 0600; not shown here)",
            f"  use it: paste it when the page asks, or "
            f'curl -H "Authorization: Bearer $(cat {self.path})" http://{host}:{port}/api/status',
        ]

    def as_dict(self) -> dict[str, Any]:
        """Return where the copy is, for --json (without the token)."""
        return {"path": self.path, "reused": self.reused, "card": f"/etc/appliance/{PI_TOKEN_NAME}"}


def copy_path(config_file: str) -> str:
    """Return where this machine keeps the token for a config: ``<config name>.token`` beside it."""
    return str(Path(config_file).with_suffix(".token"))


def wanted(web: dict[str, Any], given: bool) -> bool:
    """Return True when the card needs a generated token: none named or given."""
    named = web.get("api_token_file") or web.get("api_token_env")
    return not (given or named)


def plan(config_file: str, web: dict[str, Any], given: bool) -> TokenPlan | None:
    """Return the token to put on the card (None when the card needs none); nothing is written."""
    if not wanted(web, given):
        return None
    path = copy_path(config_file)
    if os.path.lexists(path):
        return TokenPlan(path, _read_copy(path), reused=True)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.access(folder, os.W_OK):
        raise OptionError(
            f"the card needs a token for the page's actions and data API, and its copy would go "
            f"to {path}, but {folder} is not writable: make it writable, or give "
            "--api-token-file FILE"
        )
    return TokenPlan(path, (secrets.token_hex(TOKEN_BYTES) + "\n").encode("ascii"), reused=False)


def _read_copy(path: str) -> bytes:
    """Return the token saved by an earlier run; refuse one that is not a usable token."""
    try:
        st = os.stat(path)
        data = Path(path).read_bytes() if stat.S_ISREG(st.st_mode) else b""
    except OSError as e:
        raise SecretFileError(f"the saved token {path} cannot be read ({e.strerror})") from None
    if not data.strip() or len(data.strip()) < 16:
        raise SecretFileError(
            f"the saved token {path} is empty, too short or not a file: delete it to have a new "
            "token generated, or give --api-token-file FILE"
        )
    if st.st_mode & 0o077:
        raise SecretFileError(
            f"the saved token {path} can be read by others (mode {stat.S_IMODE(st.st_mode):04o}): "
            f"run chmod 600 {path} (or delete it to have a new token generated)"
        )
    return data


def save(token: TokenPlan) -> None:
    """Write a new token's copy beside the config, mode 0600 from the start (never widened)."""
    if token.reused:
        return
    try:
        fd = os.open(token.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SecretFileError(
            f"{token.path} appeared while the card was being made: run the command again "
            "(it will use that token)"
        ) from None
    except OSError as e:
        raise SecretFileError(f"cannot save the new token to {token.path} ({e.strerror})") from None
    with os.fdopen(fd, "wb") as f:
        f.write(token.data)
