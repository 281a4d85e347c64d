"""Customize a Raspberry Pi OS image or card: the boot partition edited in place, no mounting.

Kept free of syntax newer than Python 3.9 and of the Pi-side dependencies: the flasher
imports this on a stock Mac, so it never imports ``sync``, ``health`` or the readers.
"""

from __future__ import annotations

from .customize import CardPlan, CustomizeOptions, CustomizeReport, WrittenFile, check_card, customize_target
from .peek import peek_stream

__all__ = [
    "CardPlan",
    "CustomizeOptions",
    "CustomizeReport",
    "WrittenFile",
    "check_card",
    "customize_target",
    "peek_stream",
]
