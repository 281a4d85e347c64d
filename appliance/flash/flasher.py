"""Running a flash plan: each step in order, cleanups always, Ctrl-C reported honestly."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.flash import customize, download, progress, rawdev, readonly, source, system
from appliance.flash.drive import Drive
from appliance.flash.errors import (
    ChecksumError,
    CommandError,
    FlashInterrupted,
    ImageError,
    WriteError,
)
from appliance.flash.plan import Options, Step
from appliance.flash.readback import verify
from appliance.flash.writer import WriteResult, open_and_copy, strategy


def _stderr(msg: str) -> None:
    """Print a progress message on stderr (stdout stays for --json and plans)."""
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


@dataclass
class Outcome:
    """What a finished flash did."""

    size: int = 0
    sha256: str = ""
    write_seconds: float = 0.0
    verify_seconds: float | None = None
    ejected: bool = False
    customized: bool = False
    missing: list[str] = field(default_factory=list)  # what an --allow-incomplete card lacks


class Flasher:
    """Runs the steps of one plan against one target."""

    def __init__(
        self,
        image: source.Image,
        target: Drive,
        platform: str,
        opts: Options,
        os_image: download.OsImage | None = None,
        say: Callable[[str], None] = _stderr,
    ) -> None:
        self.image, self.target, self.platform, self.opts = image, target, platform, opts
        self.os_image, self.say = os_image, say
        self.fd: int | None = None
        self.result: WriteResult | None = None
        self.outcome = Outcome()
        self.touched = False  # set once the target is opened for writing
        self.temp_dir = ""  # the private folder --dd made, and only that, is removed
        # Everything the card needs is checked now, before the first byte is written.
        self.card = customize.check(opts.config, opts.customize, image) if opts.config else None

    def run(self, steps: list[Step]) -> Outcome:
        """Run every step; cleanups run last, whatever happened."""
        try:
            for step in [s for s in steps if not s.cleanup]:
                self.say(f"- {step.line()}")
                getattr(self, "_" + step.kind)(step)
        except KeyboardInterrupt:
            raise FlashInterrupted(self._interrupted()) from None
        finally:
            self._close()
            for step in [s for s in steps if s.cleanup]:
                self._cleanup_step(step)
        return self.outcome

    def _interrupted(self) -> str:
        """Return the Ctrl-C message: what state the card is in."""
        if not self.touched:
            return f"Interrupted before anything was written: {self.target.id} is unchanged."
        if self.target.is_file:
            return f"Interrupted: {self.target.path} is incomplete; run the command again."
        return (
            f"Interrupted: the card in {self.target.id} is incomplete and will not boot. "
            "Run the command again to flash it (nothing else on this computer was changed)."
        )

    def _close(self) -> None:
        """Close the target if it is open."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _cleanup_step(self, step: Step) -> None:
        """Run a cleanup step, reporting (not raising) a failure."""
        try:
            self.say(f"- {step.line()}")
            getattr(self, "_" + step.kind)(step)
        except Exception as exc:  # a failed cleanup must not hide the real error
            self.say(f"  warning: {exc}")

    # Step handlers, one per Step.kind.

    def _sudo(self, step: Step) -> None:
        """Ask for the sudo password up front."""
        system.sudo_validate()

    def _download(self, step: Step) -> None:
        """Download the listed image into the cache (checked against its SHA-256)."""
        assert self.os_image is not None
        path = download.fetch_image(self.os_image, os.path.dirname(self.image.path), self.say)
        expected = self.image.expected_sha256
        self.image = source.inspect(path)
        self.image.expected_sha256 = expected

    def _run(self, step: Step) -> None:
        """Run a command; an optional one (eject) only warns when it fails."""
        self._close()  # eject fails while the card is still open
        try:
            try:
                system.run(step.argv, root=step.root, timeout=300)
            except CommandError:
                if not step.root_on_refusal or system.is_root():
                    raise
                self.say("  refused as you; asking sudo")
                system.run(step.argv, root=True, timeout=300)
        except CommandError as exc:
            if not step.optional:
                raise
            self.say(f"  warning: {exc} The data is written; remove the card by hand.")
        else:
            self.outcome.ejected |= "eject" in step.argv

    def _cleanup(self, step: Step) -> None:
        """Delete the temporary folder of --dd (only if this run made it)."""
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _open(self, write: bool) -> int:
        """Open the target (through sudo for a disk), explaining a refusal."""
        try:
            return rawdev.open_target(self.target, self.platform, write=write)
        except OSError as exc:
            raise readonly.open_error(self.target, exc, self.platform) from None

    def _write(self, step: Step) -> None:
        """Open the target and stream the image onto it."""
        if self.target.volume_readonly:
            self.say("  " + readonly.readonly_volume_note(self.target))
        self.touched = True
        self.fd = self._open(write=True)
        # A raw image is copied unhashed (as fast as dd); verify compares the card with it.
        how = strategy(self.image.kind, to_device=not self.target.is_file)
        self._copy(self.fd, self.target.block_size, "Writing", **how)
        if how["hashing"] or not self.opts.verify:
            self._check_published()

    def _copy(
        self, fd: int, block_size: int, desc: str, hashing: bool = True, writeback: bool = False
    ) -> None:
        """Stream the image into fd with a progress bar; keep the result."""
        bar = progress.bar(self.image.size, desc)
        try:
            self.result = open_and_copy(
                self.image.open,
                fd,
                block_size=block_size,
                progress=bar,
                hashing=hashing,
                writeback=writeback,
            )
        except source.DATA_ERRORS as exc:
            raise source.damaged(self.image, exc) from None
        finally:
            bar.close()
        self.outcome.size, self.outcome.sha256 = self.result.size, self.result.sha256
        self.outcome.write_seconds += self.result.seconds
        if self.image.size is not None and self.result.size != self.image.size:
            raise ImageError(
                f"{self.image.name} gave {self.result.size} bytes but says it holds "
                f"{self.image.size}: it is damaged. The card is incomplete; download the image "
                "again and flash again."
            )

    def _check_published(self) -> None:
        """Compare the written image with the SHA-256 the image list publishes for it."""
        want = self.image.expected_sha256
        if want and self.result and not self.result.sha256:
            self.result.sha256 = download.file_sha256(self.image.path, "Hashing image")
        if want and self.result and self.result.sha256 != want:
            raise ChecksumError(
                f"{self.image.name} decompressed to an image whose SHA-256 ({self.result.sha256})"
                f" is not the published one ({want}): the card holds the wrong data. Delete "
                f"{self.image.path} and run again to download it afresh."
            )

    def _decompress(self, step: Step) -> None:
        """Decompress the image to a private temporary file for --dd."""
        temp = step.argv[0]
        try:
            os.mkdir(os.path.dirname(temp), 0o700)  # fails if it exists: never reuse a stranger's
            self.temp_dir = os.path.dirname(temp)
            fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise WriteError(f"Could not create {temp} for --dd: {exc.strerror}.") from None
        try:
            self._copy(fd, 1, "Decompressing")
        except WriteError:
            raise WriteError(
                f"Decompressing to {temp} failed: is the disk holding it full? --dd needs room "
                "for the whole image; flash without --dd to decompress while writing."
            ) from None
        finally:
            os.close(fd)
        self._check_published()

    def _dd(self, step: Step) -> None:
        """Run the literal dd line."""
        # No Ctrl-T hint: dd's output is captured for the error message, so SIGINFO's
        # progress line would never reach the terminal.
        self.say("  dd prints nothing until it is done; this takes a few minutes.")
        self.touched = True
        done = system.run(step.argv, root=step.root, timeout=None)
        self.say("  " + done.stderr.decode(errors="replace").strip().replace("\n", "\n  "))
        if self.result is None:  # a raw image went to dd as it is: verify hashes the file
            self.result = WriteResult(os.path.getsize(self.image.path), "", 0.0)
            if not self.opts.verify:
                self._check_published()

    def _verify(self, step: Step) -> None:
        """Read the target back and compare SHA-256 with the image."""
        assert self.result is not None
        if self.fd is None:
            self.fd = self._open(write=bool(self.opts.config))
        bar = progress.bar(self.result.size, "Verifying")
        try:
            self.outcome.verify_seconds = verify(
                self.fd,
                self.result,
                block_size=self.target.block_size,
                progress=bar,
                image_path=self.image.path,
            )
        finally:
            bar.close()
        self.outcome.sha256 = self.result.sha256
        self._check_published()

    def _customize(self, step: Step) -> None:
        """Bake the config into the written card through appliance.image."""
        assert self.card is not None  # plan.py adds this step only with --config
        if self.fd is None:
            self.fd = self._open(write=True)
        report = customize.apply(self.card, self.target.raw_path, self.fd)
        for line in report.lines():
            self.say("  " + line)
        self.outcome.customized, self.outcome.missing = True, list(report.missing)
