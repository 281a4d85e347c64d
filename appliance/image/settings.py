"""The customization options as given, and the settings they resolve to.

Secrets come only from files named by the user (never from command-line values) and are
never put in a message: errors name the option and the file, not what is in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import apitoken
from .appconfig import SECRET_KEYS, BakedConfig, env_secrets
from .errors import OptionError, SecretFileError
from .keys import check_known_hosts, check_private_key, check_public_keys
from .passwords import hash_password
from .wifi import check_country, check_ssid, wifi_psk

FORMATS = ("auto", "firstrun", "cloud-init")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_PUBKEY = re.compile(r"^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+ [A-Za-z0-9+/=]+")
_TZ = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$")
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
    timezone: str = ""  # e.g. Europe/London (default: the image's)
    tunnel_key_file: str = ""  # -> /etc/appliance/<name in ssh.key_file>
    known_hosts_file: str = ""  # -> /etc/appliance/<name in ssh.known_hosts>
    ssh_password_file: str = ""  # -> /etc/appliance/<name in ssh.password_file>
    source_password_file: str = ""  # -> /etc/appliance/<name in source.password_file>
    api_token_file: str = ""  # -> /etc/appliance/<name in web.api_token_file>
    bundle_dir: str = ""  # a wheelhouse -> appliance/wheels/ on the card (offline install)
    format: str = "auto"  # auto | firstrun | cloud-init
    listed_format: str = ""  # the OS list's init_format for the image, when it came from there
    allow_incomplete: bool = False  # write a card that lacks pieces (listed in the report)
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
    timezone: str = ""
    missing: list[str] = field(default_factory=list)  # what keeps the card from working
    token: apitoken.TokenPlan | None = None  # a token the flasher made, when the config names none


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
    """Check every option and read every file; raise OptionError naming the first problem.

    What the card would lack to boot into a working appliance goes to ``missing``, one line
    each naming the option that supplies it.
    """
    if options.format not in FORMATS:
        raise OptionError(f'--format must be one of {", ".join(FORMATS)}, not "{options.format}"')
    user, password_hash, keys = _login(options)
    missing = (
        []
        if user
        else [
            "a login: nobody could log in to the Pi to look after it; "
            "give --user NAME with --ssh-key FILE.pub (or --password-file FILE)"
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
    settings.timezone = check_timezone(options.timezone) if options.timezone else ""
    settings.secrets, not_given = _payload_secrets(options, config)
    settings.missing = missing + not_given + env_secrets(config.data)
    settings.token = apitoken.plan(config.path, _web(config), bool(options.api_token_file))
    if settings.token is not None:
        settings.secrets[apitoken.PI_TOKEN_NAME] = settings.token.data
    return settings


def _web(config: BakedConfig) -> dict:
    web = config.data.get("web")
    return web if isinstance(web, dict) else {}


def check_timezone(name: str) -> str:
    """Return the IANA time zone name if it looks like one this machine also knows."""
    name = name.strip()
    known = Path("/usr/share/zoneinfo")
    if not _TZ.match(name) or ".." in name or (known.is_dir() and not (known / name).is_file()):
        raise OptionError(
            f'--timezone "{name}" is not a time zone name; use an IANA name such as '
            "Europe/London, America/New_York or UTC"
        )
    return name


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
    check_public_keys(keys, path, "--ssh-key")
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


_GIVEN = {  # the option that carries each file the config names in /etc/appliance
    "tunnel_key": ("tunnel_key_file", "--tunnel-key", "the tunnel's private key"),
    "known_hosts": ("known_hosts_file", "--known-hosts", "the bastion's pinned host key"),
    "ssh_password": ("ssh_password_file", "--ssh-password-file", "the bastion password"),
    "source_password": ("source_password_file", "--source-password-file", "the database password"),
    "api_token": ("api_token_file", "--api-token-file", "the data API and actions token"),
}


def _payload_secrets(options: CustomizeOptions, config: BakedConfig):
    """Return the secret files to carry, and one line per file the config needs but lacks."""
    secrets: dict[str, bytes] = {}
    missing: list[str] = []
    for key, (attr, option, what) in _GIVEN.items():
        path = getattr(options, attr)
        name = config.targets.get(key, "")
        if key == "api_token" and path and not name and not _web(config).get("api_token_env"):
            name = apitoken.PI_TOKEN_NAME  # the page reads api.token beside its config
        if path and not name:
            raise OptionError(
                f"{option} was given, but the appliance config names no file for "
                f'it (set {_config_key(key)} = "/etc/appliance/...")'
            )
        if name and not path:
            missing.append(f"/etc/appliance/{name} ({_config_key(key)}, {what}): give {option} FILE")
        if path:
            secrets[name] = _checked(key, read_secret(path, option), path, option, config)
    return secrets, missing


def _config_key(key: str) -> str:
    section, name = SECRET_KEYS[key]
    return f"{section}.{name}"


def _checked(key: str, data: bytes, path: str, option: str, config: BakedConfig) -> bytes:
    """Return the file's bytes once they parse as what the Pi will use them for."""
    if key == "tunnel_key":
        check_private_key(data, path, option)
    elif key == "known_hosts":
        ssh = config.data.get("ssh") or {}
        check_known_hosts(data, path, option, str(ssh.get("host", "")), int(ssh.get("port", 22)))
    return data
