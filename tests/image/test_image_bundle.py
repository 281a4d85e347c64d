"""The offline bundle (issue 16): `--bundle DIR` puts a wheelhouse on the card as
appliance/wheels/*.whl, after checking it is complete for the Pi OS the image is and fits
on the boot partition with room to spare. Cards are read back with mtools; pip itself,
offline, is the referee of "complete"."""

from __future__ import annotations

import hashlib
import lzma
import re
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from image_support import Image, site_args
from wheelhouse_support import REPO, pip_resolves

from appliance.flash.cli import flash
from appliance.image import bundle, markers, wheels
from appliance.image.cli import image

TARGETS = {"bookworm": bundle.TARGETS["firstrun"], "trixie": bundle.TARGETS["cloud-init"]}


def _customize(card: Image, site: Path, *extra: str):
    return CliRunner().invoke(image, ["customize", str(card.path), *site_args(site, *extra)])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _card_wheels(card: Image) -> list[str]:
    listing = card.mdir("/appliance/wheels")
    return sorted(re.findall(r"(\S+\.whl)\s*$", listing, re.M))


def test_bundle_puts_every_wheel_on_the_card_and_reads_back(bookworm, site, pi_wheels, tmp_path):
    house = pi_wheels(tmp_path / "wheels")
    result = _customize(bookworm, site, "--bundle", str(house))
    assert result.exit_code == 0, result.output
    given = sorted(p.name for p in house.glob("*.whl"))
    assert _card_wheels(bookworm) == given
    for name in given:  # every wheel byte for byte, as mtools reads it
        assert bookworm.mtype(f"appliance/wheels/{name}") == (house / name).read_bytes(), name
    assert f"wrote appliance/wheels/ ({len(given)} wheels" in result.output
    assert "Raspberry Pi OS Bookworm, CPython 3.11 on aarch64" in result.output
    assert "wrote appliance/wheels/appliance" not in result.output  # one line, not one per wheel
    assert "Done:" in result.output
    bookworm.fsck(tmp_path)


@pytest.mark.parametrize("os_name, minor", [("bookworm", 11), ("trixie", 13)])
def test_bundle_check_agrees_with_pip_offline(pi_wheels, tmp_path, os_name, minor):
    target = TARGETS[os_name]
    house = pi_wheels(tmp_path / "wheels", minor)
    found = bundle.Wheelhouse(str(house), REPO).check([target])
    done = pip_resolves(house, target.python, tmp_path / "pip")
    assert done.returncode == 0, done.stderr
    by_pip = {wheels.parse_name(p).name for p in (tmp_path / "pip").glob("*.whl")}
    assert set(found.chosen) == by_pip
    assert found.missing == []


def test_bundle_for_bookworm_is_refused_for_a_trixie_image(trixie, site, pi_wheels, tmp_path):
    house = pi_wheels(tmp_path / "wheels", 11)
    before = _digest(trixie.path)
    result = _customize(trixie, site, "--bundle", str(house))
    assert result.exit_code == 1
    assert (
        f"--bundle {house} is not complete for Raspberry Pi OS Trixie (CPython 3.13, aarch64)"
        in result.output
    )
    assert "is for another Python or platform, not CPython 3.13 on aarch64" in result.output
    assert "--python-version 3.13" in result.output and "--python-version 3.11" not in result.output
    assert _digest(trixie.path) == before  # nothing written
    assert pip_resolves(house, "3.13", tmp_path / "pip").returncode != 0  # pip agrees
    fitting = _customize(trixie, site, "--bundle", str(pi_wheels(tmp_path / "w313", 13)))
    assert fitting.exit_code == 0, fitting.output
    assert "Raspberry Pi OS Trixie, CPython 3.13 on aarch64" in fitting.output


def test_bundle_missing_dependencies_are_named_with_how_to_make_the_folder(
    bookworm, site, pi_wheels, tmp_path
):
    house = pi_wheels(tmp_path / "wheels", 11, leave_out=("sqlalchemy", "werkzeug"))
    before = _digest(bookworm.path)
    result = _customize(bookworm, site, "--bundle", str(house))
    assert result.exit_code == 1
    out = result.output
    assert "nothing was written" in out
    assert "  - sqlalchemy==2.1.9 (needed by appliance)" in out
    assert "  - werkzeug==3.1.9 (needed by flask)" in out
    assert f"pip wheel --no-deps --ignore-requires-python -w {house} ." in out
    assert f'-d {house} "{house}/appliance-0.1.0-py3-none-any.whl[pi]"' in out
    assert "pip download --only-binary=:all: --python-version 3.11 --implementation cp" in out
    assert "Traceback" not in out
    assert _digest(bookworm.path) == before
    assert pip_resolves(house, "3.11", tmp_path / "pip").returncode != 0  # pip agrees


def test_bundle_without_the_appliance_wheel_is_refused(bookworm, site, pi_wheels, tmp_path):
    house = pi_wheels(tmp_path / "wheels")
    for own in house.glob("appliance-*.whl"):
        own.unlink()
    result = _customize(bookworm, site, "--bundle", str(house))
    assert result.exit_code == 1
    assert "  - appliance==0.1.0 (the appliance's own wheel, of this checkout)" in result.output


