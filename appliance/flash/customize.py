"""The hook that bakes an appliance config into the card after write and verify.

The customization itself lives in `appliance.image` (another module); the flasher only calls
`customize_target(target_path, config_file, fd=..., image_size=...)` on the written target,
so decompress-while-writing stays intact.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from appliance.flash.errors import CustomizeUnavailableError


def load_hook() -> Callable:
    """Return appliance.image.customize_target, or raise when it is not there yet."""
    try:
        module = importlib.import_module("appliance.image")
    except ImportError as exc:
        raise CustomizeUnavailableError(
            "Baking a config into the card (--config) is not available yet "
            f"(appliance.image could not be loaded: {exc}). Flash without --config for now."
        ) from None
    hook = getattr(module, "customize_target", None)
    if not callable(hook):
        raise CustomizeUnavailableError(
            "Baking a config into the card (--config) is not available yet "
            "(appliance.image has no customize_target). Flash without --config for now."
        )
    return hook


def run_hook(hook: Callable, target_path: str, config_file: str, fd: int, image_size: int):
    """Call the hook on the written target through the flasher's open descriptor."""
    return hook(target_path, config_file, fd=fd)
