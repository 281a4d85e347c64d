"""Load and validate ``appliance.toml`` into frozen dataclasses.

The keys are a contract (BRIEF section 3): scripts and other tools write them. Every
setting is declared once, in the tables below, with its type, default and help; loading
checks the whole file and reports every problem at once, each with its key and a fix.
Secrets are never read here: only the paths or variable names that hold them
(see ``appliance.secrets``).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_CONFIG_PATH = "/etc/appliance/appliance.toml"
CONFIG_ENV = "APPLIANCE_CONFIG"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_ $-]*$")


def parse_duration(text: str) -> float:
    """Return the seconds in a duration such as "30s", "10m", "1h", "2d" or "500ms"."""
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f'"{text}" is not a duration; write it like "30s", "10m", "1h" or "2d"')
    return float(m.group(1)) * _UNITS[m.group(2)]


def format_duration(seconds: float) -> str:
    """Return a short human form of a number of seconds ("45s", "12m", "3h 5m")."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    if seconds < 86400:
        h, m = divmod(int(seconds) // 60, 60)
        return f"{h}h {m}m" if m else f"{h}h"
    d, h = divmod(int(seconds) // 3600, 24)
    return f"{d}d {h}h" if h else f"{d}d"


class Problem:
    """One thing wrong with the config file: the key, what is wrong, how to fix it."""

    def __init__(self, key: str, message: str, fix: str = "") -> None:
        self.key, self.message, self.fix = key, message, fix

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" + (f" (fix: {self.fix})" if self.fix else "")

    def __repr__(self) -> str:
        return f"Problem({str(self)!r})"


# -- the settings table ------------------------------------------------------------------

REQUIRED = object()


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # str | int | bool | duration | port | strlist | choice | pin | listmap | strmap
    default: Any
    help: str
    choices: tuple[str, ...] = ()


def _s(name, kind, default, help, choices=()):
    return Setting(name, kind, default, help, tuple(choices))


SECTIONS: dict[str, list[Setting]] = {
    "appliance": [
        _s("state_dir", "str", "/var/lib/appliance", "where state, contract and events live"),
    ],
    "ssh": [
        _s("host", "str", REQUIRED, "the bastion host name or address"),
        _s("port", "port", 22, "the bastion's SSH port"),
        _s("user", "str", REQUIRED, "the SSH user on the bastion"),
        _s("key_file", "str", "", "private key for the tunnel (ed25519)"),
        _s("password_env", "str", "", "environment variable holding the SSH password"),
        _s("password_file", "str", "", "file (mode 0600) holding the SSH password"),
        _s("known_hosts", "str", REQUIRED, "known_hosts file that pins the bastion's host key"),
        _s("keepalive", "duration", "10s", "SSH keepalive interval"),
        _s("connect_timeout", "duration", "10s", "how long to wait for the bastion"),
    ],
    "source": [
        _s("host", "str", REQUIRED, "database host as the bastion sees it"),
        _s("port", "port", 5432, "database port"),
        _s("database", "str", REQUIRED, "database name"),
        _s("user", "str", REQUIRED, "read-only database role"),
        _s("password_file", "str", "", "file (mode 0600) holding the database password"),
        _s("password_env", "str", "", "environment variable holding the database password"),
        _s("statement_timeout", "duration", "60s", "longest statement the appliance may run"),
        _s("connect_timeout", "duration", "5s", "how long to wait for a connection or probe"),
        _s("sslmode", "choice", "prefer", "libpq sslmode",
           ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]),
    ],
    "replica": [
        _s("url", "str", "", "SQLAlchemy URL of the local replica (default: state_dir/replica.sqlite)"),
    ],
    "sync": [
        _s("interval", "duration", "30s", "time between sync passes"),
        _s("probe_interval", "duration", "5s", "how often the link is probed between passes"),
        _s("lookback", "duration", "10m", "re-read window for late commits"),
        _s("reconcile_every", "duration", "1h", "hard-delete reconciliation interval"),
        _s("warn_lag", "duration", "10m", "lag above this is 'lagging'"),
        _s("max_lag", "duration", "1h", "lag above this is 'outage'"),
        _s("batch_size", "int", 20000, "rows per batch (one transaction each)"),
        _s("full_refresh_max_rows", "int", 5_000_000, "size guard for tables without a cursor"),
    ],
    "notify": [
        _s("webhook_url", "str", "", "webhook for state changes (Slack-compatible JSON)"),
        _s("smtp_host", "str", "", "SMTP server for e-mail notifications"),
        _s("smtp_port", "port", 25, "SMTP port"),
        _s("smtp_from", "str", "appliance@localhost", "sender address"),
        _s("smtp_to", "strlist", [], "recipients"),
    ],
    "web": [
        _s("host", "str", "0.0.0.0", "address the status page listens on"),
        _s("port", "port", 8080, "port of the status page"),
        _s("api_token_file", "str", "", "file holding the token for the data API and actions"),
        _s("api_token_env", "str", "", "environment variable holding that token"),
        _s("data_api_open", "bool", False, "serve the data API without a token"),
    ],
    "indicator": [
        _s("red", "pin", 17, "GPIO (BCM) of the red LED"),
        _s("amber", "pin", 27, "GPIO (BCM) of the amber LED"),
        _s("green", "pin", 22, "GPIO (BCM) of the green LED"),
        _s("button", "pin", 26, "GPIO (BCM) of the acknowledge button"),
        _s("oled", "choice", "ssd1306", "OLED controller", ["ssd1306", "sh1106", "none"]),
        _s("i2c_port", "int", 1, "I2C bus of the OLED"),
        _s("i2c_address", "int", 0x3C, "I2C address of the OLED"),
        _s("mock", "bool", False, "use gpiozero's MockFactory and luma's dummy display"),
    ],
}

TABLE_SETTINGS: list[Setting] = [
    _s("name", "str", REQUIRED, "schema.table at the source"),
    _s("cursor", "str", "", "column that grows on every change (omit for full refresh)"),
    _s("primary_key", "strlist", [], "key columns (default: the source's primary key)"),
    _s("soft_delete", "str", "", "timestamp or boolean column marking deleted rows"),
    _s("soft_delete_action", "choice", "keep", "keep or drop soft-deleted rows", ["keep", "drop"]),
    _s("history", "strlist", [], "columns whose every version is kept"),
    _s("where", "str", "", "SQL filter applied at the source"),
    _s("on_drift", "choice", "evolve", "schema drift policy", ["evolve", "freeze", "ignore"]),
    _s("hard_delete_action", "choice", "delete", "what to do with rows deleted at the source",
       ["delete", "tombstone"]),
    _s("exclude_columns", "strlist", [], "columns never fetched"),
    _s("mask_columns", "strlist", [], "columns fetched as a keyed hash"),
    _s("replica_name", "str", "", "table name in the replica"),
    _s("allowed_values", "listmap", {}, "data check: column -> the values it may take"),
    _s("lookup", "strmap", {}, 'data check: column -> "schema.table.column" listing its values'),
    _s("tag", "str", "", "SQLite predicate over the replica's columns marking rows in "
       "_appliance_tag (1/0), e.g. migrated ones: created_at < '2024-01-01'"),
]


def _check(setting: Setting, key: str, value: Any, problems: list[Problem]) -> Any:
    """Return the value converted to the setting's kind, or record a problem."""
    kind = setting.kind
    if kind in ("str", "choice"):
        if not isinstance(value, str):
            problems.append(Problem(key, f"expected a string, got {value!r}", f'write {key} = "..."'))
            return setting.default
        if kind == "choice" and value not in setting.choices:
            problems.append(Problem(key, f'"{value}" is not one of {", ".join(setting.choices)}',
                                    f'use one of: {", ".join(setting.choices)}'))
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
            problems.append(Problem(key, f"expected a whole number, got {value!r}",
                                    f"e.g. {key} = {setting.default}"))
            return setting.default
        lo, hi = {"int": (0, 2**63), "port": (1, 65535), "pin": (0, 27)}[kind]
        if not lo <= value <= hi:
            problems.append(Problem(key, f"{value} is out of range {lo}..{hi}",
                                    f"use a value between {lo} and {hi}"))
            return setting.default
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            problems.append(Problem(key, f"expected true or false, got {value!r}",
                                    f"write {key} = true or false"))
            return setting.default
        return value
    if kind in ("listmap", "strmap"):
        want = list if kind == "listmap" else str
        ok = isinstance(value, dict) and all(
            isinstance(v, want) and (want is str or all(isinstance(x, str) for x in v))
            for v in value.values())
        if not ok:
            example = '{ status = ["new", "paid"] }' if kind == "listmap" else \
                '{ status = "public.order_statuses.code" }'
            problems.append(Problem(key, f"expected a table like {example}, got {value!r}",
                                    f"write {key} = {example}"))
            return {}
        if kind == "strmap":
            for col, ref in value.items():
                if ref.count(".") != 2:
                    problems.append(Problem(f"{key}.{col}", f'"{ref}" is not schema.table.column',
                                            'e.g. "public.order_statuses.code"'))
        return dict(value)
    if kind == "strlist":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(Problem(key, f"expected a list of strings, got {value!r}",
                                    f'write {key} = ["a", "b"]'))
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
            out[s.name] = parse_duration(default) if s.kind == "duration" else (
                type(default)(default) if isinstance(default, (list, dict)) else default)
    return out


# -- the loaded configuration -------------------------------------------------------------


@dataclass(frozen=True)
class SSHSettings:
    host: str
    port: int
    user: str
    key_file: str
    password_env: str
    password_file: str
    known_hosts: str
    keepalive: float
    connect_timeout: float


@dataclass(frozen=True)
class SourceSettings:
    host: str
    port: int
    database: str
    user: str
    password_file: str
    password_env: str
    statement_timeout: float
    connect_timeout: float
    sslmode: str


@dataclass(frozen=True)
class SyncSettings:
    interval: float
    probe_interval: float
    lookback: float
    reconcile_every: float
    warn_lag: float
    max_lag: float
    batch_size: int
    full_refresh_max_rows: int


@dataclass(frozen=True)
class NotifySettings:
    webhook_url: str
    smtp_host: str
    smtp_port: int
    smtp_from: str
    smtp_to: list[str]


@dataclass(frozen=True)
class WebSettings:
    host: str
    port: int
    api_token_file: str
    api_token_env: str
    data_api_open: bool


@dataclass(frozen=True)
class IndicatorSettings:
    red: int
    amber: int
    green: int
    button: int
    oled: str
    i2c_port: int
    i2c_address: int
    mock: bool


@dataclass(frozen=True)
class TableSettings:
    name: str  # schema.table at the source
    cursor: str
    primary_key: list[str]
    soft_delete: str
    soft_delete_action: str
    history: list[str]
    where: str
    on_drift: str
    hard_delete_action: str
    exclude_columns: list[str]
    mask_columns: list[str]
    replica_name: str
    allowed_values: dict[str, list[str]] = field(default_factory=dict)
    lookup: dict[str, str] = field(default_factory=dict)
    tag: str = ""  # SQLite predicate evaluated in the replica (see appliance.extras)

    @property
    def schema(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]


@dataclass(frozen=True)
class Config:
    path: str
    state_dir: str
    ssh: SSHSettings | None
    source: SourceSettings
    replica_url: str
    sync: SyncSettings
    tables: list[TableSettings]
    notify: NotifySettings
    web: WebSettings
    indicator: IndicatorSettings
    environ: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    def table(self, name: str) -> TableSettings:
        """Return the configured table called ``name`` (source or replica name)."""
        for t in self.tables:
            if name in (t.name, t.replica_name, t.table):
                return t
        known = ", ".join(t.name for t in self.tables)
        raise ConfigError([Problem("tables", f'no table "{name}" is configured',
                                   f"use one of: {known}")], self.path)


def _default_replica_name(name: str) -> str:
    schema, table = name.split(".", 1)
    return table if schema == "public" else f"{schema}__{table}"


def _tables(raw: Any, problems: list[Problem]) -> list[TableSettings]:
    if raw is None or raw == []:
        problems.append(Problem("tables", "no table is configured",
                                'add at least one [[tables]] block with name = "schema.table"'))
        return []
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        problems.append(Problem("tables", "must be [[tables]] blocks", "see image/appliance.example.toml"))
        return []
    tables, seen = [], {}
    for i, block in enumerate(raw):
        prefix = f"tables[{i}]"
        values = _section(block, prefix, TABLE_SETTINGS, problems)
        name = values["name"]
        if name and "." not in name:
            name = f"public.{name}"  # PostgreSQL's own default schema
        if name and name.count(".") != 1:
            problems.append(Problem(f"{prefix}.name", f'"{values["name"]}" is not schema.table',
                                    'write name = "public.orders"'))
            continue
        if not name:
            continue
        values["name"] = name
        values["replica_name"] = values["replica_name"] or _default_replica_name(name)
        rn = values["replica_name"]
        if rn.startswith("_appliance") or not _IDENT.match(rn):
            problems.append(Problem(f"{prefix}.replica_name", f'"{rn}" cannot be a replica table name',
                                    "use letters, digits and _ not starting with _appliance"))
        if rn in seen:
            problems.append(Problem(f"{prefix}.replica_name",
                                    f'"{rn}" is also used by tables[{seen[rn]}]',
                                    "give one of them a different replica_name"))
        seen[rn] = i
        overlap = set(values["exclude_columns"]) & set(values["primary_key"])
        if overlap:
            problems.append(Problem(f"{prefix}.exclude_columns",
                                    f"excludes key column(s) {', '.join(sorted(overlap))}",
                                    "a key column must be fetched; remove it from exclude_columns"))
        if values["cursor"] and values["cursor"] in values["exclude_columns"]:
            problems.append(Problem(f"{prefix}.exclude_columns", "excludes the cursor column",
                                    "remove the cursor column from exclude_columns"))
        tables.append(TableSettings(**values))
    return tables


def _secret_choice(prefix: str, values: dict, problems: list[Problem], needed: bool) -> None:
    """Check that at most one of password_file / password_env is set."""
    if values.get("password_file") and values.get("password_env"):
        problems.append(Problem(f"{prefix}.password_file", "password_file and password_env are both set",
                                "keep one of them"))
    if needed and not (values.get("password_file") or values.get("password_env")
                       or values.get("key_file")):
        problems.append(Problem(f"{prefix}.key_file", "no way to log in is configured",
                                "set key_file (recommended) or password_file / password_env"))


def parse(data: dict, path: str = "", environ: dict[str, str] | None = None) -> Config:
    """Return the Config for already-parsed TOML ``data``; raise ConfigError listing every problem."""
    problems: list[Problem] = []
    known = set(SECTIONS) | {"tables"}
    for extra in sorted(set(data) - known):
        problems.append(Problem(extra, "unknown section", f"known sections: {', '.join(sorted(known))}"))
    for name in SECTIONS:
        if name in data and not isinstance(data[name], dict):
            problems.append(Problem(name, "must be a [section]", f"write [{name}] on its own line"))
            data = {**data, name: {}}

    sec = {name: _section(data.get(name, {}), name, settings, problems)
           for name, settings in SECTIONS.items() if name != "ssh"}
    ssh = None
    if "ssh" in data:
        ssh_values = _section(data["ssh"], "ssh", SECTIONS["ssh"], problems)
        _secret_choice("ssh", ssh_values, problems, needed=True)
        ssh = SSHSettings(**ssh_values)
    if "source" not in data:
        problems.append(Problem("source", "the [source] section is missing",
                                "add [source] with host, database and user"))
    _secret_choice("source", sec["source"], problems, needed=False)
    tables = _tables(data.get("tables"), problems)

    sync = sec["sync"]
    if sync["warn_lag"] >= sync["max_lag"]:
        problems.append(Problem("sync.warn_lag", "must be shorter than sync.max_lag",
                                "e.g. warn_lag = \"10m\", max_lag = \"1h\""))
    if sync["interval"] <= 0:
        problems.append(Problem("sync.interval", "must be longer than 0", 'e.g. interval = "30s"'))
    if sync["batch_size"] < 1:
        problems.append(Problem("sync.batch_size", "must be at least 1", "e.g. batch_size = 20000"))

    state_dir = sec["appliance"]["state_dir"]
    replica_url = sec["replica"]["url"] or f"sqlite:///{Path(state_dir) / 'replica.sqlite'}"
    if "://" not in replica_url:
        problems.append(Problem("replica.url", f'"{replica_url}" is not a SQLAlchemy URL',
                                'e.g. url = "sqlite:////var/lib/appliance/replica.sqlite"'))
    if problems:
        raise ConfigError(problems, path)
    return Config(
        path=path,
        state_dir=state_dir,
        ssh=ssh,
        source=SourceSettings(**sec["source"]),
        replica_url=replica_url,
        sync=SyncSettings(**sync),
        tables=tables,
        notify=NotifySettings(**sec["notify"]),
        web=WebSettings(**sec["web"]),
        indicator=IndicatorSettings(**sec["indicator"]),
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
        raise ConfigError([Problem("file", f"{path} does not exist",
                                   "create it from image/appliance.example.toml or pass --config")],
                          path) from None
    except OSError as e:
        raise ConfigError([Problem("file", f"cannot read {path}: {e.strerror}",
                                   "check the file's permissions")], path) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([Problem("file", "is not UTF-8 text", "save the file as UTF-8")],
                          path) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([Problem("file", f"is not valid TOML: {e}",
                                   "fix the syntax at the line and column shown")], path) from None
    return parse(data, path, environ)

