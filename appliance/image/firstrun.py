"""The Bookworm-style first boot: ``firstrun.sh`` started from the kernel command line.

``firstrun.sh`` itself is the static template ``image/firstrun.sh``; this run's settings go
next to it in ``appliance/firstrun.env`` (shell assignments), which the script reads and
then wipes.
"""

from __future__ import annotations

from .settings import Settings

CMDLINE_WORDS = [
    "systemd.run=/boot/firstrun.sh",
    "systemd.run_success_action=reboot",
    "systemd.unit=kernel-command-line.target",
]


def shell_quote(value: str) -> str:
    """Return ``value`` as one single-quoted POSIX shell word."""
    return "'" + value.replace("'", "'\\''") + "'"


def settings_env(s: Settings) -> bytes:
    """Return ``firstrun.env``: the settings as shell variable assignments."""
    values = {
        "APPLIANCE_USER": s.user,
        "APPLIANCE_PASSWORD_HASH": s.password_hash,
        "APPLIANCE_SSH_KEYS": "\n".join(s.ssh_keys),
        "APPLIANCE_HOSTNAME": s.hostname,
        "APPLIANCE_WIFI_SSID": s.wifi.ssid if s.wifi else "",
        "APPLIANCE_WIFI_PSK": s.wifi.psk if s.wifi else "",
        "APPLIANCE_WIFI_COUNTRY": s.country,
        "APPLIANCE_TIMEZONE": s.timezone,
    }
    lines = ["# Settings for firstrun.sh from `appliance image customize`; wiped at first boot."]
    lines += [f"{name}={shell_quote(value)}" for name, value in values.items()]
    return ("\n".join(lines) + "\n").encode("utf-8")


def cmdline_words(country: str) -> list[str]:
    """Return the words to append to cmdline.txt."""
    words = list(CMDLINE_WORDS)
    if country:
        words.insert(0, f"cfg80211.ieee80211_regdom={country}")  # before systemd.run: it stays
    return words
