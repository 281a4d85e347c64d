"""Baking an appliance config into the card: checked before writing, applied after verify.

The customization itself lives in ``appliance.image``. ``check`` runs before the first
byte is written (config, secrets, keys, login: an incomplete card is refused then, not
after a ten-minute write); ``apply`` edits the written card through the flasher's open
descriptor, so decompress-while-writing stays intact.
"""

from __future__ import annotations

import os
from typing import Any

from appliance.flash.errors import CustomizeError, CustomizeUnavailableError
from appliance.flash.source import DATA_ERRORS


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


def check(config_file: str, options: Any, source: Any = None) -> Any:
    """Return the checked card plan (``appliance.image.CardPlan``) or refuse before writing.

    ``source``: the image to be written (``source.Image``). With --bundle its boot partition
    is read first (decompressing only its first MB), so the wheels are checked against the
    Pi OS the image is, and against the room on it, before the card is touched.
    """
    image = _image()
    try:
        boot = None
        if getattr(options, "bundle_dir", "") and source is not None and os.path.exists(source.path):
            try:
                boot = image.peek_stream(source.open)
            except DATA_ERRORS:  # a damaged image: the write refuses it, in its own words
                boot = None
        return image.check_card(config_file, options, boot)
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
