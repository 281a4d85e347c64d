"""Check the SSH files the card carries before anything is written: they must parse.

A tunnel key protected by a passphrase, a cut-off key file, or a known_hosts that pins no
key for the bastion would all pass the write and fail on the Pi, hours later, with nobody
logged in to see why. Standard library only (the flasher runs on a stock Mac's 3.9).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import re
import struct

from .errors import OptionError

_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)
_UNLOCK = "make an unencrypted copy for the appliance: cp KEY COPY && ssh-keygen -p -N '' -f COPY"


def _string(blob: bytes, at: int) -> tuple[bytes, int]:
    """Return the SSH wire-format string at ``at`` and the offset after it."""
    (size,) = struct.unpack(">I", blob[at : at + 4])
    if at + 4 + size > len(blob):
        raise ValueError("truncated")
    return blob[at + 4 : at + 4 + size], at + 4 + size


def check_private_key(data: bytes, path: str, option: str) -> None:
    """Refuse a file that is not a whole, unencrypted private key."""
    found = _BLOCK.search(data)
    if not data.lstrip().startswith(b"-----BEGIN") or "PUBLIC" in (found.group(1).decode() if found else ""):
        raise OptionError(
            f"{option} {path} is not a private key file (it should start with "
            '"-----BEGIN OPENSSH PRIVATE KEY-----"; the .pub goes to the bastion)'
        )
    if found is None:
        raise OptionError(f"{option} {path} has no END line: the key file is cut off; copy it again")
    kind, body = found.group(1).decode(), found.group(2)
    if kind == "ENCRYPTED PRIVATE KEY" or b"ENCRYPTED" in body.split(b"\n\n")[0]:
        raise OptionError(
            f"{option} {path} is protected by a passphrase, which the Pi cannot type; {_UNLOCK}"
        )
    if kind != "OPENSSH PRIVATE KEY":
        return  # PEM (RSA, EC, PKCS#8): its structure is paramiko's to read
    try:
        blob = base64.b64decode(b"".join(body.split()), validate=True)
        if not blob.startswith(b"openssh-key-v1\0"):
            raise ValueError("no openssh-key-v1 header")
        cipher, _ = _string(blob, len(b"openssh-key-v1\0"))
    except (ValueError, binascii.Error, struct.error):
        raise OptionError(
            f"{option} {path} is damaged (its key data does not decode); copy it again"
        ) from None
    if cipher != b"none":
        raise OptionError(
            f"{option} {path} is protected by a passphrase, which the Pi cannot type; {_UNLOCK}"
        )


def _key_blob_ok(kind: str, b64: str) -> bool:
    """Return True when ``b64`` decodes to an SSH public key of type ``kind``."""
    try:
        blob = base64.b64decode(b64, validate=True)
        name, _ = _string(blob, 0)
    except (ValueError, binascii.Error, struct.error):
        return False
    return name.decode("ascii", "replace") == kind


def check_public_keys(keys: list[str], path: str, option: str) -> None:
    """Refuse public key lines whose key data does not decode."""
    for number, line in enumerate(keys, 1):
        fields = line.split()
        if len(fields) < 2 or not _key_blob_ok(fields[0], fields[1]):
            raise OptionError(
                f"{option} {path}: key {number} is damaged (its data does not decode); copy it again"
            )


def _names_host(patterns: str, host: str, port: int) -> bool:
    """Return True when a known_hosts host field names ``host`` (plain, [host]:port or hashed)."""
    wanted = host if port == 22 else f"[{host}]:{port}"
    if patterns.startswith("|1|"):
        try:
            salt, digest = (base64.b64decode(p) for p in patterns[3:].split("|", 1))
        except (ValueError, binascii.Error):
            return False
        return hmac.compare_digest(hmac.new(salt, wanted.encode(), hashlib.sha1).digest(), digest)
    names = [p.lower() for p in patterns.split(",") if not p.startswith("!")]
    # OpenSSH patterns know only * and ?: a "[" is literal (as in [host]:2222), not a class.
    return any(fnmatch.fnmatchcase(wanted.lower(), p.replace("[", "[[]")) for p in names)


def check_known_hosts(data: bytes, path: str, option: str, host: str, port: int = 22) -> None:
    """Refuse a known_hosts file with a damaged line or no key for the bastion."""
    pins = False
    text = data.decode("utf-8", "replace")
    for number, raw in enumerate(text.splitlines(), 1):
        fields = raw.split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0].startswith("@"):
            fields = fields[1:]  # @cert-authority / @revoked
        if len(fields) < 3 or not _key_blob_ok(fields[1], fields[2]):
            raise OptionError(
                f'{option} {path}: line {number} is not "HOST KEYTYPE KEY"; '
                f"make it again with ssh-keyscan -p {port} {host or 'BASTION'}"
            )
        pins = pins or _names_host(fields[0], host, port)
    if host and not pins:
        raise OptionError(
            f"{option} {path} pins no key for {host} (ssh.host, port {port}), so the tunnel "
            f"would refuse the bastion; make it with: ssh-keyscan -p {port} {host} > {path}, "
            "and compare the fingerprint with the bastion's admin"
        )
