"""Load and validate ``appliance.toml`` into the frozen dataclasses of ``settings``.

Loading checks the whole file and reports every problem at once, each with its key and a
fix ("did you mean ..." for a misspelt key).
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the flasher validates a config on a stock Mac's Python 3.9 (BRIEF 9)
    import tomli as tomllib
from typing import Any

from ..clock import parse_duration
from ..errors import ConfigError
from .bounds import duration_problems, expression_problem, notify_problems
from .settings import (
    REQUIRED,
    SECTIONS,
    TABLE_SETTINGS,
    Config,
    IndicatorSettings,
    NotifySettings,
    Problem,
    RetentionSettings,
    Setting,
    SourceSettings,
    SSHSettings,
    SyncSettings,
    TableSettings,
    WebSettings,
)
from .windows import announcement_blocks, maintenance_blocks

DEFAULT_CONFIG_PATH = "/etc/appliance/appliance.toml"
CONFIG_ENV = "APPLIANCE_CONFIG"
TOKEN_BESIDE_CONFIG = "api.token"  # the page's token when [web] names none

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_ $-]*$")


def _check(setting: Setting, key: str, value: Any, problems: list[Problem]) -> Any:
    """Return the value converted to the setting's kind, or record a problem."""
    kind = setting.kind
    if kind in ("str", "choice"):
        if not isinstance(value, str):
            problems.append(Problem(key, f"expected a string, got {value!r}", f'write {key} = "..."'))
            return setting.default
        if kind == "choice" and value not in setting.choices:
            problems.append(
                Problem(
                    key,
                    f'"{value}" is not one of {", ".join(setting.choices)}',
                    f"use one of: {', '.join(setting.choices)}",
                )
            )
            return setting.default
        return value
    if kind == "duration":
        try:
            return parse_duration(value)
        except ValueError as e:
            problems.append(Problem(key, str(e), f'e.g. {key} = "{setting.default}"'))
            return parse_duration(setting.default)
    if kind in ("int", "port", "pin"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(
                Problem(key, f"expected a whole number, got {value!r}", f"e.g. {key} = {setting.default}")
            )
            return setting.default
        lo, hi = {"int": (0, 2**63), "port": (1, 65535), "pin": (0, 27)}[kind]
        if not lo <= value <= hi:
            problems.append(
                Problem(key, f"{value} is out of range {lo}..{hi}", f"use a value between {lo} and {hi}")
            )
            return setting.default
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            problems.append(
                Problem(key, f"expected true or false, got {value!r}", f"write {key} = true or false")
            )
            return setting.default
        return value
    if kind in ("listmap", "strmap"):
        want = list if kind == "listmap" else str
        ok = isinstance(value, dict) and all(
            isinstance(v, want) and (want is str or all(isinstance(x, str) for x in v))
            for v in value.values()
        )
        if not ok:
            example = (
                '{ status = ["new", "paid"] }'
                if kind == "listmap"
                else '{ status = "public.order_statuses.code" }'
            )
            problems.append(
                Problem(key, f"expected a table like {example}, got {value!r}", f"write {key} = {example}")
            )
            return {}
        if kind == "strmap":
            for col, ref in value.items():
                if ref.count(".") != 2:
                    problems.append(
                        Problem(
                            f"{key}.{col}",
                            f'"{ref}" is not schema.table.column',
                            'e.g. "public.order_statuses.code"',
                        )
                    )
        return dict(value)
    if kind == "strlist":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(
                Problem(key, f"expected a list of strings, got {value!r}", f'write {key} = ["a", "b"]')
            )
            return list(setting.default)
        return list(value)
    raise AssertionError(kind)


def _section(raw: dict, prefix: str, settings: list[Setting], problems: list[Problem]) -> dict:
    """Return {name: value} for one section, recording every problem."""
    known = {s.name for s in settings}
    for extra in sorted(set(raw) - known):
        close = difflib.get_close_matches(extra.lower(), sorted(known), n=1, cutoff=0.75)
        hint = f'did you mean "{close[0]}"?' if close else f"known keys: {', '.join(sorted(known))}"
        problems.append(Problem(f"{prefix}.{extra}", "unknown key", hint))
    out = {}
    for s in settings:
        key = f"{prefix}.{s.name}"
        if s.name in raw:
            out[s.name] = _check(s, key, raw[s.name], problems)
        elif s.default is REQUIRED:
            problems.append(Problem(key, "is required", f"add {key} = ... ({s.help})"))
            out[s.name] = ""
        else:
            default = s.default
            out[s.name] = (
                parse_duration(default)
                if s.kind == "duration"
                else (type(default)(default) if isinstance(default, (list, dict)) else default)
            )
    return out


def _default_replica_name(name: str) -> str:
    schema, table = name.split(".", 1)
    return table if schema == "public" else f"{schema}__{table}"


def _tables(raw: Any, problems: list[Problem]) -> list[TableSettings]:
    if raw is None or raw == []:
        problems.append(
            Problem(
                "tables",
                "no table is configured",
                'add at least one [[tables]] block with name = "schema.table"',
            )
        )
        return []
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        problems.append(Problem("tables", "must be [[tables]] blocks", "see image/appliance.example.toml"))
        return []
    tables: list[TableSettings] = []
    seen: dict[str, int] = {}  # replica_name -> index of the first table using it
    for i, block in enumerate(raw):
        prefix = f"tables[{i}]"
        values = _section(block, prefix, TABLE_SETTINGS, problems)
        name = values["name"]
        if name and "." not in name:
            name = f"public.{name}"  # PostgreSQL's own default schema
        if name and name.count(".") != 1:
            problems.append(
                Problem(
                    f"{prefix}.name",
                    f'"{values["name"]}" is not schema.table',
                    'write name = "public.orders"',
                )
            )
            continue
        if not name:
            continue
        values["name"] = name
        values["replica_name"] = values["replica_name"] or _default_replica_name(name)
        rn = values["replica_name"]
        if rn.startswith("_appliance") or not _IDENT.match(rn):
            problems.append(
                Problem(
                    f"{prefix}.replica_name",
                    f'"{rn}" cannot be a replica table name',
                    "use letters, digits and _ not starting with _appliance",
                )
            )
        if rn in seen:
            problems.append(
                Problem(
                    f"{prefix}.replica_name",
                    f'"{rn}" is also used by tables[{seen[rn]}]',
                    "give one of them a different replica_name",
                )
            )
        seen[rn] = i
        for key in ("where", "tag"):
            flaw = expression_problem(f"{prefix}.{key}", values[key]) if values[key] else None
            if flaw:
                problems.append(flaw)
        overlap = set(values["exclude_columns"]) & set(values["primary_key"])
        if overlap:
            problems.append(
                Problem(
                    f"{prefix}.exclude_columns",
                    f"excludes key column(s) {', '.join(sorted(overlap))}",
                    "a key column must be fetched; remove it from exclude_columns",
                )
            )
        if values["cursor"] and values["cursor"] in values["exclude_columns"]:
            problems.append(
                Problem(
                    f"{prefix}.exclude_columns",
                    "excludes the cursor column",
                    "remove the cursor column from exclude_columns",
                )
            )
        tables.append(TableSettings(**values))
    return tables


def _secret_choice(prefix: str, values: dict, problems: list[Problem], needed: bool) -> None:
    """Check that at most one of password_file / password_env is set."""
    if values.get("password_file") and values.get("password_env"):
        problems.append(
            Problem(
                f"{prefix}.password_file", "password_file and password_env are both set", "keep one of them"
            )
        )
    if needed and not (values.get("password_file") or values.get("password_env") or values.get("key_file")):
        problems.append(
            Problem(
                f"{prefix}.key_file",
                "no way to log in is configured",
                "set key_file (recommended) or password_file / password_env",
            )
        )


def parse(data: dict, path: str = "", environ: dict[str, str] | None = None) -> Config:
    """Return the Config for already-parsed TOML ``data``; raise ConfigError listing every problem."""
    problems: list[Problem] = []
    known = set(SECTIONS) | {"tables", "maintenance", "announcements"}
    for extra in sorted(set(data) - known):
        problems.append(Problem(extra, "unknown section", f"known sections: {', '.join(sorted(known))}"))
    for name in SECTIONS:
        if name in data and not isinstance(data[name], dict):
            problems.append(Problem(name, "must be a [section]", f"write [{name}] on its own line"))
            data = {**data, name: {}}

    sec = {
        name: _section(data.get(name, {}), name, settings, problems)
        for name, settings in SECTIONS.items()
        if name != "ssh"
    }
    ssh = None
    if "ssh" in data:
        ssh_values = _section(data["ssh"], "ssh", SECTIONS["ssh"], problems)
        _secret_choice("ssh", ssh_values, problems, needed=True)
        problems += duration_problems({"ssh": ssh_values})
        ssh = SSHSettings(**ssh_values)
    problems += duration_problems(sec) + notify_problems(sec["notify"])
    if "source" not in data:
        problems.append(
            Problem("source", "the [source] section is missing", "add [source] with host, database and user")
        )
    _secret_choice("source", sec["source"], problems, needed=False)
    tables = _tables(data.get("tables"), problems)
    maintenance = maintenance_blocks(data.get("maintenance"), {t.name for t in tables}, problems)
    announcements = announcement_blocks(data.get("announcements"), {t.name for t in tables}, problems)

    sync = sec["sync"]
    if sync["warn_lag"] >= sync["max_lag"]:
        problems.append(
            Problem(
                "sync.warn_lag", "must be shorter than sync.max_lag", 'e.g. warn_lag = "10m", max_lag = "1h"'
            )
        )
    if sync["interval"] <= 0:
        problems.append(Problem("sync.interval", "must be longer than 0", 'e.g. interval = "30s"'))
    if sync["batch_size"] < 1:
        problems.append(Problem("sync.batch_size", "must be at least 1", "e.g. batch_size = 20000"))

    state_dir = sec["appliance"]["state_dir"]
    if not os.path.isabs(state_dir):  # "" or a relative path: state would land wherever it runs
        problems.append(
            Problem(
                "appliance.state_dir",
                f"{state_dir!r} is not an absolute path",
                'e.g. state_dir = "/var/lib/appliance"',
            )
        )
    replica_url = sec["replica"]["url"] or f"sqlite:///{Path(state_dir) / 'replica.sqlite'}"
    if "://" not in replica_url:
        problems.append(
            Problem(
                "replica.url",
                f'"{replica_url}" is not a SQLAlchemy URL',
                'e.g. url = "sqlite:////var/lib/appliance/replica.sqlite"',
            )
        )
    if problems:
        raise ConfigError(problems, path)
    web = sec["web"]
    if not web["api_token_file"] and not web["api_token_env"] and path:
        # install-on-pi and the flasher put a generated token here: actions are closed by
        # default, and the config the user wrote need not be edited to name it.
        beside = Path(path).parent / TOKEN_BESIDE_CONFIG
        if os.path.lexists(beside):
            web["api_token_file"] = str(beside)
    return Config(
        path=path,
        state_dir=state_dir,
        ssh=ssh,
        source=SourceSettings(**sec["source"]),
        replica_url=replica_url,
        sync=SyncSettings(**sync),
        tables=tables,
        notify=NotifySettings(**sec["notify"]),
        retention=RetentionSettings(**sec["retention"]),
        replica_min_free=(sec["replica"]["min_free_mb"], sec["replica"]["min_free_percent"]),
        web=WebSettings(**sec["web"]),
        indicator=IndicatorSettings(**sec["indicator"]),
        maintenance=maintenance,
        announcements=announcements,
        environ=dict(os.environ if environ is None else environ),
    )


def config_path(explicit: str | None = None) -> str:
    """Return the config path: the explicit one, else $APPLIANCE_CONFIG, else the default."""
    return explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH


def load(path: str | os.PathLike | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read and validate the config file; raise ConfigError with every problem found."""
    path = str(path or config_path())
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [
                Problem(
                    "file",
                    f"{path} does not exist",
                    "create it from image/appliance.example.toml or pass --config",
                )
            ],
            path,
        ) from None
    except OSError as e:
        raise ConfigError(
            [Problem("file", f"cannot read {path}: {e.strerror}", "check the file's permissions")], path
        ) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([Problem("file", "is not UTF-8 text", "save the file as UTF-8")], path) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            [Problem("file", f"is not valid TOML: {e}", "fix the syntax at the line and column shown")], path
        ) from None
    return parse(data, path, environ)
