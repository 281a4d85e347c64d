"""`appliance flash --config`: everything checked before writing; the image streams to the
target, is verified, then its FAT is customized through the flasher's open descriptor and
read back (BRIEF 9). "Done" only for a complete card."""

from __future__ import annotations

import hashlib
import lzma
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from image_support import Image

from appliance.flash.cli import flash


def card_args(s, *, without: tuple = ()) -> list:
    """Return the options that make a complete card from the throwaway secrets ``s``."""
    given = {
        "--user": "admin",
        "--ssh-key": str(s.pubkey),
        "--hostname": "appliance-site1",
        "--timezone": "Europe/London",
        "--tunnel-key": str(s.tunnel_key),
        "--known-hosts": str(s.known_hosts),
        "--source-password-file": str(s.source_password),
    }
    out = ["--config", str(s.config)]
    for flag, value in given.items():
        if flag not in without:
            out += [flag, value]
    return out


def _flash(image, target, *args):
    return CliRunner().invoke(
        flash, ["--image", str(image), "--device", str(target), "--yes", "--no-eject", *args]
    )


@pytest.fixture
def xz(bookworm, tmp_path):
    path = tmp_path / "raspios.img.xz"
    path.write_bytes(lzma.compress(bookworm.path.read_bytes(), preset=0))
    return path


def test_image_flash_with_config_bakes_a_complete_card(bookworm, xz, secrets, tmp_path):
    original = bookworm.path.read_bytes()
    target = tmp_path / "out.img"
    result = _flash(xz, target, *card_args(secrets))
    assert result.exit_code == 0, result.output
    assert "Done: wrote" in result.output and "appliance baked in" in result.output
    assert "INCOMPLETE" not in result.output
    card = Image(target, bookworm.offset, bookworm.fat)
    assert card.mtype("appliance/appliance.toml") == secrets.config.read_bytes()
    assert card.mtype("appliance/id_ed25519") == secrets.tunnel_key.read_bytes()
    assert card.mtype("appliance/known_hosts") == secrets.known_hosts.read_bytes()
    assert secrets.source_secret.encode() in card.mtype("appliance/source.password")
    assert b"APPLIANCE_TIMEZONE='Europe/London'" in card.mtype("appliance/firstrun.env")
    assert b"systemd.run=/boot/firstrun.sh" in card.mtype("cmdline.txt")
    assert card.mtype("cmdline.txt").count(b"\n") <= 1
    # only the boot partition changed: the root filesystem is byte-identical to the image
    root = slice(bookworm.offset + 64 * 1024 * 1024, None)
    assert hashlib.sha256(target.read_bytes()[root]).digest() == hashlib.sha256(original[root]).digest()
    card.fsck(tmp_path)
    for secret in (secrets.source_secret, secrets.tunnel_key.read_text().splitlines()[1]):
        assert secret not in result.output


def test_image_flash_refuses_an_incomplete_card_before_writing(xz, secrets, tmp_path):
    target = tmp_path / "out.img"
    result = _flash(xz, target, "--config", str(secrets.config))
    assert result.exit_code == 1
    assert not target.exists()  # refused before the first byte
    out = result.output
    assert "Not written" in out and "--allow-incomplete" in out
    missing = [line for line in out.splitlines() if line.lstrip().startswith("- ")]
    assert len(missing) == 4, out
    for option in ("--user NAME", "--tunnel-key FILE", "--known-hosts FILE", "--source-password-file FILE"):
        assert sum(option in line for line in missing) == 1, option


def test_image_flash_allow_incomplete_writes_and_says_what_is_missing(bookworm, xz, secrets, tmp_path):
    target = tmp_path / "out.img"
    args = card_args(secrets, without=("--source-password-file",))
    result = _flash(xz, target, *args, "--allow-incomplete")
    assert result.exit_code == 0, result.output
    assert "Done" not in result.output
    tail = result.output[result.output.index("Written, but not done") :]
    assert "INCOMPLETE" in tail and "--source-password-file FILE" in tail
    card = Image(target, bookworm.offset, bookworm.fat)
    assert card.mtype("appliance/appliance.toml") == secrets.config.read_bytes()


def test_image_flash_customization_options_need_config(xz, secrets, tmp_path):
    target = tmp_path / "out.img"
    result = _flash(xz, target, "--user", "admin", "--ssh-key", str(secrets.pubkey))
    assert result.exit_code == 2 and "--user, --ssh-key" in result.output and "need --config" in result.output
    assert not target.exists()


def test_image_flash_dry_run_checks_the_card_and_writes_nothing(xz, secrets, tmp_path):
    target = tmp_path / "out.img"
    result = _flash(xz, target, "--dry-run", *card_args(secrets))
    assert result.exit_code == 0, result.output
    assert "Card: complete" in result.output and "bake" in result.output
    assert not target.exists()
    bad = tmp_path / "hosts"
    bad.write_text("other.example.com " + secrets.known_hosts.read_text().split(" ", 1)[1])
    result = _flash(
        xz, target, "--dry-run", *card_args(secrets, without=("--known-hosts",)), "--known-hosts", str(bad)
    )
    assert result.exit_code == 1 and "pins no key for bastion.example.com" in result.output


