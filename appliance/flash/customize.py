"""The hook that bakes an appliance config into the card after write and verify.

The customization itself lives in ``appliance.image``; the flasher only calls
``customize_target(target_path, config_file, fd=...)`` on the written target through its
open descriptor, so decompress-while-writing stays intact.
"""

from __future__ import annotations

from collections.abc import Callable

from appliance.flash.errors import CustomizeUnavailableError


def load_hook() -> Callable:
    """Return ``appliance.image.customize_target``; a clear error when it cannot be loaded."""
    try:
        from appliance.image import customize_target
    except ImportError as exc:  # a broken install: say which module is missing
        raise CustomizeUnavailableError(
            f"Baking a config into the card (--config) needs appliance.image, which could not "
            f"be loaded ({exc}). Reinstall the appliance package "
            f"or flash without --config."
        ) from None
    return customize_target


def run_hook(hook: Callable, target_path: str, config_file: str, fd: int):
    """Call the hook on the written target through the flasher's open descriptor."""
    return hook(target_path, config_file, fd=fd)
