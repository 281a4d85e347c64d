"""The card's appliance/firstboot.sh, run on the payload a customized image carries.

The payload is copied off the image with mtools into a stand-in boot partition; the script
runs for real with APPLIANCE_ROOT pointing at a throwaway tree and a stand-in systemctl.
"""

from __future__ import annotations

import subprocess

from image_support import REPO, run

from appliance.image import customize_target


def payload_on_boot(image, tmp_path):
    boot = tmp_path / "boot"
    boot.mkdir()
    run("mcopy", "-s", "-n", "-i", image.spec, "::/appliance", str(boot))
    return boot / "appliance"


def test_firstboot_moves_the_payload_off_the_boot_partition(trixie, secrets, full_options, tmp_path):
    customize_target(str(trixie.path), str(secrets.config), full_options)
    payload = payload_on_boot(trixie, tmp_path)
    root, fakes, log = tmp_path / "root", tmp_path / "bin", tmp_path / "calls"
    fakes.mkdir()
    (fakes / "systemctl").write_text(f'#!/bin/sh\necho "systemctl $*" >>{log}\n')
    (fakes / "systemctl").chmod(0o755)
    env = {"PATH": f"{fakes}:/usr/bin:/bin", "APPLIANCE_ROOT": str(root)}
    out = subprocess.run(
        ["sh", str(payload / "firstboot.sh"), "--start"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    etc = root / "etc/appliance"
    assert oct(etc.stat().st_mode & 0o777) == "0o750"
    for name, original in [
        ("id_ed25519", secrets.tunnel_key),
        ("source.password", secrets.source_password),
        ("known_hosts", secrets.known_hosts),
        ("appliance.toml", secrets.config),
    ]:
        assert (etc / name).read_bytes() == original.read_bytes()
        assert (etc / name).stat().st_mode & 0o777 == 0o600
    assert not payload.exists()  # every file wiped, the folder removed
    src = root / "opt/appliance/src"
    assert (src / "scripts/install-on-pi").stat().st_mode & 0o111
    unit = root / "etc/systemd/system/appliance-firstboot.service"
    assert unit.read_bytes() == (REPO / "systemd/appliance-firstboot.service").read_bytes()
    assert log.read_text().splitlines() == [
        "systemctl enable appliance-firstboot.service",
        "systemctl start --no-block appliance-firstboot.service",
    ]
    assert secrets.source_secret not in out.stdout + out.stderr


def test_firstboot_leaves_firstrun_settings_to_firstrun(bookworm, secrets, full_options, tmp_path):
    customize_target(str(bookworm.path), str(secrets.config), full_options)
    payload = payload_on_boot(bookworm, tmp_path)
    fakes = tmp_path / "bin"
    fakes.mkdir()
    (fakes / "systemctl").write_text("#!/bin/sh\n")
    (fakes / "systemctl").chmod(0o755)
    subprocess.run(
        ["sh", str(payload / "firstboot.sh")],
        check=True,
        capture_output=True,
        env={"PATH": f"{fakes}:/usr/bin:/bin", "APPLIANCE_ROOT": str(tmp_path / "r")},
    )
    # firstrun.sh still needs (and then wipes) its settings; nothing else is left
    assert sorted(p.name for p in payload.iterdir()) == ["firstrun.env"]
    assert not (tmp_path / "r/etc/appliance/firstrun.env").exists()
