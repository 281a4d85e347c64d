"""The SD card flasher (`appliance flash`, `scripts/flash-sd`).

Runs on a stock Mac's Python 3.9: standard library plus click (and tqdm when present); it must
not import the Pi-side parts of the appliance.
"""
