"""Load a URL with wrk (Debian's package) and read its figures: p50, p99, requests/s."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> dict:
    """Return p50 and p99 in ms, requests/s, failed responses and socket errors of one run
    (``script``: a wrk Lua script, e.g. one that varies each request)."""
    lua = ["-s", str(script)] if script else []
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", *lua, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "p50": ms("50"),
        "p99": ms("99"),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "bad": int(bad.group(1)) if bad else 0,
        "errors": errors.group(1) if errors else "",
    }
