"""Baking an appliance config into the card: checked before writing, applied after verify.

The customization itself lives in ``appliance.image``. ``check`` runs before the first
byte is written (config, secrets, keys, login: an incomplete card is refused then, not
after a ten-minute write); ``apply`` edits the written card through the flasher's open
descriptor, so decompress-while-writing stays intact.
"""

from __future__ import annotations

from typing import Any

from appliance.flash.errors import CustomizeError, CustomizeUnavailableError


def _image() -> Any:
    """Return ``appliance.image``; a clear error when it cannot be loaded."""
    try:
        import appliance.image as image
    except ImportError as exc:  # a broken install: say which module is missing
        raise CustomizeUnavailableError(
            f"Baking a config into the card (--config) needs appliance.image, which could not "
            f"be loaded ({exc}). Run scripts/flash-sd (it installs what is needed) "
            f"or flash without --config."
        ) from None
    return image


def check(config_file: str, options: Any) -> Any:
    """Return the checked card plan (``appliance.image.CardPlan``) or refuse before writing."""
    image = _image()
    try:
        return image.check_card(config_file, options)
    except image.errors.ImageError as exc:
        raise CustomizeError(f"Not written: {exc}") from None


def apply(plan: Any, target_path: str, fd: int) -> Any:
    """Customize the written target through the flasher's descriptor; return the report."""
    image = _image()
    try:
        return image.customize_target(target_path, plan.config_file, fd=fd, plan=plan)
    except image.errors.ImageError as exc:
        raise CustomizeError(
            f"The image is written, but baking {plan.config_file} into the card failed: {exc}"
        ) from None
