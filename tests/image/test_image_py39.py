"""appliance.image runs on a stock Mac's Python 3.9, without the Pi-side dependencies."""

from __future__ import annotations

import glob
import json
import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from image_support import APP_TOML, REPO, Image, site_args

PI_SIDE = ("sqlalchemy", "psycopg2", "sshtunnel", "flask", "gpiozero", "luma", "waitress")


def python39():
    """Return a working Python 3.9 interpreter, or None."""
    candidates = [
        os.environ.get("PYTHON39", ""),
        shutil.which("python3.9") or "",
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9"))),
    ]
    for exe in candidates:
        if exe and subprocess.run([exe, "--version"], capture_output=True).returncode == 0:
            return exe
    return None


def test_py39_ruff_finds_no_newer_syntax():
    ruff = Path(sys.executable).with_name("ruff")
    out = subprocess.run(
        [str(ruff), "check", "--target-version", "py39", "appliance/image"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_py39_no_pi_side_imports(bookworm, secrets):
    code = (
        "import sys, appliance.image, appliance.image.cli\n"
        "from appliance.image import CustomizeOptions, customize_target\n"
        f"customize_target({str(bookworm.path)!r}, {str(secrets.config)!r}, "
        f"CustomizeOptions(user='admin', ssh_key_file={str(secrets.pubkey)!r}, allow_incomplete=True))\n"
        f"print([m for m in {PI_SIDE!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(python39() is None, reason="no Python 3.9 here")
def test_py39_compiles_every_module(tmp_path):
    files = sorted(str(p) for p in (REPO / "appliance/image").glob("*.py"))
    code = (
        "import os, sys, py_compile\n"
        "for f in sys.argv[2:]:\n"
        "    out = os.path.join(sys.argv[1], os.path.basename(f) + 'c')\n"
        "    py_compile.compile(f, cfile=out, doraise=True)\n"
    )
    out = subprocess.run([python39(), "-c", code, str(tmp_path), *files], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert len(list(tmp_path.glob("*.pyc"))) == len(files)


# -- the whole path on a real Python 3.9, with only what scripts/flash-sd installs --------

LAPTOP_PACKAGES = {"pip", "setuptools", "wheel", "click", "tqdm", "libpass", "tomli"}


@pytest.fixture(scope="session")
def flash_sd(tmp_path_factory):
    """Return a runner of scripts/flash-sd on Python 3.9, its virtualenv made by flash-sd itself.

    The venv is made the way a stock Mac gets it (first run: python3.9 -m venv, then pip
    installs appliance/flash/requirements.txt from PyPI); nothing of this test environment
    is linked in, and PYTHONPATH is not passed on.
    """
    python = python39()
    if python is None:
        pytest.skip("no Python 3.9 here")
    home = tmp_path_factory.mktemp("mac-home")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "APPLIANCE_FLASH_PYTHON": python,
        "APPLIANCE_FLASH_VENV": str(home / "venv-flash"),
        "APPLIANCE_FLASH_PROGRESS": "plain",
        "LC_ALL": "C.UTF-8",
    }
    env.update({k: v for k, v in os.environ.items() if k.startswith(("PIP_", "HTTP", "HTTPS", "NO_PROXY"))})
    env.update(
        {k: v for k, v in os.environ.items() if k.lower() in ("http_proxy", "https_proxy", "no_proxy")}
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["/bin/bash", str(REPO / "scripts/flash-sd"), *args],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=600,
        )

    first = run("--help")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "setting up" in first.stderr and "(Python 3.9, minimal)" in first.stderr
    run.venv = home / "venv-flash"  # type: ignore[attr-defined]
    return run


def test_py39_flash_sd_venv_holds_only_what_it_installs(flash_sd):
    venv = flash_sd.venv
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    version = subprocess.run([str(venv / "bin/python"), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("Python 3.9.")
    listed = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "list", "--format=json"], capture_output=True, text=True
    )
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"click", "tqdm", "libpass", "tomli"} <= names <= LAPTOP_PACKAGES, names
    site = venv / "lib/python3.9/site-packages"
    assert not [p for p in site.iterdir() if p.is_symlink()]  # nothing linked in
    for pth in site.glob("*.pth"):  # only setuptools' own distutils hook, no foreign paths
        assert "/" not in pth.read_text(), pth


def test_py39_flash_sd_bakes_a_complete_card(flash_sd, bookworm, secrets, tmp_path):
    xz = tmp_path / "raspios.img.xz"
    xz.write_bytes(lzma.compress(bookworm.path.read_bytes(), preset=0))
    target = tmp_path / "out.img"
    done = flash_sd(
        "--image", str(xz), "--device", str(target), "--yes", "--no-eject",
        "--config", str(secrets.config), "--user", "admin", "--ssh-key", str(secrets.pubkey),
        "--password-file", str(secrets.password_file), "--tunnel-key", str(secrets.tunnel_key),
        "--known-hosts", str(secrets.known_hosts), "--source-password-file", str(secrets.source_password),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Done: wrote" in done.stdout and "appliance baked in" in done.stdout
    card = Image(target, bookworm.offset, bookworm.fat)
    assert card.mtype("appliance/id_ed25519") == secrets.tunnel_key.read_bytes()
    env = card.mtype("appliance/firstrun.env").decode()
    assert "APPLIANCE_PASSWORD_HASH='$6$" in env and secrets.password not in env
    assert secrets.source_secret not in done.stdout + done.stderr


def test_py39_flash_sd_refuses_an_invalid_config_with_the_full_check(flash_sd, tmp_path):
    config = tmp_path / "appliance.toml"
    config.write_text(APP_TOML.replace("cursor =", "cursur ="))
    image = tmp_path / "x.img"
    image.write_bytes(bytes(4096))
    done = flash_sd(
        "--image", str(image), "--device", str(tmp_path / "out.img"), "--yes", "--config", str(config)
    )
    assert done.returncode == 1
    assert "tables[0].cursur" in done.stderr and "did you mean" in done.stderr  # `config check`'s own words
    assert not (tmp_path / "out.img").exists()


def test_py39_flash_sd_image_customize(flash_sd, trixie, secrets):
    done = flash_sd(
        "image", "customize", str(trixie.path), "--config", str(secrets.config), "--user", "admin",
        "--ssh-key", str(secrets.pubkey), "--tunnel-key", str(secrets.tunnel_key),
        "--known-hosts", str(secrets.known_hosts), "--source-password-file", str(secrets.source_password),
        "--timezone", "Europe/Berlin",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Done: {trixie.path} boots into a working appliance." in done.stdout
    assert b'timezone: "Europe/Berlin"' in trixie.mtype("user-data")


def test_py39_flash_sd_bakes_bundle_and_token(flash_sd, bookworm, site, pi_wheels, tmp_path):
    """The wheelhouse check (zip, METADATA, markers) and the generated token, on a real 3.9."""
    house = pi_wheels(tmp_path / "wheels")
    done = flash_sd("image", "customize", str(bookworm.path), *site_args(site, "--bundle", str(house)))
    assert done.returncode == 0, done.stdout + done.stderr
    names = sorted(p.name for p in house.glob("*.whl"))
    assert f"wrote appliance/wheels/ ({len(names)} wheels" in done.stdout
    for name in names[:3] + names[-3:]:
        assert bookworm.mtype(f"appliance/wheels/{name}") == (house / name).read_bytes()
    token = (site / "appliance.token").read_bytes()
    assert bookworm.mtype("appliance/api.token") == token and len(token.strip()) == 64
    assert token.strip().decode() not in done.stdout + done.stderr
    incomplete = tmp_path / "incomplete"
    house.rename(incomplete)
    next(incomplete.glob("Werkzeug-*.whl")).unlink()
    refused = flash_sd(
        "image", "customize", str(bookworm.path), *site_args(site, "--bundle", str(incomplete))
    )
    assert refused.returncode == 1 and "werkzeug==3.1.9 (needed by flask)" in refused.stderr