def test_bundle_empty_folder_says_it_holds_no_wheels(bookworm, site, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "sqlalchemy-2.1.9.tar.gz").write_bytes(b"not a wheel")
    result = _customize(bookworm, site, "--bundle", str(empty))
    assert result.exit_code == 1
    assert "It holds no wheels (*.whl) at all." in result.output
    assert "It holds source archives (sqlalchemy-2.1.9.tar.gz)" in result.output


def test_bundle_that_does_not_fit_the_boot_partition_is_refused(bookworm, site, pi_wheels, tmp_path):
    house = pi_wheels(tmp_path / "wheels")
    ballast = house / "ballast-1.0-py3-none-any.whl"  # compatible, so it would be copied
    with zipfile.ZipFile(ballast, "w", zipfile.ZIP_STORED) as z:
        z.writestr("ballast-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: ballast\nVersion: 1.0\n")
        z.writestr("ballast.bin", bytes(30 * 1000 * 1000))
    before = _digest(bookworm.path)
    result = _customize(bookworm, site, "--bundle", str(house))
    assert result.exit_code == 1
    assert "does not fit on the boot partition with room to spare" in result.output
    assert "kept free for kernel and firmware updates" in result.output
    assert _digest(bookworm.path) == before


def test_bundle_left_out_the_next_time_removes_the_wheels(bookworm, site, pi_wheels, tmp_path):
    house = pi_wheels(tmp_path / "wheels")
    assert _customize(bookworm, site).exit_code == 0
    free = _free(bookworm)  # with the payload, without wheels
    assert _customize(bookworm, site, "--bundle", str(house)).exit_code == 0
    assert _free(bookworm) < free - sum(p.stat().st_size for p in house.glob("*.whl"))
    result = _customize(bookworm, site)
    assert result.exit_code == 0, result.output
    assert "removed appliance/wheels/ (left from an earlier run)" in result.output
    with pytest.raises(subprocess.CalledProcessError):  # no folder: the Pi installs from PyPI
        bookworm.mdir("/appliance/wheels")
    assert abs(_free(bookworm) - free) < 64 * 1024  # the wheels' room is free again
    bookworm.fsck(tmp_path)


def _free(card: Image) -> int:
    return int(re.search(r"([\d ]+) bytes free", card.mdir()).group(1).replace(" ", ""))