def test_image_flash_refuses_to_write_an_image_onto_itself(bookworm):
    before = bookworm.path.read_bytes()
    result = CliRunner().invoke(
        flash, ["--image", str(bookworm.path), "--device", str(bookworm.path), "--yes"]
    )
    assert result.exit_code == 1 and "the image file itself" in result.output
    assert bookworm.path.read_bytes() == before


def test_image_flash_without_config_writes_the_image_unchanged(bookworm, tmp_path):
    target = tmp_path / "written.img"
    result = _flash(bookworm.path, target)
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[: bookworm.path.stat().st_size] == bookworm.path.read_bytes()


# -- --dd with customization on macOS, through the fake diskutil and sudo of tests/flash ----


@pytest.fixture
def mac(tmp_path, monkeypatch):
    """The Mac of the captured diskutil fixtures (USB stick disk2), as an ordinary user."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "flash"))
    from flash_support import FakeSystem

    from appliance.flash import system

    monkeypatch.setattr(system, "is_root", lambda: False)
    monkeypatch.setenv("APPLIANCE_FLASH_PROGRESS", "plain")
    return FakeSystem(tmp_path / "fake", monkeypatch).darwin("usb-stick")


def test_image_flash_dd_with_config_unmounts_again_before_reopening(mac, bookworm, xz, secrets):
    disk = mac.disk("rdisk2", 15682240512)
    result = CliRunner().invoke(
        flash, ["--dd", "--image", str(xz), "--device", "disk2", "--yes", *card_args(secrets)]
    )
    assert result.exit_code == 0, result.output
    steps = [s for s in mac.mutating() if not s.startswith("sudo -v")]
    kinds = [
        "unmount" if "unmountDisk force /dev/disk2" in s else "dd" if s.startswith("sudo dd ") else
        "open " + s.split("opener.py ")[1].split()[0] if "opener.py" in s else
        "eject" if "diskutil eject /dev/disk2" in s else s
        for s in steps
    ]  # fmt: skip
    # macOS mounts the card again once dd closes it: unmount (forced) before verify + customize
    assert kinds == ["unmount", "dd", "unmount", "open rw", "eject"], steps
    assert [s for s in steps if "unmountDisk" in s] == [
        "diskutil unmountDisk force /dev/disk2"
    ] * 2  # no sudo
    card = Image(disk, bookworm.offset, bookworm.fat)
    assert card.mtype("appliance/appliance.toml") == secrets.config.read_bytes()
    assert "Done: wrote" in result.output


# -- the first-boot format from the OS list's init_format -----------------------------------


@pytest.fixture
def os_list(xz, bookworm, tmp_path, monkeypatch):
    """Serve an Imager-style OS list and the image on 127.0.0.1; return a function setting init_format."""
    import json
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    www = tmp_path / "www"
    www.mkdir()
    (www / "raspios.img.xz").write_bytes(xz.read_bytes())
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv("APPLIANCE_OS_LIST_URL", f"{base}/list.json")
    monkeypatch.setenv("APPLIANCE_FLASH_CACHE", str(tmp_path / "cache"))

    def publish(init_format: str) -> None:
        entry = {
            "name": "Raspberry Pi OS Lite (64-bit)",
            "url": f"{base}/raspios.img.xz",
            "image_download_sha256": hashlib.sha256(xz.read_bytes()).hexdigest(),
            "extract_sha256": hashlib.sha256(bookworm.path.read_bytes()).hexdigest(),
            "extract_size": bookworm.path.stat().st_size,
            "init_format": init_format,
        }
        (www / "list.json").write_text(json.dumps({"os_list": [entry]}))

    yield publish
    httpd.shutdown()
    httpd.server_close()


def test_image_flash_takes_the_first_boot_format_from_the_os_list(os_list, bookworm, secrets, tmp_path):
    os_list("cloudinit")  # the list's word wins over the boot partition's look (no seed files here)
    target = tmp_path / "out.img"
    args = ["--os", "lite 64", "--device", str(target), "--yes", "--no-eject", *card_args(secrets)]
    result = CliRunner().invoke(flash, args)
    assert result.exit_code == 0, result.output
    assert 'init_format "cloudinit"' in result.output
    card = Image(target, bookworm.offset, bookworm.fat)
    assert card.mtype("user-data").startswith(b"#cloud-config") and b"ds=nocloud" in card.mtype("cmdline.txt")


def test_image_flash_refuses_an_unknown_init_format_before_downloading(os_list, secrets, tmp_path):
    os_list("cloudinit-v9")
    target = tmp_path / "out.img"
    args = ["--os", "lite 64", "--device", str(target), "--yes", *card_args(secrets)]
    result = CliRunner().invoke(flash, args)
    assert result.exit_code == 1 and '"cloudinit-v9"' in result.output and "does not know" in result.output
    assert not target.exists() and not (tmp_path / "cache" / "raspios.img.xz").exists()
