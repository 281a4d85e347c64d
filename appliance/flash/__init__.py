"""The SD card flasher (`appliance flash`, `scripts/flash-sd`): list disks, refuse unsafe ones,
write, verify and eject.

Runs on a stock Mac's Python 3.9: standard library plus ``requirements.txt`` (what
scripts/flash-sd installs). It imports nothing of the appliance but ``errors`` and ``image``
(which bakes the config into the card), and never the Pi-side parts.
"""