def test_bundle_with_a_stale_appliance_wheel_warns(bookworm, site, pi_wheels, tmp_path):
    house = pi_wheels(tmp_path / "wheels")
    (own,) = house.glob("appliance-*.whl")
    stale = tmp_path / own.name
    with zipfile.ZipFile(own) as src, zipfile.ZipFile(stale, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("/RECORD"):  # as if appliance/cli.py had other contents
                data = re.sub(rb"(appliance/cli\.py,sha256=)[^,]+", rb"\1stale", data)
            dst.writestr(item, data)
    stale.replace(own)
    result = _customize(bookworm, site, "--bundle", str(house))
    assert result.exit_code == 0, result.output
    assert "warning: the appliance wheel in" in result.output
    assert (
        "e.g. appliance/cli.py" in result.output
        and "pip wheel --no-deps --ignore-requires-python -w" in result.output
    )


# -- appliance flash --bundle: checked against the image before the card is touched ----------


def _xz(card: Image, tmp_path: Path) -> Path:
    path = tmp_path / "raspios.img.xz"
    path.write_bytes(lzma.compress(card.path.read_bytes(), preset=0))
    return path


def _flash(xz: Path, target: Path, site: Path, *extra: str):
    args = ["--image", str(xz), "--device", str(target), "--yes", "--no-eject", *site_args(site, *extra)]
    return CliRunner().invoke(flash, args)


def test_flash_bundle_writes_the_wheels_after_the_image(bookworm, site, pi_wheels, tmp_path):
    house = pi_wheels(tmp_path / "wheels")
    target = tmp_path / "out.img"
    result = _flash(_xz(bookworm, tmp_path), target, site, "--bundle", str(house))
    assert result.exit_code == 0, result.output
    assert "appliance baked in" in result.output and "wrote appliance/wheels/" in result.output
    card = Image(target, bookworm.offset, bookworm.fat)
    assert _card_wheels(card) == sorted(p.name for p in house.glob("*.whl"))
    (own,) = house.glob("appliance-*.whl")
    assert card.mtype(f"appliance/wheels/{own.name}") == own.read_bytes()
    card.fsck(tmp_path)


def test_flash_bundle_for_the_wrong_pi_os_is_refused_before_writing(trixie, site, pi_wheels, tmp_path):
    house = pi_wheels(tmp_path / "wheels", 11)
    target = tmp_path / "out.img"
    result = _flash(_xz(trixie, tmp_path), target, site, "--bundle", str(house))
    assert result.exit_code == 1
    assert (
        "Not written: --bundle" in result.output and "Raspberry Pi OS Trixie (CPython 3.13" in result.output
    )
    assert not target.exists()  # the image's boot partition was read first, from the .xz


def test_flash_bundle_needs_config(tmp_path, pi_wheels):
    house = pi_wheels(tmp_path / "wheels")
    result = CliRunner().invoke(flash, ["--image", "x.img", "--device", "y.img", "--bundle", str(house)])
    assert result.exit_code == 2 and "--bundle" in result.output and "--config" in result.output


def test_flash_dry_run_with_bundle_checks_and_changes_nothing(bookworm, site, pi_wheels, tmp_path):
    house = pi_wheels(tmp_path / "wheels", leave_out=("paramiko",))
    target = tmp_path / "out.img"
    result = _flash(_xz(bookworm, tmp_path), target, site, "--bundle", str(house), "--dry-run")
    assert result.exit_code == 1 and "paramiko==5.1.0 (needed by appliance)" in result.output
    assert not target.exists()


# -- the pieces: tags, markers, versions ---------------------------------------------------


@pytest.mark.parametrize(
    "name, bookworm, trixie",
    [
        ("x-1.0-py3-none-any.whl", True, True),
        ("x-1.0-py2.py3-none-any.whl", True, True),
        ("x-1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", True, False),
        ("x-1.0-cp313-cp313-manylinux_2_28_aarch64.whl", False, True),
        ("x-1.0-cp38-abi3-manylinux_2_34_aarch64.whl", True, True),
        ("x-1.0-cp311-cp311-manylinux_2_39_aarch64.whl", False, False),  # newer glibc than Bookworm's
        ("x-1.0-cp313-cp313-manylinux_2_39_aarch64.whl", False, True),
        ("x-1.0-cp311-cp311-musllinux_1_2_aarch64.whl", False, False),
        ("x-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", False, False),
        ("x-1.0-cp311-cp311-linux_armv7l.whl", False, False),
        ("x-1.0-cp311-cp311-linux_aarch64.whl", True, False),
        ("x-1.0-cp313-cp313t-manylinux_2_28_aarch64.whl", False, False),  # free-threaded build
    ],
)
def test_wheel_tags_fit_the_pi_os(name, bookworm, trixie):
    wheel = wheels.parse_name(Path(name))
    assert wheel.fits(TARGETS["bookworm"]) is bookworm
    assert wheel.fits(TARGETS["trixie"]) is trixie


@pytest.mark.parametrize(
    "marker, bookworm",
    [
        ('python_version < "3.11"', False),
        ('python_version >= "3.8" and platform_machine == "aarch64"', True),
        (
            'sys_platform == "win32" or (platform_system == "Linux" and implementation_name == "cpython")',
            True,
        ),
        ("extra == 'pi'", False),
        ('platform_machine in "x86_64 aarch64 ppc64le"', True),
        ('python_full_version >= "3.11.0" and python_version != "3.12"', True),
    ],
)
def test_markers_are_evaluated_for_the_pi(marker, bookworm):
    assert markers.evaluate(marker, TARGETS["bookworm"].environment()) is bookworm


@pytest.mark.parametrize(
    "version, spec, ok",
    [
        ("2.1.9", ">=2.0", True),
        ("1.4.54", ">=2.0", False),
        ("0.5.1", "<0.6,>=0.5.1", True),
        ("2.0.1.post3", "==2.0.1.post3", True),
        ("2.0.1.post3", ">2.0.1", True),
        ("3.0rc1", ">=3.0", False),
        ("3.9.2", "~=3.9", True),
        ("4.0", "~=3.9", False),
        ("2.2.0", "==2.*", True),
    ],
)
def test_versions_compare_as_pip_does(version, spec, ok):
    assert markers.satisfies(version, spec) is ok


def test_requirements_old_and_new_style_are_read():
    old = wheels.parse_requirement("paramiko (<6,>=3.4) ; extra == 'pi'")
    new = wheels.parse_requirement('luma.core[pil]>=2.4; python_version >= "3.8"')
    assert (old.name, old.specifiers) == ("paramiko", "<6,>=3.4")
    assert old.wanted(TARGETS["bookworm"], ("pi",)) and not old.wanted(TARGETS["bookworm"])
    assert (new.name, new.extras, new.specifiers) == ("luma-core", ("pil",), ">=2.4")


def test_flash_dry_run_says_which_wheels_would_go_on_the_card(bookworm, site, pi_wheels, tmp_path):
    house = pi_wheels(tmp_path / "wheels")
    target = tmp_path / "out.img"
    result = _flash(_xz(bookworm, tmp_path), target, site, "--bundle", str(house), "--dry-run")
    assert result.exit_code == 0, result.output
    count = len(list(house.glob("*.whl")))
    assert (
        f"bundle: {count} wheels" in result.output
        and "complete for Raspberry Pi OS Bookworm" in result.output
    )
    assert not target.exists() and not (site / "appliance.token").exists()
