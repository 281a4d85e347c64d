"""The Trixie-style first boot: cloud-init's NoCloud seed files on the boot partition.

Field names follow Raspberry Pi Imager's generated files: ``user-data`` (``#cloud-config``),
``network-config`` (netplan version 2), ``meta-data`` with an ``instance-id``, and
`` ds=nocloud;i=<id>`` on the kernel command line. Only keys that cloud-init 22.4 and later
know are used, so older schemas validate the whole file.
"""

from __future__ import annotations

import uuid
from typing import Any

from . import yamltext
from .settings import Settings

BOOT_DIR = "/boot/firmware"  # where Trixie mounts the boot partition
MARK = "# Written by `appliance image customize`"  # tells our seed files from the image's
HEADER = (
    "#cloud-config\n"
    f"{MARK}: login, hostname, SSH, and the appliance's\n"
    "# first boot (appliance/firstboot.sh moves its payload off this partition).\n"
)


def new_instance_id() -> str:
    """Return a fresh instance id: cloud-init runs the seed again only for a new one."""
    return "appliance-" + uuid.uuid4().hex[:16]


def user_data(s: Settings) -> bytes:
    """Return ``user-data``: the login, hostname, SSH and the appliance's first boot."""
    doc: dict[str, Any] = {"manage_resolv_conf": False}
    if s.hostname:
        doc["hostname"] = s.hostname
        doc["manage_etc_hosts"] = True
    if s.timezone:
        doc["timezone"] = s.timezone
    # First the payload: its secrets leave the world-readable boot partition before sshd
    # lets anyone in.
    runcmd = [["sh", f"{BOOT_DIR}/appliance/firstboot.sh", "--start"]]
    if s.user:
        doc["user"] = _user(s)
        doc["ssh_pwauth"] = not s.ssh_keys
        # cloud-init writes keys but does not start sshd, which Raspberry Pi OS ships off.
        runcmd.append(["systemctl", "enable", "--now", "ssh"])
    doc["runcmd"] = runcmd
    return (HEADER + yamltext.dump(doc)).encode("utf-8")


def _user(s: Settings) -> dict[str, Any]:
    # ``user`` (not ``users``) renames the image's default user and keeps its groups.
    user: dict[str, Any] = {"name": s.user, "shell": "/bin/bash"}
    if s.password_hash:
        user["lock_passwd"] = False
        user["passwd"] = s.password_hash
        # The distro's default user has password-less sudo; with a password, ask for it.
        user["sudo"] = None
    else:
        user["lock_passwd"] = True  # key-only login; sudo stays password-less
    if s.ssh_keys:
        user["ssh_authorized_keys"] = list(s.ssh_keys)
    return user


def network_config(s: Settings) -> bytes:
    """Return ``network-config`` (netplan v2): wired DHCP plus the Wi-Fi network, if any."""
    assert s.wifi is not None
    point: dict[str, Any] = {"password": s.wifi.psk} if s.wifi.psk else {"auth": {"key-management": "none"}}
    doc = {
        "network": {
            "version": 2,
            # Keep the wired port working: this file replaces the image's default network setup.
            "ethernets": {"eth0": {"dhcp4": True, "optional": True}},
            "wifis": {
                "wlan0": {
                    "dhcp4": True,
                    "optional": True,
                    "regulatory-domain": s.wifi.country,
                    "access-points": {s.wifi.ssid: point},
                }
            },
        }
    }
    return (f"{MARK}.\n" + yamltext.dump(doc)).encode("utf-8")


def meta_data(instance_id: str) -> bytes:
    """Return ``meta-data`` naming this customization's instance."""
    return (f"{MARK}.\n" + yamltext.dump({"instance-id": instance_id})).encode("utf-8")


def cmdline_words(instance_id: str, country: str) -> list[str]:
    """Return the words to append to cmdline.txt."""
    words = [f"ds=nocloud;i={instance_id}"]
    if country:
        words.append(f"cfg80211.ieee80211_regdom={country}")
    return words
