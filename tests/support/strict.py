"""Nothing passes quietly when it could not run.

scripts/test installs every tool the tests need, so under it (APPLIANCE_STRICT_SKIPS=1) a
skip is a missing install step, not a pass: it fails the run. Only the opt-in tests that
need a real Pi, a person at the button or a network chroot may skip, and they say which
variable turns them on.
"""

from __future__ import annotations

# The opt-ins, and the one check that needs ../shared beside the clone (CI lays it there).
OPT_IN = ("APPLIANCE_HARDWARE", "APPLIANCE_CHROOT_TEST", "lies outside the repository")


def strict_skip_failure(report) -> str | None:
    """Return why a skipped test report must count as a failure, or None when it may skip."""
    if not report.skipped or getattr(report, "wasxfail", None) is not None:
        return None
    reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
    if any(name in reason for name in OPT_IN):
        return None
    return f"skipped under scripts/test, where nothing may skip: {reason}"
