"""`appliance indicator`: a thin click layer over ``loop.serve``."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from pathlib import Path

import click

from ..clock import parse_duration
from ..config import load
from ..errors import ApplianceError
from .loop import serve


@click.command("indicator")
@click.option(
    "--once", is_flag=True, help="Do one pass (lights and display) and exit; the display keeps the picture."
)
@click.option(
    "--preview",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the display's picture to this PNG file, also without a display.",
)
@click.option(
    "--interval", default="1s", show_default=True, help='How often to read the status, e.g. "1s" or "500ms".'
)
@click.option("--persist", is_flag=True, help="Leave the last picture on the display when stopping.")
@click.option(
    "--at",
    "at_text",
    metavar="TIME",
    help="With --once: draw the frame as of this ISO time (its times and its burn-in shift), "
    'e.g. "2025-11-23T14:30:00Z".',
)
def indicator(once: bool, preview: Path | None, interval: str, persist: bool, at_text: str | None) -> None:
    """Show the health state on the traffic light, the button and the OLED."""
    try:
        seconds = parse_duration(interval)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--interval") from None
    at = _time(at_text, once) if at_text is not None else None
    if preview is not None and not preview.parent.is_dir():
        raise click.BadParameter(
            f"the folder {preview.parent} does not exist; create it or write the picture elsewhere",
            param_hint="--preview",
        )
    ctx = click.get_current_context()
    config_path = ctx.obj.get("config_path") if isinstance(ctx.obj, dict) else None
    try:
        config = load(config_path)
        # Imported here: the indicator reads health; nothing else of the core is needed.
        from ..health import status as health

        tick = serve(
            config,
            partial(health.current_status, config),
            partial(health.acknowledge, config, by="button"),
            once=once,
            preview=preview,
            interval=seconds,
            persist=persist,
            at=at,
            warn=lambda text: click.echo(f"warning: {text}", err=True),
        )
    except ApplianceError as e:
        raise click.ClickException(str(e)) from None
    if tick is not None:
        click.echo(tick.summary)
        if preview:
            click.echo(f"picture written to {preview}")


def _time(text: str, once: bool) -> datetime:
    """Return ``--at``'s ISO time, aware (a time without a zone is this machine's local time)."""
    if not once:
        raise click.UsageError("--at draws one frame: use it with --once")
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f'"{text}" is not an ISO time; write it like "2025-11-23T14:30:00Z"', param_hint="--at"
        ) from None
    return value if value.tzinfo else value.astimezone()
