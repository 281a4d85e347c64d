"""``appliance web``: the status page on the LAN (registered by ``appliance.cli``)."""

from __future__ import annotations

import errno

import click

from ..config import load
from ..errors import ApplianceError


@click.command("web")
@click.option("--host", metavar="H", help="Address to listen on (default: [web] host).")
@click.option(
    "--port", type=click.IntRange(0, 65535), metavar="P", help="Port to listen on (default: [web] port)."
)
def web(host: str | None, port: int | None) -> None:
    """Serve the status page (waitress) until stopped."""
    from .server import serve

    try:
        config = load(click.get_current_context().obj["config_path"])
        host = config.web.host if host is None else host
        port = config.web.port if port is None else port
        serve(config, host, port, echo=click.echo)
    except ApplianceError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"cannot listen on {host}:{port}: the port is in use (another appliance web?). "
                f"Stop the other process or choose another port with --port or [web] port."
            ) from None
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {e.strerror or e}. Check "
            f"that [web] host is an address of this machine."
        ) from None
