"""The customization options as given, and the settings they resolve to.

Secrets come only from files named by the user (never from command-line values) and are
never put in a message: errors name the option and the file, not what is in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .appconfig import BakedConfig
from .errors import OptionError, SecretFileError
from .passwords import hash_password
from .wifi import check_country, check_ssid, wifi_psk

FORMATS = ("auto", "firstrun", "cloud-init")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_PUBKEY = re.compile(r"^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+ [A-Za-z0-9+/=]+")
RESERVED_USERS = ("root", "appliance")  # appliance is the services' own account


@dataclass
class CustomizeOptions:
    """What ``appliance image customize`` was asked to put on the card (file paths for secrets)."""

    user: str = ""
    ssh_key_file: str = ""  # public key(s) allowed to log in as ``user``
    password_file: str = ""  # the login password, hashed before it goes on the card
    hostname: str = ""
    wifi_ssid: str = ""
    wifi_password_file: str = ""
    wifi_country: str = ""
    tunnel_key_file: str = ""  # -> /etc/appliance/<name in ssh.key_file>
    known_hosts_file: str = ""  # -> /etc/appliance/<name in ssh.known_hosts>
    source_password_file: str = ""  # -> /etc/appliance/<name in source.password_file>
    format: str = "auto"  # auto | firstrun | cloud-init
    instance_id: str = ""  # cloud-init's instance-id (default: a new one each run)


@dataclass
class Wifi:
    ssid: str
    psk: str  # PBKDF2 hex, or "" for an open network
    country: str


@dataclass
class Settings:
    """Validated settings, with secrets read, hashed or derived."""

    user: str
    password_hash: str
    ssh_keys: list[str]
    hostname: str
    country: str
    wifi: Wifi | None
    secrets: dict[str, bytes] = field(default_factory=dict)  # Pi file name -> contents
    warnings: list[str] = field(default_factory=list)


def read_secret(path: str, option: str) -> bytes:
    """Return the bytes of a secret file, with an error that never shows its contents."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SecretFileError(f"{option} {path}: cannot read it ({e.strerror})") from None
    if not data.strip():
        raise SecretFileError(f"{option} {path}: the file is empty")
    return data


def _secret_text(path: str, option: str) -> str:
    try:
        text = read_secret(path, option).decode("utf-8")
    except UnicodeDecodeError:
        raise SecretFileError(f"{option} {path}: not UTF-8 text") from None
    return text.rstrip("\r\n")  # editors end files with a newline; it is not part of it


def resolve(options: CustomizeOptions, config: BakedConfig) -> Settings:
    """Check every option and read every file; raise OptionError naming the first problem."""
    if options.format not in FORMATS:
        raise OptionError(f'--format must be one of {", ".join(FORMATS)}, not "{options.format}"')
    user, password_hash, keys = _login(options)
    notes = (
        []
        if user
        else [
            "no login user: nobody can log in to the Pi (the appliance runs all the same); "
            "add --user NAME --ssh-key FILE.pub for maintenance access"
        ]
    )
    hostname = options.hostname.strip()
    if hostname and not _HOST.match(hostname):
        raise OptionError(
            f'--hostname "{hostname}" is not a valid host name; use letters, '
            "digits and -, up to 63 characters, e.g. appliance-site1"
        )
    country = check_country(options.wifi_country) if options.wifi_country else ""
    settings = Settings(user, password_hash, keys, hostname, country, _wifi(options, country))
    settings.secrets, settings.warnings = _payload_secrets(options, config)
    settings.warnings = notes + settings.warnings
    return settings


def _login(options: CustomizeOptions):
    """Return (user, password hash, public keys); no user at all is allowed, no default one."""
    if not options.user:
        if options.ssh_key_file or options.password_file:
            raise OptionError(
                "--ssh-key and --password-file need --user NAME: the card gets no "
                "default user (no pi/raspberry)"
            )
        return "", "", []
    if not _USER.match(options.user) or options.user in RESERVED_USERS:
        raise OptionError(
            f'--user "{options.user}" cannot be used; pick a lower-case name '
            "(letters, digits, _ or -) other than root and appliance"
        )
    if not (options.ssh_key_file or options.password_file):
        raise OptionError(
            "give --ssh-key FILE.pub (recommended) and/or --password-file FILE "
            f"so that {options.user} can log in"
        )
    keys = _public_keys(options.ssh_key_file) if options.ssh_key_file else []
    password = ""
    if options.password_file:
        password = _secret_text(options.password_file, "--password-file")
    return options.user, hash_password(password) if password else "", keys


def _public_keys(path: str) -> list[str]:
    text = _secret_text(path, "--ssh-key")
    if "PRIVATE KEY" in text:
        raise OptionError(f"--ssh-key {path} is a private key; pass the public one ({path}.pub)")
    keys = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    bad = [i + 1 for i, key in enumerate(keys) if not _PUBKEY.match(key)]
    if not keys or bad:
        raise OptionError(
            f'--ssh-key {path} does not hold OpenSSH public keys (lines like "ssh-ed25519 AAAA... comment")'
        )
    return keys


def _wifi(options: CustomizeOptions, country: str) -> Wifi | None:
    if not options.wifi_ssid:
        if options.wifi_password_file:
            raise OptionError("--wifi-password-file needs --wifi-ssid NAME")
        return None
    ssid = check_ssid(options.wifi_ssid)
    if not country:
        raise OptionError(
            "--wifi-ssid needs --wifi-country CC (e.g. GB, DE, US): the Pi keeps "
            "Wi-Fi switched off until the country is set"
        )
    psk = ""
    if options.wifi_password_file:
        psk = wifi_psk(ssid, _secret_text(options.wifi_password_file, "--wifi-password-file"))
    return Wifi(ssid, psk, country)


def _payload_secrets(options: CustomizeOptions, config: BakedConfig):
    given = {
        "tunnel_key": (options.tunnel_key_file, "--tunnel-key"),
        "known_hosts": (options.known_hosts_file, "--known-hosts"),
        "source_password": (options.source_password_file, "--source-password-file"),
    }
    secrets: dict[str, bytes] = {}
    warnings: list[str] = []
    for key, (path, option) in given.items():
        name = config.targets.get(key, "")
        if path and not name:
            raise OptionError(
                f"{option} was given, but the appliance config names no file for "
                f'it (set {_config_key(key)} = "/etc/appliance/...")'
            )
        if name and not path:
            warnings.append(
                f"the config reads /etc/appliance/{name} ({_config_key(key)}), but "
                f"no {option} was given: put that file on the Pi by hand"
            )
        if path:
            secrets[name] = _checked(key, read_secret(path, option), path, option)
    return secrets, warnings


def _config_key(key: str) -> str:
    return {
        "tunnel_key": "ssh.key_file",
        "known_hosts": "ssh.known_hosts",
        "source_password": "source.password_file",
    }[key]


def _checked(key: str, data: bytes, path: str, option: str) -> bytes:
    if key == "tunnel_key" and not data.lstrip().startswith(b"-----BEGIN"):
        raise OptionError(
            f"{option} {path} is not a private key file (it should start with "
            '"-----BEGIN OPENSSH PRIVATE KEY-----"; the .pub goes to the bastion)'
        )
    return data
