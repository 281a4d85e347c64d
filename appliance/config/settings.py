"""The settings table and the shape of a loaded config.

The keys are a contract (BRIEF section 3): scripts and other tools write them. Every
setting is declared once, in the tables below, with its type, default and help;
``config.load`` checks a file against them. Secrets are never read here: only the paths
or variable names that hold them (see ``appliance.secrets``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError


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
        _s(
            "keepalive",
            "duration",
            "10s",
            "SSH keepalive: after half of it without a byte from the bastion it is asked to "
            "answer; after all of it the link counts as stalled and is reopened",
        ),
        _s("connect_timeout", "duration", "10s", "how long to wait for the bastion"),
        _s("compression", "bool", True, "ask the bastion for zlib compression (plain if it declines)"),
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
        _s(
            "sslmode",
            "choice",
            "prefer",
            "libpq sslmode",
            ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
        ),
    ],
    "replica": [
        _s("url", "str", "", "SQLAlchemy URL of the local replica (default: state_dir/replica.sqlite)"),
        _s("min_free_mb", "int", 200, "stop writing when less than this is free (or min_free_percent)"),
        _s("min_free_percent", "int", 5, "stop writing when less than this share of the disk is free"),
    ],
    "sync": [
        _s("interval", "duration", "30s", "time between sync passes"),
        _s("probe_interval", "duration", "5s", "how often the link is probed between passes"),
        _s("lookback", "duration", "10m", "re-read window for late commits"),
        _s("reconcile_every", "duration", "1h", "hard-delete reconciliation interval"),
        _s(
            "verify_every",
            "duration",
            "1d",
            "how often a reconciliation compares whole rows (finds rows changed without their "
            "cursor); in between it compares keys only",
        ),
        _s("warn_lag", "duration", "10m", "lag above this is 'lagging'"),
        _s("max_lag", "duration", "1h", "lag above this is 'outage'"),
        _s(
            "batch_size",
            "int",
            20000,
            "rows per batch (one transaction each; a page is bounded by bytes too); 1..200,000",
        ),
        _s("full_refresh_max_rows", "int", 5_000_000, "size guard for tables without a cursor"),
    ],
    "retention": [
        _s("events", "duration", "365d", "how long the event log keeps an event (at most 10,000 anyway)"),
        _s("runs", "duration", "30d", "how long a sync pass's record is kept"),
        _s("outbox", "duration", "30d", "how long a sent or given-up notification is kept"),
        _s(
            "history",
            "duration",
            "365d",
            "how long a superseded version of a history column is kept (the current one stays)",
        ),
        _s(
            "history_rows",
            "int",
            250_000,
            "at most this many versions per table's history, the oldest go first "
            "(1,000..100,000,000; about 100 bytes each)",
        ),
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
        _s(
            "api_token_file",
            "str",
            "",
            "file holding the token for the data API and actions "
            "(unset: api.token beside this config file, when it exists)",
        ),
        _s("api_token_env", "str", "", "environment variable holding that token"),
        _s("data_api_open", "bool", False, "serve the data API without a token"),
        _s(
            "actions_open",
            "bool",
            False,
            "let anyone on the LAN acknowledge without a token (accepting a breaking change never)",
        ),
        _s(
            "allowed_hosts",
            "strlist",
            [],
            "host names the page answers to (default: this host, NAME.local, its addresses, localhost)",
        ),
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
        _s("dim_after", "duration", "10m", 'dim the OLED when no press or new state for this ("0s": never)'),
        _s("blank_after", "duration", "1h", 'OLED off after this long while all is well ("0s": never)'),
        _s("shift_every", "duration", "3m", 'move the OLED picture a pixel this often ("0s": never)'),
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
    _s(
        "hard_delete_action",
        "choice",
        "delete",
        "what to do with rows deleted at the source",
        ["delete", "tombstone"],
    ),
    _s("exclude_columns", "strlist", [], "columns never fetched"),
    _s("mask_columns", "strlist", [], "columns fetched as a keyed hash"),
    _s("replica_name", "str", "", "table name in the replica"),
    _s("allowed_values", "listmap", {}, "data check: column -> the values it may take"),
    _s("lookup", "strmap", {}, 'data check: column -> "schema.table.column" listing its values'),
    _s(
        "tag",
        "str",
        "",
        "SQLite predicate over the replica's columns marking rows in "
        "_appliance_tag (1/0), e.g. migrated ones: created_at < '2024-01-01'",
    ),
]


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
    compression: bool = True


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
    verify_every: float
    warn_lag: float
    max_lag: float
    batch_size: int
    full_refresh_max_rows: int


@dataclass(frozen=True)
class RetentionSettings:
    events: float = 365 * 86400.0
    runs: float = 30 * 86400.0
    outbox: float = 30 * 86400.0
    history: float = 365 * 86400.0
    history_rows: int = 250_000


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
    actions_open: bool = False
    allowed_hosts: list[str] = field(default_factory=list)


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
    dim_after: float = 600.0
    blank_after: float = 3600.0
    shift_every: float = 180.0


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
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    replica_min_free: tuple[int, int] = (200, 5)  # MB, percent: the smaller margin applies
    maintenance: list[dict] = field(default_factory=list)  # checked [[maintenance]] blocks
    announcements: list[dict] = field(default_factory=list)  # checked [[announcements]]
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
        raise ConfigError(
            [Problem("tables", f'no table "{name}" is configured', f"use one of: {known}")], self.path
        )
