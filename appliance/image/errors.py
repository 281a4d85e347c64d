"""Errors of image customization; each message says what happened and what to do."""

from __future__ import annotations

from ..errors import ApplianceError


class ImageError(ApplianceError, ValueError):
    """The image or card could not be customized."""


class PartitionError(ImageError):
    """No FAT boot partition was found in the partition table."""


class FatError(ImageError):
    """The FAT boot partition is damaged or full."""


class OptionError(ImageError):
    """A customization option is missing or invalid."""


class SecretFileError(ImageError, PermissionError):
    """A secret file named on the command line could not be read."""


class ImageConfigError(ImageError):
    """The appliance config to bake into the card is invalid."""


class VerifyError(ImageError):
    """A file written to the boot partition did not read back the same."""


class IncompleteCardError(ImageError):
    """The card would not boot into a working appliance: pieces are missing."""


class BundleError(ImageError):
    """The offline bundle (--bundle) cannot go on the card: wheels missing, or no room."""
