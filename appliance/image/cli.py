"""``appliance image``: prepare a Raspberry Pi OS image or card (a thin click layer).

``customize_options`` and ``options_from`` are shared with ``appliance flash``, which runs
the same customization on the card after writing it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from .customize import customize_target
from .errors import ImageError
from .settings import FORMATS, CustomizeOptions

_FILE = click.Path(exists=True, dir_okay=False)
_OPTIONS = [
    click.option("--user", default="", help="Login user to create (no default user or password)."),
    click.option("--ssh-key", "ssh_key_file", type=_FILE, help="Public key(s) allowed to log in."),
    click.option("--password-file", type=_FILE, help="File holding the login password."),
    click.option("--hostname", default="", help="Host name of the Pi (default: the image's)."),
    click.option("--wifi-ssid", default="", help="Wi-Fi network to join."),
    click.option("--wifi-password-file", type=_FILE, help="File holding the Wi-Fi passphrase."),
    click.option(
        "--wifi-country", default="", help="Two-letter country code, e.g. GB (Wi-Fi stays off without it)."
    ),
    click.option(
        "--tunnel-key",
        "tunnel_key_file",
        type=_FILE,
        help="Private key of the SSH tunnel; goes where the config's ssh.key_file says.",
    ),
    click.option(
        "--known-hosts",
        "known_hosts_file",
        type=_FILE,
        help="known_hosts pinning the bastion; goes where ssh.known_hosts says.",
    ),
    click.option(
        "--source-password-file",
        type=_FILE,
        help="Database password file; goes where source.password_file says.",
    ),
    click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="auto",
        show_default=True,
        help="First-boot format: detected from the image unless forced.",
    ),
]


def customize_options(command: Callable) -> Callable:
    """Add the customization options (login, network, secrets, format) to a click command."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def options_from(params: dict[str, Any]) -> CustomizeOptions:
    """Return CustomizeOptions from the values click passed for ``customize_options``."""
    names = {f for f in CustomizeOptions.__dataclass_fields__ if f != "format"}
    values = {k: v or "" for k, v in params.items() if k in names}
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
    help="The appliance config to bake into the card (not this machine's config).",
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
    else:
        for line in report.lines():
            click.echo(line, err=line.startswith("warning:"))
