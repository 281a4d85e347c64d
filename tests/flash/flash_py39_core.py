"""Run the flasher's core under an old Python (a stock Mac's 3.9), without click or tqdm.

Usage: python3.9 flash_py39_core.py FIXTURES IMAGE.xz WORKDIR (with PYTHONPATH = the repo).
Prints "ok" when listing, safety, write and verify all behave.
"""

import json
import os
import plistlib
import sys
from pathlib import Path

PI_SIDE = ("sqlalchemy", "psycopg2", "sshtunnel", "flask", "gpiozero", "luma", "prometheus_client")


def compile_all() -> None:
    """Byte-compile every flasher module with this interpreter (cli.py included)."""
    package = Path(__file__).resolve().parents[2] / "appliance" / "flash"
    for path in sorted(package.glob("*.py")):
        compile(path.read_text(), str(path), "exec")  # a SyntaxError names file and line


def check_drives(fixtures: Path) -> None:
    """Judge the captured macOS and Linux disks."""
    from appliance.flash import drives_darwin, drives_linux, safety

    info = plistlib.loads((fixtures / "macos" / "diskutil-info-disk2-usb-stick.plist").read_bytes())
    stick = drives_darwin.drive_from_info(info, ["/Volumes/NO NAME"])
    nvme = drives_darwin.drive_from_info(
        plistlib.loads((fixtures / "macos" / "diskutil-info-disk0.plist").read_bytes()), []
    )
    slot = drives_darwin.drive_from_info(
        plistlib.loads((fixtures / "macos" / "diskutil-info-disk4-sd-slot.plist").read_bytes()), []
    )
    safety.judge([stick, nvme, slot])
    assert stick.target and slot.target and not nvme.target, (stick, slot, nvme)
    data = json.loads((fixtures / "linux" / "lsblk-laptop-cards.json").read_text())
    linux = {d.id: d for d in safety.judge(drives_linux.list_drives(data=data))}
    assert linux["sda"].target and not linux["nvme0n1"].target and not linux["sdc"].target
    check_linux_refusals(fixtures)


def check_linux_refusals(fixtures: Path) -> None:
    """Judge eMMC, internal transports and disks in use, with sysfs and procfs read too."""
    from appliance.flash import drives_linux, safety
    from appliance.flash.inuse_linux import Kernel

    nothing = Kernel("/nonexistent/sys", "/nonexistent/proc")
    judged = {}
    for name in ("lsblk-emmc-board.json", "lsblk-internal-hotplug.json", "lsblk-in-use.json"):
        data = json.loads((fixtures / "linux" / name).read_text())
        judged[name] = {d.id: d for d in safety.judge(drives_linux.list_drives(data=data, kernel=nothing))}
    board, internal, in_use = judged.values()
    assert board["mmcblk0"].why.startswith("eMMC soldered") and board["mmcblk1"].target
    assert internal["sda"].why.startswith("internal disk (sata)") and internal["sdb"].target
    assert all(in_use[n].why.startswith("in use") for n in ("sdb", "sdc", "sdd", "sde", "sdf", "sdh"))
    assert in_use["sdg"].target and in_use["sdi"].target
    real = Kernel()  # this machine's own sysfs and procfs, read on 3.9 too
    assert isinstance(real.swaps(), list) and isinstance(real.mounts(), list)
    assert isinstance(real.loops(), dict)
    assert safety.file_target(str(fixtures / "SOURCES.md")).target


def check_flash(image_path: str, workdir: str) -> None:
    """Flash an .img.xz to a file through the real plan and executor, then compare bytes."""
    import lzma

    from appliance.flash import plan, prepare
    from appliance.flash.flasher import Flasher

    target_path = os.path.join(workdir, "card.img")
    image, _ = prepare.image(image_path, None)
    platform, target = prepare.target(target_path, force=False)
    steps = plan.build(image, target, platform, plan.Options())
    outcome = Flasher(image, target, platform, plan.Options(), say=lambda msg: None).run(steps)
    with lzma.open(image_path) as f:
        expected = f.read()
    assert Path(target_path).read_bytes() == expected
    assert outcome.verify_seconds is not None and outcome.size == len(expected)


def main() -> None:
    fixtures, image_path, workdir = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    os.environ["APPLIANCE_FLASH_PROGRESS"] = "plain"
    compile_all()
    check_drives(fixtures)
    check_flash(image_path, workdir)
    loaded = [m for m in PI_SIDE if m in sys.modules]
    assert not loaded, f"the flasher imported Pi-side modules: {loaded}"
    assert "click" not in sys.modules  # the core runs without click
    print(f"ok {sys.version_info[0]}.{sys.version_info[1]}")


if __name__ == "__main__":
    main()
