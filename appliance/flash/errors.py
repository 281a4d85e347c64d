"""Errors of the SD card flasher; each message says what happened, why, and what to do."""

from __future__ import annotations

from appliance.errors import ApplianceError


class FlashError(ApplianceError):
    """The SD card could not be flashed."""


class UnsupportedPlatformError(FlashError, OSError):
    """Flashing works on macOS and Linux only: run it on a Mac or a Linux machine."""


class ImageError(FlashError, ValueError):
    """The image cannot be used: it is missing, damaged, incomplete or of an unknown kind."""


class ChecksumError(FlashError, ValueError):
    """The image does not match its published SHA-256: it was damaged in transit."""


class DownloadError(FlashError, ConnectionError):
    """The image or the image list could not be downloaded: check the network and try again."""


class CommandError(FlashError, OSError):
    """A system command failed."""


class DriveListError(FlashError, OSError):
    """The disks of this machine could not be listed."""


class NoTargetError(FlashError, LookupError):
    """No SD card found: insert the card (or its USB reader) and run again."""


class UnsafeTargetError(FlashError, PermissionError):
    """The chosen disk may not be written."""


class LockedCardError(UnsafeTargetError):
    """The card is locked: slide the lock switch on its side up, re-insert it and run again."""


class WriteRefusedError(FlashError, PermissionError):
    """The system refused to open the card for writing."""


class WriteError(FlashError, OSError):
    """Writing the card failed: the card or reader may be faulty; retry or use another card."""


class VerifyError(FlashError, ValueError):
    """The card does not read back as written: try again; if it fails again, use another card."""


class FlashInterrupted(FlashError):
    """Flashing was interrupted: the card is incomplete and will not boot; run the command again."""


class CustomizeUnavailableError(FlashError, ImportError):
    """Baking a config into the card (--config) needs appliance.image: reinstall the package."""


class CustomizeError(FlashError, ValueError):
    """The appliance config could not be baked into the card."""
