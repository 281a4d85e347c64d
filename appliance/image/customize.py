"""Customize an image file or a written card in place: ``customize_target``.

Works on anything holding an MBR disk image (a ``.img`` file, ``/dev/rdiskN``, ``/dev/sdX``):
the FAT boot partition is found from the partition table and edited through an offset,
then every written file is read back from the medium and compared.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from . import boot_format, bootfiles, cloudinit, firstrun
from .appconfig import BakedConfig, read_config
from .blockdev import BlockDevice
from .errors import ImageError, IncompleteCardError, VerifyError
from .fat import FatVolume
from .mbr import boot_partition
from .payload import PAYLOAD_DIR, BootFile, payload, source_root, template
from .settings import CustomizeOptions, Settings, resolve

OURS = b"`appliance image customize`"  # in every first-boot file this module writes
__all__ = ["CardPlan", "CustomizeOptions", "CustomizeReport", "WrittenFile", "check_card", "customize_target"]


@dataclass
class CardPlan:
    """Everything checked before the first byte is written: the config, the settings, the source."""

    config_file: str
    options: CustomizeOptions
    config: BakedConfig
    settings: Settings
    root: Path  # the source checkout: templates and the source to install

    @property
    def missing(self) -> list[str]:
        """Return what the card would lack to boot into a working appliance."""
        return list(self.settings.missing)


def check_card(config_file: str, options: CustomizeOptions | None = None) -> CardPlan:
    """Validate the config, every option and every file; refuse an incomplete card.

    Raises IncompleteCardError with one line per missing piece (and the option that
    supplies it) unless ``options.allow_incomplete``.
    """
    options = options or CustomizeOptions()
    config = read_config(config_file)
    settings = resolve(options, config)
    boot_format.listed(options.listed_format)  # an unknown init_format is refused here
    plan = CardPlan(config_file, options, config, settings, source_root())
    if plan.missing and not options.allow_incomplete:
        lines = "\n".join(f"  - {m}" for m in plan.missing)
        raise IncompleteCardError(
            f"the card would not boot into a working appliance; nothing was written. Missing:\n{lines}\n"
            "Give what is missing, or add --allow-incomplete to write the card anyway."
        )
    return plan


@dataclass
class WrittenFile:
    path: str
    size: int
    secret: bool
    note: str = ""


@dataclass
class CustomizeReport:
    """What was written where; never any secret's contents."""

    target: str
    format: str
    format_reason: str
    partition: int
    offset: int
    fat: str
    files: list[WrittenFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    verified: bool = False

    @property
    def complete(self) -> bool:
        """Return True when the card lacks nothing to boot into a working appliance."""
        return not self.missing

    def lines(self) -> list[str]:
        """Return the report as lines for people."""
        how = (
            "firstrun.sh (Bookworm style)"
            if self.format == boot_format.FIRSTRUN
            else "cloud-init (Trixie style)"
        )
        where = f"boot partition {self.partition} ({self.fat}, at byte {self.offset})"
        out = [f"{self.target}: {where}", f"first boot by {how}: {self.format_reason}"]
        for f in self.files:
            out.append(f"  wrote {f.path} ({f.size} bytes{'; ' + f.note if f.note else ''})")
        out += [f"  removed {path} (left from an earlier run)" for path in self.removed]
        if self.verified:
            out.append(f"read back all {len(self.files)} files from the medium: identical")
        out += [f"warning: {w}" for w in self.warnings]
        if self.missing:
            out.append(
                "warning: INCOMPLETE (--allow-incomplete): the card will not boot into a "
                "working appliance; missing:"
            )
            out += [f"warning:   - {m}" for m in self.missing]
        return out

    def as_dict(self) -> dict[str, object]:
        """Return the report as plain data (for --json)."""
        return {
            "target": self.target,
            "format": self.format,
            "format_reason": self.format_reason,
            "partition": self.partition,
            "offset": self.offset,
            "fat": self.fat,
            "files": [vars(f) for f in self.files],
            "removed": list(self.removed),
            "warnings": list(self.warnings),
            "missing": list(self.missing),
            "complete": self.complete,
            "verified": self.verified,
        }


def customize_target(
    path: str,
    config_file: str,
    options: CustomizeOptions | None = None,
    fd: int | None = None,
    plan: CardPlan | None = None,
) -> CustomizeReport:
    """Customize the image or card at ``path`` to boot into the appliance; return the report.

    ``fd``: an already open, writable descriptor of ``path`` (the flasher's, opened as root),
    used instead of opening the path again; it is duplicated, so the caller keeps its own.
    ``plan``: the result of ``check_card`` made before writing (checked again otherwise).
    """
    plan = plan or check_card(config_file, options)
    options, config, settings, root = plan.options, plan.config, plan.settings, plan.root
    try:
        fh = os.fdopen(os.dup(fd), "r+b") if fd is not None else open(path, "r+b")
    except OSError as e:
        raise ImageError(
            f"cannot open {path} for writing: {e.strerror}"
            " (a card needs root: run with sudo; a file must be writable)"
        ) from None
    with fh:
        dev = BlockDevice(fh, writable=True)
        part = boot_partition(dev)
        vol = FatVolume(dev, part.start)
        fmt, why = boot_format.choose(vol, options.format, options.listed_format)
        report = CustomizeReport(path, fmt, why, part.number, part.start, f"FAT{vol.kind}")
        files = _plan(vol, fmt, settings, config, options, root, report)
        report.removed = _write(vol, files, _stale(vol, fmt, settings))
        vol.flush()
        dev.forget()
        _verify(FatVolume(dev, part.start), files)
    report.files = [WrittenFile(f.path, len(f.data), f.secret, f.note) for f in files]
    report.verified = True
    report.warnings = config.warnings + settings.warnings + report.warnings
    report.missing = list(settings.missing)
    return report


def _plan(
    vol: FatVolume,
    fmt: str,
    s: Settings,
    config: BakedConfig,
    options: CustomizeOptions,
    root,
    report: CustomizeReport,
) -> list[BootFile]:
    """Return every file to write, with cmdline.txt and config.txt edited."""
    files = payload(root, config.text, s.secrets, [config.targets.get("known_hosts", "")])
    if fmt == boot_format.FIRSTRUN:
        files.append(BootFile("firstrun.sh", template(root, "firstrun.sh")))
        files.append(
            BootFile(
                f"{PAYLOAD_DIR}/firstrun.env",
                firstrun.settings_env(s),
                True,
                "login and Wi-Fi settings for firstrun.sh: wiped at first boot",
            )
        )
        words = firstrun.cmdline_words(s.country)
    else:
        instance = options.instance_id or cloudinit.new_instance_id()
        files.append(
            BootFile("user-data", cloudinit.user_data(s), True, "holds the password hash, not the password")
        )
        files.append(BootFile("meta-data", cloudinit.meta_data(instance)))
        if s.wifi:
            files.append(
                BootFile(
                    "network-config",
                    cloudinit.network_config(s),
                    True,
                    "holds the Wi-Fi PSK; cloud-init keeps reading it",
                )
            )
        words = cloudinit.cmdline_words(instance, s.country)
    cmdline, notes = bootfiles.edit_cmdline(vol.read("cmdline.txt"), words)
    report.warnings += notes
    files.append(BootFile("cmdline.txt", cmdline))
    if vol.find("config.txt") is None:
        report.warnings.append(
            "the boot partition has no config.txt; I2C is switched on by install-on-pi at first boot instead"
        )
    else:
        files.append(BootFile("config.txt", bootfiles.enable_i2c(vol.read("config.txt"))))
    return files


def _stale(vol: FatVolume, fmt: str, s: Settings) -> list[str]:
    """Return the files an earlier run wrote that this one would not: the other first-boot
    format's, or a network-config with Wi-Fi settings no longer wanted."""
    names = list(boot_format.SEED_FILES) if fmt == boot_format.FIRSTRUN else ["firstrun.sh"]
    if fmt == boot_format.CLOUD_INIT and not s.wifi:
        names.append("network-config")
    ours = []
    for name in names:
        entry = vol.find(name)
        if entry is not None and not entry.is_dir and OURS in vol.read(name):
            ours.append(name)  # the image's own seed files are never touched
    return ours


def _write(vol: FatVolume, files: list[BootFile], stale: list[str]) -> list[str]:
    """Write ``files``, delete ``stale`` ones and payload files an earlier run left behind;
    return what was deleted."""
    vol.makedirs(PAYLOAD_DIR)
    planned = {f.path.casefold() for f in files}
    removed = [path for path in stale if vol.delete(path)]
    for entry in vol.listdir(PAYLOAD_DIR):
        path = f"{PAYLOAD_DIR}/{entry.name}"
        if not entry.is_dir and path.casefold() not in planned:
            vol.delete(path)  # e.g. a secret this run no longer carries
            removed.append(path)
    for f in files:
        parent = posixpath.dirname(f.path)
        if parent:
            vol.makedirs(parent)
        vol.write(f.path, f.data)
    return removed


def _verify(vol: FatVolume, files: list[BootFile]) -> None:
    """Read every written file back and compare it byte for byte."""
    for f in files:
        try:
            back = vol.read(f.path)
        except FileNotFoundError:
            back = None
        if back != f.data:
            raise VerifyError(
                f"{f.path} did not read back as written: the card or image may be "
                "failing; write it again (use a different card if this repeats)"
            )
