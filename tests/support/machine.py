"""Describe the machine a benchmark ran on (the README states it with every figure)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    """Return "N cores (CPU model), Python X.Y.Z"."""
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def cpu_seconds(pid: int) -> float:
    """Return the CPU time of a process and of its children it has reaped (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
