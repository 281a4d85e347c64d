"""The flash as a list of steps: printed by --dry-run, run one by one otherwise.

Building the plan and running it from the same list keeps --dry-run honest.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

from appliance.flash import readonly, system
from appliance.flash.drive import Drive, human_size
from appliance.flash.rawdev import open_mode, opener_argv
from appliance.flash.source import Image
from appliance.flash.writer import BLOCK


@dataclass
class Options:
    """What the user asked for besides the image and the target."""

    verify: bool = True
    eject: bool = True
    dd: bool = False
    fix_readonly: bool = False
    config: str | None = None
    customize: Any = None  # appliance.image.CustomizeOptions, with --config
    download_url: str = ""  # set when the image still has to be downloaded


@dataclass
class Step:
    """One step: a command to run, or one of the flasher's own actions."""

    kind: str  # sudo | download | run | write | decompress | dd | verify | customize | cleanup
    text: str
    argv: list[str] = field(default_factory=list)
    root: bool = False
    cleanup: bool = False  # runs at the end, also after a failure
    optional: bool = False  # a failure is a warning, not an error
    root_on_refusal: bool = False  # run as the user first; through sudo only if refused

    def line(self) -> str:
        """Return the step as --dry-run prints it."""
        if self.kind in ("run", "dd"):
            argv = system.as_root(self.argv) if self.root else self.argv
            return f"{system.quote(argv)}    # {self.text}" if self.text else system.quote(argv)
        return self.text


def dd_argv(source: str, target: Drive, platform: str) -> list[str]:
    """Return the classic dd line: bs=1m for macOS's BSD dd, bs=1M for GNU dd."""
    return [
        "dd",
        "bs=1m" if platform == "darwin" else "bs=1M",
        f"if={source}",
        f"of={target.raw_path}",
    ]


def temp_image_path(image: Image) -> str:
    """Return where --dd decompresses a compressed image (a private directory made later)."""
    name = os.path.basename(image.member) if image.member else image.name
    for suffix in (".xz", ".gz", ".zip"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    folder = os.path.join(tempfile.gettempdir(), f"appliance-flash-{os.getpid()}")
    return os.path.join(folder, name if name.lower().endswith(".img") else name + ".img")


def build(image: Image, target: Drive, platform: str, opts: Options) -> list[Step]:
    """Return every step of flashing image onto target, in order (cleanups last)."""
    device = not target.is_file
    steps: list[Step] = []
    if device and not system.is_root():
        steps.append(Step("sudo", "sudo -v    # asks for your password once, for the steps that need root"))
    if opts.download_url:
        steps.append(_download_step(image, opts.download_url))
    share = _share_volume(target, platform, opts)
    if share:
        steps.append(Step("run", "share the card (the Read-only fix)", readonly.share_argv(share), True))
    steps += unmount_steps(target, platform)
    steps += dd_steps(image, target, platform, opts) if opts.dd else [write_step(image, target, platform)]
    if opts.verify:
        what = f"{human_size(image.size)} " if image.size else ""
        steps.append(Step("verify", f"read back {what}from {target.raw_path} and compare SHA-256"))
    if opts.config:
        steps.append(Step("customize", f"bake {opts.config} into the card (appliance.image)"))
    if opts.eject and device and target.kind != "loop":
        steps.append(eject_step(target, platform))
    if share:
        steps.append(Step("run", "remove the share again", readonly.unshare_argv(share), True, cleanup=True))
    return [s for s in steps if not s.cleanup] + [s for s in steps if s.cleanup]


def _download_step(image: Image, url: str) -> Step:
    """Return the download step (the file is checked against its SHA-256 before use)."""
    return Step("download", f"download {url} to {image.path} and check its published SHA-256")


def _share_volume(target: Drive, platform: str, opts: Options) -> str:
    """Return the volume --fix-readonly shares, or "" when not asked or not on macOS."""
    if not opts.fix_readonly or platform != "darwin" or target.is_file:
        return ""
    volumes = readonly.mac_volumes(target)
    return volumes[0] if volumes else ""


def unmount_steps(target: Drive, platform: str) -> list[Step]:
    """Return the unmount of the whole disk (macOS) or of every mounted partition (Linux)."""
    if target.is_file:
        return []
    if platform == "darwin":
        return [mac_unmount_step(target)]
    return [Step("run", "", ["umount", m], True) for m in sorted(target.mountpoints, key=len)[::-1]]


def mac_unmount_step(target: Drive, why: str = "") -> Step:
    """Return `diskutil unmountDisk force`: as the user (macOS lets the console user unmount
    removable media), through sudo only if that is refused; forced, as Raspberry Pi Imager
    does, so Spotlight or a Finder window holding the volume cannot block it."""
    why = why or ("" if system.is_root() else "as you; through sudo only if macOS refuses")
    return Step("run", why, ["diskutil", "unmountDisk", "force", target.path], root_on_refusal=True)


def write_step(image: Image, target: Drive, platform: str) -> Step:
    """Return the streaming write step, describing how the target is opened."""
    how = {
        "raw": "",
        "xz": "xz, decompressed while writing, ",
        "gz": "gzip, decompressed while writing, ",
        "zip": f"{image.member} from the zip, decompressed while writing, ",
    }
    size = f"{human_size(image.size)} " if image.size else ""
    text = f"write {size}({how[image.kind]}{image.name}) to {target.raw_path} in "
    text += f"{BLOCK >> 20} MiB blocks"
    if target.block_size > 1:
        text += f", the last padded to {target.block_size} bytes"
    text += ", then fsync"
    if not target.is_file and not system.is_root():
        opener = system.quote(opener_argv(target.raw_path, open_mode(target, platform, True), "SOCKET"))
        text = f"{opener}    # opens the card as root; all else runs as you\n     {text}"
    return Step("write", text)


def dd_steps(image: Image, target: Drive, platform: str, opts: Options) -> list[Step]:
    """Return the --dd steps: decompress to a temporary file if needed, dd, sync."""
    steps: list[Step] = []
    source = image.path
    if image.kind != "raw":
        source = temp_image_path(image)
        steps.append(Step("decompress", f"decompress {image.path} to {source} (as you)", [source]))
    steps.append(Step("dd", "", dd_argv(source, target, platform), root=not target.is_file))
    if platform == "linux":
        steps.append(Step("run", "", ["sync"]))
    elif not target.is_file and (opts.verify or opts.config):
        # macOS mounts the card's volumes again as soon as dd closes the device: reading it
        # back or editing its FAT under a mounted volume would fail ("Resource busy") or worse.
        steps.append(mac_unmount_step(target, "macOS mounted the card again after dd"))
    if image.kind != "raw":
        steps.append(Step("cleanup", f"delete {source}", [source], cleanup=True))
    return steps


def eject_step(target: Drive, platform: str) -> Step:
    """Return the eject step (a failure only means the user pulls the card out by hand)."""
    if platform == "darwin":  # like unmountDisk, eject needs no root for removable media
        return Step("run", "", ["diskutil", "eject", target.path], optional=True, root_on_refusal=True)
    return Step("run", "", ["eject", target.path], True, optional=True)


def render(steps: list[Step]) -> str:
    """Return the numbered plan as --dry-run prints it."""
    return "\n".join(f"  {n}. {step.line()}" for n, step in enumerate(steps, 1))
