"""Read secrets from files (mode 0600) or environment variables, never from arguments.

The value of a secret is returned and never logged; error messages name the file or
variable, never the content.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from .errors import SecretError

# What a child process of ours may inherit: what it needs to find Python and its packages,
# and how to allocate. The rest of a service's environment can hold the source password
# (source.password_env), the page's token (web.api_token_env), an SSH agent's socket or a
# webhook token; a child that needs a secret gets it on stdin.
CHILD_ENVIRONMENT = frozenset(
    {
        "PATH",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "LANG",
        "LANGUAGE",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "TMPDIR",
        "MALLOC_ARENA_MAX",
    }
)


def child_environment() -> dict[str, str]:
    """Return this process's environment as a child of it may see it (CHILD_ENVIRONMENT)."""
    return {k: v for k, v in os.environ.items() if k in CHILD_ENVIRONMENT}


def check_private_file(path: str, key: str) -> None:
    """Raise SecretError unless ``path`` exists, is readable and not readable by others."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SecretError(f"{key}: {path} does not exist. Create it or fix the path in the config.") from None
    except PermissionError:
        raise SecretError(
            f"{key}: {path} cannot be read by this user. Give the file to the "
            f"service user (chown) with mode 0600."
        ) from None
    if not stat.S_ISREG(st.st_mode):  # a FIFO would hang the read, a directory raise
        raise SecretError(f"{key}: {path} is not a regular file. Point {key} at the file holding the secret.")
    if not os.access(path, os.R_OK):
        raise SecretError(
            f"{key}: {path} cannot be read by this user. Give the file to the "
            f"service user (chown) with mode 0600."
        )
    mode = stat.S_IMODE(st.st_mode)
    # Root's file that only this process's own group may read (0640 root:appliance-web):
    # install-on-pi gives the page's token to the page's user alone that way, so the sync's
    # user cannot read it and the page cannot change it.
    shared_by_root = st.st_uid == 0 and st.st_gid == os.getegid() and not mode & 0o037
    if mode & 0o077 and not shared_by_root:
        raise SecretError(f"{key}: {path} is readable by other users (mode {mode:o}). Run: chmod 600 {path}")


def check_trusted_file(path: str, key: str) -> None:
    """Raise SecretError unless ``path`` is a regular file that no other user can change.

    For files that are not secret but must not be forged, such as ``known_hosts``: anyone
    who can write it can pin their own bastion.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SecretError(f"{key}: {path} does not exist. Create it or fix the path in the config.") from None
    if not stat.S_ISREG(st.st_mode):
        raise SecretError(f"{key}: {path} is not a regular file. Point {key} at the file itself.")
    if stat.S_IMODE(st.st_mode) & 0o022:
        raise SecretError(
            f"{key}: {path} can be changed by other users (mode {stat.S_IMODE(st.st_mode):o}). "
            f"Run: chmod go-w {path}"
        )


def read_secret(
    *, file: str = "", env: str = "", key: str, environ: dict[str, str] | None = None
) -> str | None:
    """Return the secret from ``file`` or from variable ``env``; None when neither is set."""
    if file:
        check_private_file(file, f"{key}_file")
        try:
            value = Path(file).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise SecretError(
                f"{key}_file: {file} is not UTF-8 text. Write the secret as one line of text."
            ) from None
        return value.rstrip("\r\n")
    if env:
        variables: Mapping[str, str] = os.environ if environ is None else environ
        if env not in variables:
            raise SecretError(
                f"{key}_env: the environment variable {env} is not set. Set it "
                f"(e.g. in the systemd unit's EnvironmentFile) or use {key}_file."
            )
        return variables[env]
    return None
