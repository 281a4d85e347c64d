"""The suite's own guard (support/strict.py): under scripts/test a skip that is not an opt-in fails."""

from __future__ import annotations

from types import SimpleNamespace

from support.strict import strict_skip_failure


def _skipped(reason: str) -> SimpleNamespace:
    return SimpleNamespace(skipped=True, longrepr=("test_x.py", 3, f"Skipped: {reason}"))


def test_strict_a_missing_tool_skip_is_a_failure():
    why = strict_skip_failure(_skipped("chromium is not installed"))
    assert why is not None and "chromium is not installed" in why


def test_strict_opt_in_hardware_and_chroot_may_skip():
    assert strict_skip_failure(_skipped("needs a Raspberry Pi (set APPLIANCE_HARDWARE=1)")) is None
    assert strict_skip_failure(_skipped("set APPLIANCE_CHROOT_TEST=1 (as root)")) is None


def test_strict_passed_and_xfailed_reports_are_left_alone():
    assert strict_skip_failure(SimpleNamespace(skipped=False, longrepr=None)) is None
    assert strict_skip_failure(SimpleNamespace(skipped=True, wasxfail="known", longrepr="x")) is None
