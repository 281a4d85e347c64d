"""`appliance flash` as users meet it: --list, confirmation, usage errors, `python -m`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from appliance.flash.cli import flash

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = {"id", "path", "model", "size", "removable", "writable", "target"}


def _run(*args: str, input: str | None = None):
    return CliRunner().invoke(flash, list(args), input=input)


def test_list_shows_every_disk_and_why_it_may_not_be_written(fake):
    fake.darwin("usb-stick")
    result = _run("--list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "MODEL", "SIZE", "REMOVABLE", "WRITABLE", "TARGET"]
    disk0 = next(x for x in lines if x.startswith("disk0"))
    disk2 = next(x for x in lines if x.startswith("disk2"))
    assert "INTEL SSDPEKNW512G8" in disk0 and "no: system disk" in disk0
    assert "Cruzer Fit" in disk2 and "15.7 GB" in disk2 and disk2.rstrip().endswith("yes")


def test_list_json_has_the_contract_fields(fake):
    fake.linux("linux/lsblk-laptop-cards.json")
    result = _run("--list", "--json")
    assert result.exit_code == 0, result.output
    disks = {d["id"]: d for d in json.loads(result.output)}
    assert set(disks) == {"sda", "sdb", "sdc", "mmcblk0", "nvme0n1"}
    for disk in disks.values():
        assert CONTRACT <= set(disk)
        assert ("why" in disk) is (not disk["target"])
    assert disks["sda"]["target"] is True and disks["sda"]["removable"] is True
    assert "lock switch" in disks["sdc"]["why"] and disks["sdc"]["writable"] is False


def test_list_force_lifts_only_the_size_limit(fake):
    fake.linux("linux/lsblk-laptop-cards.json")
    disks = {d["id"]: d for d in json.loads(_run("--list", "--json", "--force").output)}
    assert disks["sdb"]["target"] is True
    assert disks["nvme0n1"]["target"] is False


def test_confirmation_shows_model_size_identifier_and_no_writes_nothing(fake, not_root, images):
    fake.darwin("usb-stick")
    disk = fake.disk("rdisk2", 15682240512)
    result = _run("--image", str(images["raw"]), input="n\n")
    assert result.exit_code == 1
    assert "Found one card: disk2 (/dev/disk2): Cruzer Fit, 15.7 GB, removable" in result.output
    assert "Aborted" in result.output
    assert fake.mutating() == []
    with open(disk, "rb") as f:
        assert f.read(4096) == bytes(4096)


def test_proposed_card_is_written_after_yes(fake, not_root, images):
    fake.darwin("sd-slot")
    disk = fake.disk("rdisk4", 31914983424)
    result = _run("--image", str(images["raw"]), input="y\n")
    assert result.exit_code == 0, result.output
    with open(disk, "rb") as f:
        assert f.read(len(images["data"])) == images["data"]


def test_yes_without_device_is_a_usage_error(fake, images):
    fake.darwin("usb-stick")
    result = _run("--image", str(images["raw"]), "--yes")
    assert result.exit_code == 2 and "--yes needs --device" in result.output


def test_image_and_os_are_exclusive(images):
    result = _run("--image", str(images["raw"]), "--os", "lite", "--device", "/tmp/x.img")
    assert result.exit_code == 1 and "exactly one image source" in result.output


def test_json_without_list_is_a_usage_error():
    assert _run("--json").exit_code == 2


def test_internal_nvme_is_refused_without_traceback(fake, images):
    fake.linux("linux/lsblk-laptop-cards.json")
    result = _run("--image", str(images["raw"]), "--device", "/dev/nvme0n1", "--yes", "--force")
    assert result.exit_code == 1
    assert "Refusing to write nvme0n1" in result.output and "system path" in result.output
    assert "Traceback" not in result.output


def test_truncated_image_is_refused_with_a_clear_message(images, tmp_path):
    cut = tmp_path / "cut.img.xz"
    cut.write_bytes(images["xz"].read_bytes()[:1000])
    result = _run("--image", str(cut), "--device", str(tmp_path / "out.img"), "--yes")
    assert result.exit_code == 1
    assert "damaged or incomplete" in result.output and "Download it again" in result.output
    assert not (tmp_path / "out.img").exists()


def test_every_option_has_help():
    help_text = _run("--help").output
    for option in (
        "--image",
        "--os",
        "--device",
        "--config",
        "--yes",
        "--dry-run",
        "--dd",
        "--force",
        "--fix-readonly",
        "--no-verify",
        "--no-eject",
        "--list",
        "--json",
    ):
        assert option in help_text


def _module(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "appliance.flash", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env or dict(os.environ),
        timeout=60,
    )


def test_python_m_appliance_flash_writes_a_file(images, tmp_path):
    target = tmp_path / "out.img"
    done = _module("--image", str(images["gz"]), "--device", str(target), "--yes")
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == images["data"]
    assert "verified" in done.stdout


def test_python_m_appliance_flash_lists_replayed_disks(fake):
    fake.darwin("usb-stick")
    done = _module("--list", "--json")
    assert done.returncode == 0, done.stderr
    assert [d["id"] for d in json.loads(done.stdout)] == ["disk0", "disk2"]


def test_python_m_appliance_flash_refusal_has_no_traceback(fake, images):
    fake.darwin("usb-stick")
    done = _module("--image", str(images["raw"]), "--device", "disk0", "--yes")
    assert done.returncode == 1
    assert "Error: Refusing to write disk0" in done.stderr and "Traceback" not in done.stderr


def test_unknown_platform_override_is_explained(monkeypatch):
    monkeypatch.setenv("APPLIANCE_FLASH_PLATFORM", "windows")
    result = _run("--list")
    assert result.exit_code == 1 and "use darwin or linux" in result.output


def test_confirmation_names_the_volumes_that_will_be_erased(fake, not_root, images):
    fake.darwin("sd-slot")
    result = _run("--image", str(images["raw"]), "--device", "disk4", input="n\n")
    assert result.exit_code == 1
    assert "its volume(s), erased too: bootfs" in result.output
    assert fake.mutating() == []
