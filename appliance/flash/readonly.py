"""Read-only cards: the lock switch, read-only volumes, and macOS refusing the raw device.

The blog fix that worked was sharing the card in System Preferences > Sharing; `sharing -a`
does the same from the command line, and --fix-readonly does it (and undoes it) for the user.
"""

from __future__ import annotations

import errno
import os

from appliance.flash.drive import Drive
from appliance.flash.errors import FlashError, WriteError, WriteRefusedError

REFUSED = (errno.EPERM, errno.EACCES, errno.EROFS)


def mac_volumes(drive: Drive) -> list[str]:
    """Return the card's mounted volumes under /Volumes (what can be shared)."""
    return [m for m in drive.mountpoints if m.startswith("/Volumes/")]


def share_argv(volume: str) -> list[str]:
    """Return the command that shares a volume as a File Sharing folder (runs as root)."""
    return ["sharing", "-a", volume]


def unshare_argv(volume: str) -> list[str]:
    """Return the command that removes that share again (a share is named after its folder)."""
    return ["sharing", "-r", os.path.basename(volume.rstrip("/"))]


def readonly_volume_note(drive: Drive) -> str:
    """Return the note for a writable card whose volume is mounted read-only."""
    return (
        f"A volume of {drive.id} is mounted read-only, but the card itself is writable: the "
        "whole disk is unmounted first, and writing the raw device does not need the volume."
    )


def mac_refused_message(drive: Drive, err: OSError) -> str:
    """Return the exact steps for a card macOS will not open for writing."""
    volumes = mac_volumes(drive)
    volume = volumes[0] if volumes else "/Volumes/<the card's name>"
    name = os.path.basename(volume)
    return (
        f"macOS refused to open {drive.raw_path} for writing ({err.strerror}), although the "
        "card's lock switch is off. This is the 'Read-only file system' problem. Fixes, in order:\n"
        "  1. Let your terminal use removable volumes: System Settings > Privacy & Security > "
        "Files and Folders > your terminal app > turn on 'Removable Volumes' (or add the "
        "terminal under Privacy & Security > Full Disk Access). Quit and reopen the terminal, "
        "then run this again.\n"
        "  2. Share the card as a File Sharing folder (this made macOS let go of the card): "
        "System Settings > General > Sharing > File Sharing (i) > '+' > choose "
        f"'{name}' > Done (System Preferences > Sharing on macOS 12 and older). From the "
        f'command line: sudo sharing -a "{volume}". Run this again, then remove the share '
        f'(sudo sharing -r "{name}").\n'
        "     Or run this command again with --fix-readonly: it shares the card, writes it and "
        "removes the share afterwards.\n"
        "  3. If nothing helps, the card's lock switch may be loose or the reader faulty: use a "
        "USB card reader."
    )


def open_error(drive: Drive, err: OSError, platform: str) -> FlashError:
    """Return the error to show when the target could not be opened for writing."""
    if platform == "darwin" and err.errno in REFUSED and not drive.is_file:
        return WriteRefusedError(mac_refused_message(drive, err))
    if err.errno == errno.EROFS or (err.errno == errno.EACCES and not drive.is_file):
        return WriteRefusedError(
            f"{drive.raw_path} is read-only ({err.strerror}): slide the card's lock switch up "
            "(towards the contacts), re-insert the card and run again."
        )
    if err.errno == errno.EBUSY:
        return WriteError(
            f"{drive.raw_path} is in use ({err.strerror}): a partition is still mounted or a "
            "program has it open. Close file managers and anything using the card, then retry."
        )
    if err.errno == errno.ENOENT:
        return WriteError(f"{drive.raw_path} is gone: was the card removed? Insert it and retry.")
    return WriteError(f"Could not open {drive.raw_path} for writing: {err.strerror or err}.")
