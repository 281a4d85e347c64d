"""``appliance image``: prepare a Raspberry Pi OS image or card (a thin click layer).

``customize_options`` and ``options_from`` are shared with ``appliance flash``, which runs
the same customization on the card after writing it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from .customize import customize_target
from .errors import ImageError
from .settings import FORMATS, CustomizeOptions

_FILE = click.Path(exists=True, dir_okay=False)
_DIR = click.Path(exists=True, file_okay=False)
CONFIG_HELP = "The appliance config to bake into the card (not this machine's config)."
# The customization options, defined once for `appliance image customize` and
# `appliance flash`: (flag, CustomizeOptions field, "text" | "file" | "dir" | "flag", help).
OPTIONS = [
    ("--hostname", "hostname", "text", "Host name of the Pi (default: the image's)."),
    ("--user", "user", "text", "Login user to create for maintenance (there is no default user)."),
    ("--ssh-key", "ssh_key_file", "file", "Public key(s) allowed to log in as --user (FILE.pub)."),
    ("--password-file", "password_file", "file", "File holding --user's password (hashed on the card)."),
    ("--timezone", "timezone", "text", "Time zone, e.g. Europe/London (default: the image's)."),
    ("--wifi-ssid", "wifi_ssid", "text", "Wi-Fi network to join (optional: Ethernet is assumed)."),
    ("--wifi-password-file", "wifi_password_file", "file", "File holding the Wi-Fi passphrase."),
    (
        "--wifi-country",
        "wifi_country",
        "text",
        "Two-letter country code, e.g. GB (Wi-Fi stays off without it).",
    ),
    (
        "--tunnel-key",
        "tunnel_key_file",
        "file",
        "Private key of the SSH tunnel; goes where ssh.key_file says.",
    ),
    (
        "--known-hosts",
        "known_hosts_file",
        "file",
        "known_hosts pinning the bastion; goes where ssh.known_hosts says.",
    ),
    (
        "--ssh-password-file",
        "ssh_password_file",
        "file",
        "Bastion password file; goes where ssh.password_file says.",
    ),
    (
        "--source-password-file",
        "source_password_file",
        "file",
        "Database password file; goes where source.password_file says.",
    ),
    (
        "--api-token-file",
        "api_token_file",
        "file",
        "Data API token file; goes where web.api_token_file says.",
    ),
    (
        "--bundle",
        "bundle_dir",
        "dir",
        "Folder of wheels (the appliance's and every dependency's) put on the card, so first "
        "boot installs without internet.",
    ),
    (
        "--allow-incomplete",
        "allow_incomplete",
        "flag",
        "Write a card that lacks pieces anyway (listed at the end).",
    ),
]


def _option(flag: str, dest: str, kind: str, help_text: str) -> Callable:
    if kind == "flag":
        return click.option(flag, dest, is_flag=True, help=help_text)
    if kind == "file":
        return click.option(flag, dest, type=_FILE, metavar="FILE", help=help_text)
    if kind == "dir":
        return click.option(flag, dest, type=_DIR, metavar="DIR", help=help_text)
    return click.option(flag, dest, default="", help=help_text)


_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="First-boot format: from the OS list or the image's files unless forced.",
)


def customize_options(command: Callable) -> Callable:
    """Add the customization options (login, network, secrets, format) to a click command."""
    for option in reversed([*(_option(*row) for row in OPTIONS), _FORMAT]):
        command = option(command)
    return command


def given(params: dict[str, Any]) -> list[str]:
    """Return the customization options that were given (format only when forced)."""
    flags = [flag for flag, dest, _, _ in OPTIONS if params.get(dest)]
    return flags + (["--format"] if params.get("fmt") not in (None, "", "auto") else [])


def options_from(params: dict[str, Any]) -> CustomizeOptions:
    """Return CustomizeOptions from the values click passed for ``customize_options``."""
    values: dict[str, Any] = {
        dest: params.get(dest) or ("" if kind != "flag" else False) for _, dest, kind, _ in OPTIONS
    }
    return CustomizeOptions(format=params.get("fmt") or "auto", **values)


@click.group("image")
def image() -> None:
    """Prepare Raspberry Pi OS images and cards for the appliance."""


@image.command("customize")
@click.argument("target", type=_FILE)
@click.option(
    "--config",
    "config_file",
    required=True,
    type=_FILE,
    help=CONFIG_HELP,
)
@customize_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def customize(target: str, config_file: str, as_json: bool, **params: Any) -> None:
    """Edit TARGET's boot partition (an .img file or a written card) so it boots into the appliance.

    The FAT boot partition is edited in place, without mounting: SSH, the login user, host
    name, Wi-Fi, I2C, and the appliance's config, secrets and first-boot script. Secrets are
    read from the files named here, never from the command line, and never printed.
    """
    try:
        report = customize_target(target, config_file, options_from(params))
    except ImageError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    for line in report.lines():
        click.echo(line, err=line.startswith("warning:"))
    if report.complete:
        click.echo(f"Done: {target} boots into a working appliance.")


def main(argv: list[str] | None = None) -> None:
    """Run `appliance image` on its own (python -m appliance.image, Python 3.9 too)."""
    image.main(args=argv if argv is not None else sys.argv[1:], prog_name="appliance image")
