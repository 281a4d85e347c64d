"""Peak memory of a real `appliance sync --once`, in a child process of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts at its parent's size at fork
# (pytest's, hundreds of MB late in the suite) and survives exec; VmHWM belongs to the new
# program's own memory.
_CODE = """
import re, sys
from appliance.cli import main
try:
    main(['--config', sys.argv[1], 'sync', '--once', *sys.argv[2:]])
except SystemExit as e:
    print('exit', e.code)
status = open('/proc/self/status').read()
print('peak_mb', int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)) // 1024)
"""


def sync_peak_mb(cfg: Path, *args: str, timeout: float = 180) -> int:
    """Run `appliance sync --once ARGS` in a child; return its peak resident memory in MB."""
    done = subprocess.run(
        [sys.executable, "-c", _CODE, str(cfg), *args], capture_output=True, text=True, timeout=timeout
    )
    assert "exit 0" in done.stdout, done.stdout + done.stderr[-2000:]
    return int(done.stdout.split("peak_mb")[1])
