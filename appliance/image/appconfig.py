"""Read the appliance config to bake into the card, and where on the Pi its secrets live.

The whole file is validated by ``appliance.config`` (the checks of `appliance config
check`), on a stock Mac's Python 3.9 too: see ``_full_loader``.
"""

from __future__ import annotations

import posixpath
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .errors import ImageConfigError

PI_CONFIG_DIR = "/etc/appliance"
PI_CONFIG_NAME = "appliance.toml"
PI_STATE_DIR = "/var/lib/appliance"  # the units' StateDirectory=appliance
SECRET_KEYS = {  # option -> (section, key) naming where the Pi reads that file
    "tunnel_key": ("ssh", "key_file"),
    "known_hosts": ("ssh", "known_hosts"),
    "ssh_password": ("ssh", "password_file"),
    "source_password": ("source", "password_file"),
    "api_token": ("web", "api_token_file"),
}
# Secrets the config reads from an environment variable: nothing on the Pi sets one for the
# units, so the card needs the ``*_file`` form instead. (section, env key, file key, option)
ENV_SECRETS = (
    ("ssh", "password_env", "password_file", "--ssh-password-file"),
    ("source", "password_env", "password_file", "--source-password-file"),
    ("web", "api_token_env", "api_token_file", "--api-token-file"),
)


@dataclass
class BakedConfig:
    """The config file's bytes and the Pi-side names of the files it refers to."""

    text: bytes
    targets: dict[str, str]  # option -> file name inside /etc/appliance ("" when unset)
    warnings: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # the parsed TOML
    path: str = ""  # the file on this machine (a generated token's copy goes beside it)


_MISSING = (
    "the Python package {module} is needed {why} on Python < 3.11 and is not installed: "
    "run scripts/flash-sd (it installs appliance/flash/requirements.txt), or pip install {module}"
)


def _toml(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # e.g. a stock Mac's 3.9
        try:
            import tomli as tomllib
        except ImportError:
            raise ImageConfigError(_MISSING.format(module="tomli", why="to read the config")) from None
    return tomllib.loads(text)


def read_config(path: str) -> BakedConfig:
    """Read and check the appliance config at ``path``; raise ImageConfigError if unusable."""
    try:
        raw = Path(path).read_bytes()
        data = _toml(raw.decode("utf-8"))
    except OSError as e:
        raise ImageConfigError(f"cannot read the appliance config {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ImageConfigError(f"{path} is not UTF-8 text; save it as UTF-8") from None
    except ValueError as e:  # tomllib.TOMLDecodeError is a ValueError
        raise ImageConfigError(f"{path} is not valid TOML: {e}") from None
    warnings = _validate(data, path)
    targets = {opt: _pi_name(data, section, key, path) for opt, (section, key) in SECRET_KEYS.items()}
    state_dir = (data.get("appliance") or {}).get("state_dir", PI_STATE_DIR)
    if state_dir != PI_STATE_DIR:
        warnings.append(
            f'appliance.state_dir is "{state_dir}", but the units only let the '
            f'services write to {PI_STATE_DIR}; set state_dir = "{PI_STATE_DIR}"'
        )
    return BakedConfig(raw, targets, warnings, data, path)


def env_secrets(data: dict[str, Any]) -> list[str]:
    """Return one line per secret the config takes from an environment variable."""
    out = []
    for section, env_key, file_key, option in ENV_SECRETS:
        name = (data.get(section) or {}).get(env_key)
        if name:
            out.append(
                f'{section}.{env_key} = "{name}": the units set no environment '
                f"variables, so the Pi would not find it; write {section}.{file_key} = "
                f'"{PI_CONFIG_DIR}/<name>" instead and give {option} FILE'
            )
    return out


def _full_loader() -> Any:
    """Return ``appliance.config``, also on a stock Mac's Python 3.9.

    The loader runs on 3.9 (it reads TOML with ``tomli`` there, which scripts/flash-sd
    installs), so the card gets exactly the checks of `appliance config check`.
    """
    if sys.version_info < (3, 11):
        try:
            import tomli  # noqa: F401 - what appliance.config reads TOML with before 3.11
        except ImportError:
            raise ImageConfigError(_MISSING.format(module="tomli", why="to read the config")) from None
    from .. import config as full

    return full


def _validate(data: dict[str, Any], path: str) -> list[str]:
    """Validate the whole file as `appliance config check` does; raise if it is invalid."""
    try:
        _full_loader().parse(data, path, environ={})
    except ConfigError as e:
        raise ImageConfigError(f"the appliance config to bake into the card is invalid: {e}") from None
    return []


def _pi_name(data: dict[str, Any], section: str, key: str, path: str) -> str:
    """Return the file name inside /etc/appliance that ``[section] key`` names, or ""."""
    value = (data.get(section) or {}).get(key, "")
    if not value:
        return ""
    if not isinstance(value, str) or posixpath.dirname(value) != PI_CONFIG_DIR:
        name = posixpath.basename(str(value)) or "FILE"
        raise ImageConfigError(
            f'{section}.{key} = "{value}" in {path}: the card can only carry files into '
            f'{PI_CONFIG_DIR}; write {key} = "{PI_CONFIG_DIR}/{name}"'
        )
    name = posixpath.basename(value)
    if name in (PI_CONFIG_NAME, "") or name.startswith("."):
        raise ImageConfigError(
            f'{section}.{key} = "{value}" in {path} would overwrite the config '
            f'itself; name the file differently, e.g. "{PI_CONFIG_DIR}/secret"'
        )
    return name
