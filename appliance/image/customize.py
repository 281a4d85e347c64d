"""Customize an image file or a written card in place: ``customize_target``.

Works on anything holding an MBR disk image (a ``.img`` file, ``/dev/rdiskN``, ``/dev/sdX``):
the FAT boot partition is found from the partition table and edited through an offset,
then every written file is read back from the medium and compared.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from . import apitoken, boot_format, bootfiles, bundle, cloudinit, firstrun
from .appconfig import BakedConfig, read_config
from .blockdev import BlockDevice
from .errors import ImageError, IncompleteCardError, VerifyError
from .fat import FatVolume
from .mbr import boot_partition
from .payload import PAYLOAD_DIR, BootFile, payload, source_root, template
from .peek import BootPeek, peek_path
from .report import CustomizeReport, WrittenFile
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
    wheelhouse: bundle.Wheelhouse | None = None  # --bundle, checked for the image's Pi OS
    wheels: bundle.Found | None = None  # what it gives that Pi OS (or either, when not known yet)

    @property
    def missing(self) -> list[str]:
        """Return what the card would lack to boot into a working appliance."""
        return list(self.settings.missing)

    def notes(self) -> list[str]:
        """Return what customizing will add (for --dry-run): the wheels, the token and its copy."""
        out = []
        if self.wheels is not None:
            found = self.wheels
            out.append(
                f"bundle: {len(found.wheels)} wheels ({found.size / bundle.MB:.1f} MB) go to "
                f"{bundle.WHEELS_DIR}/, complete for {found.target.os_name} (CPython "
                f"{found.target.python}); first boot installs from them without internet"
            )
        token = self.settings.token
        if token is not None and token.reused:
            out.append(f"api.token: the token saved at {token.path} goes on the card")
        elif token is not None:
            out.append(f"api.token: a new token will be generated; its copy goes to {token.path} (mode 0600)")
        return out


def check_card(
    config_file: str, options: CustomizeOptions | None = None, boot: BootPeek | None = None
) -> CardPlan:
    """Validate the config, every option and every file; refuse an incomplete card.

    Raises IncompleteCardError with one line per missing piece (and the option that
    supplies it) unless ``options.allow_incomplete``. ``boot``: what the image's boot
    partition says, when it could be read before writing (checks a --bundle precisely).
    """
    options = options or CustomizeOptions()
    config = read_config(config_file)
    settings = resolve(options, config)
    listed = boot_format.listed(options.listed_format)  # an unknown init_format is refused here
    plan = CardPlan(config_file, options, config, settings, source_root())
    if options.bundle_dir:
        _check_bundle(plan, expected_format(options.format, listed, boot), boot)
    if plan.missing and not options.allow_incomplete:
        lines = "\n".join(f"  - {m}" for m in plan.missing)
        raise IncompleteCardError(
            f"the card would not boot into a working appliance; nothing was written. Missing:\n{lines}\n"
            "Give what is missing, or add --allow-incomplete to write the card anyway."
        )
    return plan


def expected_format(forced: str, listed: str, boot: BootPeek | None) -> str:
    """Return the first-boot format as ``boot_format.choose`` will pick it ("" when unknown yet)."""
    if forced not in ("", "auto"):
        return forced
    return listed or (boot.format if boot else "")


def _check_bundle(plan: CardPlan, fmt: str, boot: BootPeek | None) -> None:
    """Check the wheelhouse for the image's Pi OS (either, when not known before writing)."""
    house = bundle.Wheelhouse(plan.options.bundle_dir, plan.root)
    targets = [bundle.target_for(fmt)] if fmt else list(bundle.TARGETS.values())
    plan.wheelhouse, plan.wheels = house, house.check(targets)
    if boot is not None:
        bundle.check_fits(plan.wheels, boot.volume, bundle.PAYLOAD_ALLOWANCE)
    else:
        bundle.check_size_without_peek(plan.wheels)


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
    if plan is None:
        wanted = options or CustomizeOptions()
        plan = check_card(config_file, wanted, peek_path(path) if wanted.bundle_dir else None)
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
        files += _wheels(plan, fmt, vol, files, report)
        if settings.token is not None:  # this machine's copy first: a card nobody can act on is worse
            apitoken.save(settings.token)
        report.removed = _write(vol, files, _stale(vol, fmt, settings))
        vol.flush()
        dev.forget()
        _verify(FatVolume(dev, part.start), files)
    report.files = [WrittenFile(f.path, len(f.data), f.secret, f.note) for f in files]
    report.verified = True
    report.warnings = config.warnings + settings.warnings + report.warnings
    report.missing = list(settings.missing)
    if settings.token is not None:
        report.token = settings.token.lines(_page_host(settings), _page_port(config))
        report.token_copy = settings.token.as_dict()
    return report


def _wheels(plan: CardPlan, fmt: str, vol: FatVolume, files: list[BootFile], report) -> list[BootFile]:
    """Return the wheels for the Pi OS this image is, checked to fit; nothing without --bundle."""
    if plan.wheelhouse is None:
        return []
    found = plan.wheelhouse.check([bundle.target_for(fmt)])  # now the image's own Pi OS
    ours = sum(len(f.data) for f in files if f.path.startswith(PAYLOAD_DIR + "/"))
    bundle.check_fits(found, bundle.space_of(vol), ours)
    report.bundle = bundle.describe(found)
    report.warnings += found.warnings
    return bundle.boot_files(found)


def _page_host(s: Settings) -> str:
    """Return the name the status page is reached by on the LAN (mDNS), for the usage line."""
    return f"{s.hostname}.local" if s.hostname else "PI-ADDRESS"


def _page_port(config: BakedConfig) -> int:
    web = config.data.get("web") if isinstance(config.data.get("web"), dict) else {}
    port = (web or {}).get("port", 8080)
    return port if isinstance(port, int) else 8080


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
    for folder in (PAYLOAD_DIR, bundle.WHEELS_DIR):
        if vol.find(folder) is None:
            continue
        for entry in vol.listdir(folder):
            path = f"{folder}/{entry.name}"
            if not entry.is_dir and path.casefold() not in planned:
                vol.delete(path)  # e.g. a secret, or a wheel, this run no longer carries
                removed.append(path)
    wheels = bundle.WHEELS_DIR.casefold() + "/"
    if not any(p.startswith(wheels) for p in planned) and vol.rmdir(bundle.WHEELS_DIR):
        removed.append(bundle.WHEELS_DIR + "/")  # an empty folder would still mean "install offline"
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
