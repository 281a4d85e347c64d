"""The appliance's configuration: the settings table, loading with every problem at once,
and the checks on secrets. Imports nothing of the appliance but ``errors``, ``clock`` and
``secrets``; everything else reads its settings from here and never the file itself.
"""

from .load import CONFIG_ENV, DEFAULT_CONFIG_PATH, config_path, load, parse
from .settings import (
    Config,
    IndicatorSettings,
    NotifySettings,
    Problem,
    SourceSettings,
    SSHSettings,
    SyncSettings,
    TableSettings,
    WebSettings,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "Config",
    "IndicatorSettings",
    "NotifySettings",
    "Problem",
    "SSHSettings",
    "SourceSettings",
    "SyncSettings",
    "TableSettings",
    "WebSettings",
    "config_path",
    "load",
    "parse",
]
