"""Wi-Fi settings: the WPA pre-shared key as PBKDF2 hex, the SSID and the country code."""

from __future__ import annotations

import hashlib
import re

from .errors import OptionError

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def wifi_psk(ssid: str, passphrase: str) -> str:
    """Return the WPA PSK: PBKDF2-HMAC-SHA1(passphrase, ssid, 4096 rounds, 32 bytes) in hex."""
    if _HEX64.match(passphrase):
        return passphrase.lower()  # already a PSK, as wpa_passphrase prints it
    if not 8 <= len(passphrase) <= 63:
        raise OptionError(
            f"the Wi-Fi passphrase has {len(passphrase)} characters; WPA needs "
            "8 to 63 (or the 64 hex digits of a PSK)"
        )
    key = hashlib.pbkdf2_hmac("sha1", passphrase.encode("utf-8"), ssid.encode("utf-8"), 4096, 32)
    return key.hex()


def check_ssid(ssid: str) -> str:
    """Return the SSID if Wi-Fi accepts it (1 to 32 bytes)."""
    size = len(ssid.encode("utf-8"))
    if not 1 <= size <= 32:
        raise OptionError(f"the Wi-Fi SSID is {size} bytes long; it must be 1 to 32 bytes")
    if any(c in ssid for c in "\0\n\r"):
        raise OptionError("the Wi-Fi SSID holds a line break or NUL; check --wifi-ssid")
    return ssid


def check_country(code: str) -> str:
    """Return the ISO 3166 country code, upper-cased (Wi-Fi stays blocked without one)."""
    upper = (code or "").strip().upper()
    if not _COUNTRY.match(upper):
        raise OptionError(
            f'"{code}" is not a two-letter country code; use e.g. --wifi-country GB '
            "(the Pi keeps Wi-Fi off until the country is set)"
        )
    return upper
