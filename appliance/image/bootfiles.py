"""Edit the firmware's text files: ``cmdline.txt`` (one line) and ``config.txt``."""

from __future__ import annotations

from collections.abc import Iterable

# Words earlier customizations may have added; removed before adding this run's, so that
# customizing twice leaves one copy (and switching formats leaves none of the other's).
OWN_WORDS = (
    "systemd.run=",
    "systemd.run_success_action=",
    "systemd.unit=kernel-command-line.target",
    "ds=nocloud",
    "cfg80211.ieee80211_regdom=",
)
I2C_LINE = "dtparam=i2c_arm=on"


def _ending(text: str) -> str:
    return "\r\n" if text.endswith("\r\n") else "\n" if text.endswith("\n") else ""


def edit_cmdline(data: bytes, add: Iterable[str]) -> tuple[bytes, list[str]]:
    """Return cmdline.txt with ``add`` appended to its single line, and any warnings."""
    text = data.decode("utf-8", "surrogateescape")
    lines = [line for line in text.splitlines() if line.strip()]
    warnings = []
    if len(lines) > 1:  # the firmware reads only the first line; the rest never counted
        warnings.append(
            f"cmdline.txt had {len(lines)} lines; only the first is used by the Pi, the others were dropped"
        )
    words = lines[0].split() if lines else []
    words = [w for w in words if not w.startswith(OWN_WORDS)] + list(add)
    return (" ".join(words) + (_ending(text) or "\n")).encode("utf-8", "surrogateescape"), warnings


def enable_i2c(data: bytes) -> bytes:
    """Return config.txt with the I2C bus switched on (``dtparam=i2c_arm=on``)."""
    text = data.decode("utf-8", "surrogateescape")
    eol = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines()
    section = "[all]"
    for i, line in enumerate(lines):
        bare = line.strip().replace(" ", "")
        if bare.startswith("["):
            section = bare.lower()
        if section != "[all]":
            continue  # a line under [pi4] and the like counts for some boards only
        if bare == I2C_LINE:
            return data
        if bare in ("#" + I2C_LINE, "dtparam=i2c_arm=off"):
            lines[i] = I2C_LINE  # Raspberry Pi OS ships the line commented out, in [all]
            return (eol.join(lines) + eol).encode("utf-8", "surrogateescape")
    # A trailing line would fall under the file's last [section] filter: reopen [all] first.
    lines += ["", "[all]", I2C_LINE]
    return (eol.join(lines) + eol).encode("utf-8", "surrogateescape")
