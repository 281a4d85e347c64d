"""Customizing whole images of both generations, read back with mtools and checked with
independent tools: openssl (password hash, PBKDF2), cloud-init's schema, netplan, sh."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
import tarfile

import pytest
import yaml
from image_support import CMDLINE, CONFIG_TXT, REPO

from appliance.image import customize_target
from appliance.image.errors import ImageError, IncompleteCardError

CMDLINE_WORDS = CMDLINE.decode().split()


def openssl_sha512_crypt(password: str, salt: str) -> str:
    """Return the SHA-512 crypt hash as openssl computes it."""
    return subprocess.run(
        ["openssl", "passwd", "-6", "-salt", salt, "-stdin"],
        input=password,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def openssl_psk(ssid: str, passphrase: str) -> str:
    """Return the WPA PSK as OpenSSL's own PBKDF2 computes it."""
    out = subprocess.run(
        [
            "openssl",
            "kdf",
            "-keylen",
            "32",
            "-kdfopt",
            "digest:SHA1",
            "-kdfopt",
            f"pass:{passphrase}",
            "-kdfopt",
            f"salt:{ssid}",
            "-kdfopt",
            "iter:4096",
            "PBKDF2",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.strip().replace(":", "").lower()


def assert_hash_verifies(hashed: str, password: str) -> None:
    assert hashed.startswith("$6$") and "rounds=" not in hashed
    salt = hashed.split("$")[2]
    assert openssl_sha512_crypt(password, salt) == hashed
    assert openssl_sha512_crypt(password + "x", salt) != hashed
    if shutil.which("mkpasswd"):  # a second implementation: glibc's crypt, via Debian's whois
        out = subprocess.run(
            ["mkpasswd", "-m", "sha-512", "-S", salt, "-s"],
            input=password,
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == hashed


def sourced(env_file: bytes, tmp_path, names) -> dict:
    """Return the variables a POSIX shell gets from sourcing ``env_file``."""
    path = tmp_path / "firstrun.env"
    path.write_bytes(env_file)
    script = ". ./firstrun.env; " + "; ".join(f'printf "%s\\0" "${n}"' for n in names)
    out = subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, check=True)
    return dict(zip(names, out.stdout.decode().split("\0")[:-1], strict=True))


def one_line(cmdline: bytes) -> list:
    assert cmdline.endswith(b"\n") and cmdline.count(b"\n") == 1
    return cmdline.decode().split()


# -- Bookworm: firstrun.sh -----------------------------------------------------------------


def test_customize_bookworm_writes_every_file(bookworm, secrets, full_options, tmp_path):
    report = customize_target(str(bookworm.path), str(secrets.config), full_options)
    assert report.format == "firstrun" and report.verified and report.fat == "FAT32"
    img = bookworm
    assert img.mtype("appliance/appliance.toml") == secrets.config.read_bytes()
    assert img.mtype("appliance/id_ed25519") == secrets.tunnel_key.read_bytes()
    assert img.mtype("appliance/known_hosts") == secrets.known_hosts.read_bytes()
    assert img.mtype("appliance/source.password") == secrets.source_password.read_bytes()
    assert img.mtype("appliance/firstboot.sh") == (REPO / "image/firstboot.sh").read_bytes()
    assert img.mtype("firstrun.sh") == (REPO / "image/firstrun.sh").read_bytes()
    words = one_line(img.mtype("cmdline.txt"))
    assert words == CMDLINE_WORDS + [
        "cfg80211.ieee80211_regdom=GB",
        "systemd.run=/boot/firstrun.sh",
        "systemd.run_success_action=reboot",
        "systemd.unit=kernel-command-line.target",
    ]
    assert "user-data" not in img.mdir()
    img.fsck(tmp_path)


def test_customize_bookworm_settings_for_firstrun(bookworm, secrets, full_options, tmp_path):
    customize_target(str(bookworm.path), str(secrets.config), full_options)
    names = [
        "APPLIANCE_USER",
        "APPLIANCE_PASSWORD_HASH",
        "APPLIANCE_SSH_KEYS",
        "APPLIANCE_HOSTNAME",
        "APPLIANCE_WIFI_SSID",
        "APPLIANCE_WIFI_PSK",
        "APPLIANCE_WIFI_COUNTRY",
        "APPLIANCE_TIMEZONE",
    ]
    env = sourced(bookworm.mtype("appliance/firstrun.env"), tmp_path, names)
    assert env["APPLIANCE_USER"] == "admin"
    assert env["APPLIANCE_HOSTNAME"] == "appliance-site1"
    assert env["APPLIANCE_SSH_KEYS"] == secrets.pubkey.read_text().strip()
    assert env["APPLIANCE_WIFI_SSID"] == 'Shop "Floor": 2.4'
    assert env["APPLIANCE_WIFI_COUNTRY"] == "GB"
    assert env["APPLIANCE_TIMEZONE"] == "Europe/London"
    assert env["APPLIANCE_WIFI_PSK"] == openssl_psk('Shop "Floor": 2.4', secrets.wifi_password)
    assert_hash_verifies(env["APPLIANCE_PASSWORD_HASH"], secrets.password)


def test_customize_switches_i2c_on_in_config_txt(bookworm, secrets, full_options):
    customize_target(str(bookworm.path), str(secrets.config), full_options)
    after = bookworm.mtype("config.txt")
    assert after == CONFIG_TXT.replace(b"#dtparam=i2c_arm=on", b"dtparam=i2c_arm=on")


def test_customize_ships_the_source_to_install(bookworm, secrets, full_options):
    customize_target(str(bookworm.path), str(secrets.config), full_options)
    bundle = tarfile.open(fileobj=io.BytesIO(bookworm.mtype("appliance/appliance-src.tar.gz")))
    members = {m.name: m for m in bundle.getmembers()}
    for needed in (
        "pyproject.toml",
        "scripts/install-on-pi",
        "systemd/appliance-sync.service",
        "systemd/appliance-firstboot.service",
        "appliance/image/fat.py",
    ):
        assert needed in members
    assert members["scripts/install-on-pi"].mode == 0o755
    assert not any(name.startswith("tests/") or "__pycache__" in name for name in members)


# -- Trixie: cloud-init ----------------------------------------------------------------------


def test_customize_trixie_writes_cloud_init_seeds(trixie, secrets, full_options, tmp_path):
    report = customize_target(str(trixie.path), str(secrets.config), full_options)
    assert report.format == "cloud-init" and "seed files" in report.format_reason
    user_data = trixie.mtype("user-data")
    assert user_data.startswith(b"#cloud-config\n")
    doc = yaml.safe_load(user_data)
    assert doc["hostname"] == "appliance-site1" and doc["timezone"] == "Europe/London"
    assert doc["user"]["name"] == "admin" and doc["user"]["lock_passwd"] is False
    assert doc["user"]["ssh_authorized_keys"] == [secrets.pubkey.read_text().strip()]
    assert_hash_verifies(doc["user"]["passwd"], secrets.password)
    assert doc["ssh_pwauth"] is False
    assert ["sh", "/boot/firmware/appliance/firstboot.sh", "--start"] in doc["runcmd"]
    instance = yaml.safe_load(trixie.mtype("meta-data"))["instance-id"]
    words = one_line(trixie.mtype("cmdline.txt"))
    assert words == CMDLINE_WORDS + [f"ds=nocloud;i={instance}", "cfg80211.ieee80211_regdom=GB"]
    assert "FIRSTRUN" not in trixie.mdir().upper()
    trixie.fsck(tmp_path)


def test_customize_trixie_network_config(trixie, secrets, full_options):
    customize_target(str(trixie.path), str(secrets.config), full_options)
    net = yaml.safe_load(trixie.mtype("network-config"))["network"]
    assert net["version"] == 2 and net["ethernets"]["eth0"]["dhcp4"] is True
    wlan = net["wifis"]["wlan0"]
    assert wlan["regulatory-domain"] == "GB"
    point = wlan["access-points"]['Shop "Floor": 2.4']
    assert point["password"] == openssl_psk('Shop "Floor": 2.4', secrets.wifi_password)


@pytest.mark.skipif(shutil.which("cloud-init") is None, reason="cloud-init not installed")
def test_customize_user_data_passes_cloud_init_schema(trixie, secrets, full_options, tmp_path):
    customize_target(str(trixie.path), str(secrets.config), full_options)
    good = tmp_path / "user-data"
    good.write_bytes(trixie.mtype("user-data"))
    out = subprocess.run(["cloud-init", "schema", "--config-file", str(good)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    bad = tmp_path / "bad"  # the validator does reject a wrong document
    bad.write_bytes(good.read_bytes().replace(b"ssh_pwauth: false", b"ssh_pwauth: [1]"))
    assert (
        subprocess.run(["cloud-init", "schema", "--config-file", str(bad)], capture_output=True).returncode
        != 0
    )


@pytest.mark.skipif(shutil.which("netplan") is None, reason="netplan not installed")
def test_customize_network_config_renders_with_netplan(trixie, secrets, full_options, tmp_path):
    customize_target(str(trixie.path), str(secrets.config), full_options)
    netplan_dir = tmp_path / "root/etc/netplan"
    netplan_dir.mkdir(parents=True)
    conf = netplan_dir / "50-cloud-init.yaml"
    conf.write_bytes(trixie.mtype("network-config"))
    conf.chmod(0o600)
    subprocess.run(
        ["netplan", "generate", "--root-dir", str(tmp_path / "root")], check=True, capture_output=True
    )
    wpa = (tmp_path / "root/run/netplan/wpa-wlan0.conf").read_text()
    assert "country=GB" in wpa
    assert "psk=" + openssl_psk('Shop "Floor": 2.4', secrets.wifi_password) in wpa


@pytest.mark.parametrize("seeds", [False, True])
def test_customize_without_a_login(image_cache, tmp_path, secrets, full_options, seeds):
    image = image_cache(tmp_path, 32, seeds=seeds)
    options = dataclasses.replace(full_options, user="", ssh_key_file="", password_file="")
    with pytest.raises(IncompleteCardError, match="--user NAME") as refused:
        customize_target(str(image.path), str(secrets.config), options)
    assert "nothing was written" in str(refused.value) and "--tunnel-key" not in str(refused.value)
    assert "appliance" not in image.mdir()
    options.allow_incomplete = True
    report = customize_target(str(image.path), str(secrets.config), options)
    assert not report.complete and len(report.missing) == 1 and "a login" in report.missing[0]
    assert "INCOMPLETE" in "\n".join(report.lines())
    if seeds:
        doc = yaml.safe_load(image.mtype("user-data"))
        assert "user" not in doc and doc["runcmd"] == [
            ["sh", "/boot/firmware/appliance/firstboot.sh", "--start"]
        ]
    else:
        env = sourced(image.mtype("appliance/firstrun.env"), tmp_path, ["APPLIANCE_USER"])
        assert env["APPLIANCE_USER"] == ""


def test_customize_drops_its_old_wifi_settings(trixie, secrets, full_options):
    customize_target(str(trixie.path), str(secrets.config), full_options)
    wired = dataclasses.replace(full_options, wifi_ssid="", wifi_password_file="")
    report = customize_target(str(trixie.path), str(secrets.config), wired)
    assert "network-config" in report.removed
    assert "network-config" not in trixie.mdir()


def test_customize_failing_midway_leaves_the_image_untouched(image_cache, tmp_path, secrets, full_options):
    image = image_cache(tmp_path, 12)
    free = int(re.search(r"([\d ]+) bytes free", image.mdir()).group(1).replace(" ", ""))
    image.mcopy(bytes(free - 60 * 1024), "filler.bin", tmp_path)  # too little room left
    before = image.path.read_bytes()
    with pytest.raises(ImageError, match="boot partition is full"):
        customize_target(str(image.path), str(secrets.config), full_options)
    assert image.path.read_bytes() == before  # changes are only written once all succeeded


def test_customize_key_only_login(trixie, secrets, full_options):
    options = dataclasses.replace(full_options, password_file="")
    customize_target(str(trixie.path), str(secrets.config), options)
    user = yaml.safe_load(trixie.mtype("user-data"))["user"]
    assert user["lock_passwd"] is True and "passwd" not in user


# -- formats, repeats, name forms -------------------------------------------------------------


@pytest.mark.parametrize(
    "seeds,forced,expected", [(False, "cloud-init", "cloud-init"), (True, "firstrun", "firstrun")]
)
def test_customize_format_can_be_forced(
    image_cache, tmp_path, secrets, full_options, seeds, forced, expected
):
    image = image_cache(tmp_path, 32, seeds=seeds)
    options = dataclasses.replace(full_options, format=forced)
    report = customize_target(str(image.path), str(secrets.config), options)
    assert report.format == expected and "forced" in report.format_reason
    marker = "firstrun.sh" if expected == "firstrun" else "user-data"
    assert image.mtype(marker)


def test_customize_twice_leaves_one_copy_of_everything(bookworm, secrets, full_options, tmp_path):
    customize_target(str(bookworm.path), str(secrets.config), full_options)
    cloud = dataclasses.replace(full_options, format="cloud-init")
    customize_target(str(bookworm.path), str(secrets.config), cloud)
    assert "FIRSTRUN" not in bookworm.mdir().upper()  # the other format's files are gone
    back = dataclasses.replace(full_options, format="firstrun")
    customize_target(str(bookworm.path), str(secrets.config), back)
    assert "USER-D" not in bookworm.mdir().upper()
    again = dataclasses.replace(full_options, source_password_file="", allow_incomplete=True)
    report = customize_target(str(bookworm.path), str(secrets.config), again)
    assert report.format == "firstrun"
    words = one_line(bookworm.mtype("cmdline.txt"))
    assert words == CMDLINE_WORDS + [
        "cfg80211.ieee80211_regdom=GB",
        "systemd.run=/boot/firstrun.sh",
        "systemd.run_success_action=reboot",
        "systemd.unit=kernel-command-line.target",
    ]
    assert bookworm.mtype("config.txt").count(b"dtparam=i2c_arm=on") == 1
    assert report.removed == ["appliance/source.password"]
    assert report.missing == [
        "/etc/appliance/source.password (source.password_file, the database password): "
        "give --source-password-file FILE"
    ]
    assert "source.password" not in bookworm.mdir("/appliance")
    assert bookworm.mdir("/").upper().count("CMDLINE") == 1
    bookworm.fsck(tmp_path)


@pytest.mark.parametrize(
    "form,stored", [("upper", "CMDLINE  TXT"), ("mtools", "cmdline  txt"), ("vfat", "cmdline.txt")]
)
def test_customize_keeps_cmdline_name_form(image_cache, tmp_path, secrets, full_options, form, stored):
    image = image_cache(tmp_path, 32, form=form)
    customize_target(str(image.path), str(secrets.config), full_options)
    lines = [line for line in image.mdir().splitlines() if "cmdline" in line.lower()]
    assert len(lines) == 1 and stored in lines[0]
    assert "systemd.run=/boot/firstrun.sh" in image.mtype("CMDLINE.TXT").decode()


@pytest.mark.parametrize("fat", [16, 12])
def test_customize_small_fat_images(image_cache, tmp_path, secrets, full_options, fat):
    image = image_cache(tmp_path, fat, seeds=True)
    report = customize_target(str(image.path), str(secrets.config), full_options)
    assert report.fat == f"FAT{fat}" and report.verified
    assert image.mtype("appliance/id_ed25519") == secrets.tunnel_key.read_bytes()
    image.fsck(tmp_path)


def test_customize_a_card_whose_size_is_not_a_block_multiple(bookworm, secrets, full_options):
    with open(bookworm.path, "ab") as f:
        f.write(b"\xaa" * 100)  # a device or image may end anywhere
    size = bookworm.path.stat().st_size
    customize_target(str(bookworm.path), str(secrets.config), full_options)
    assert bookworm.path.stat().st_size == size
    assert bookworm.path.read_bytes()[-100:] == b"\xaa" * 100


# -- what the Pi does with it -------------------------------------------------------------


def test_customize_firstrun_survives_bookworms_initramfs_fixup(tmp_path):
    """raspberrypi-sys-mods' imager_fixup cuts firstrun.sh at its `rm ...firstrun.sh` line."""
    script = tmp_path / "firstrun.sh"
    script.write_bytes((REPO / "image/firstrun.sh").read_bytes())
    subprocess.run(["sed", "-n", "-i", r"/rm.*firstrun\.sh$/q;p", str(script)], check=True)
    kept = script.read_text()
    original = (REPO / "image/firstrun.sh").read_text()
    assert original.startswith(kept)
    tail = original[len(kept) :]
    assert tail.startswith('rm -f "$BOOT"/firstrun.sh\n')  # cut exactly at the clean-up
    for needed in ("set_wifi ||", 'sh "$BOOT/appliance/firstboot.sh"', 'wipe "$SETTINGS"'):
        assert needed in kept


def test_customize_firstrun_removes_only_its_cmdline_words(bookworm, secrets, full_options, tmp_path):
    customize_target(str(bookworm.path), str(secrets.config), full_options)
    cmdline = tmp_path / "cmdline.txt"
    cmdline.write_bytes(bookworm.mtype("cmdline.txt"))
    script = (REPO / "image/firstrun.sh").read_text()
    sed = script[script.index("sed -i -e 's| systemd\\.run=") :].split(' "$BOOT')[0]
    subprocess.run(["sh", "-c", f"{sed} cmdline.txt".replace("\\\n", " ")], cwd=tmp_path, check=True)
    assert one_line(cmdline.read_bytes()) == CMDLINE_WORDS + ["cfg80211.ieee80211_regdom=GB"]


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change,message",
    [
        ({"user": ""}, "need --user NAME"),
        ({"user": "root"}, "cannot be used"),
        ({"ssh_key_file": "", "password_file": ""}, "--ssh-key"),
        ({"hostname": "not a host"}, "not a valid host name"),
        ({"wifi_country": ""}, "--wifi-country"),
        ({"wifi_country": "Britain"}, "two-letter country code"),
        ({"format": "systemd"}, "--format"),
    ],
)
def test_customize_refuses_bad_options(bookworm, secrets, full_options, change, message):
    before = bookworm.path.read_bytes()
    with pytest.raises(ImageError, match=message):
        customize_target(str(bookworm.path), str(secrets.config), dataclasses.replace(full_options, **change))
    assert bookworm.path.read_bytes() == before  # nothing is written before all checks pass


def test_customize_refuses_swapped_keys(bookworm, secrets, full_options):
    with pytest.raises(ImageError, match="private key"):
        customize_target(
            str(bookworm.path),
            str(secrets.config),
            dataclasses.replace(full_options, ssh_key_file=str(secrets.tunnel_key)),
        )
    with pytest.raises(ImageError, match="not a private key"):
        customize_target(
            str(bookworm.path),
            str(secrets.config),
            dataclasses.replace(full_options, tunnel_key_file=str(secrets.pubkey)),
        )


def test_customize_refuses_a_short_wifi_passphrase_without_showing_it(
    bookworm, secrets, full_options, tmp_path
):
    short = tmp_path / "short"
    short.write_text("hunter2\n")
    with pytest.raises(ImageError, match="8 to 63") as caught:
        customize_target(
            str(bookworm.path),
            str(secrets.config),
            dataclasses.replace(full_options, wifi_password_file=str(short)),
        )
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "config,message",
    [
        ('key_file = "/home/pi/id_ed25519"', "can only carry files into /etc/appliance"),
        ('key_file = "/etc/appliance/appliance.toml"', "would overwrite the config"),
        ("[[tables]]", "invalid"),
    ],
)
def test_customize_refuses_configs_the_card_cannot_honour(
    bookworm, secrets, full_options, tmp_path, config, message
):
    text = secrets.config.read_text()
    if config.startswith("key_file"):
        text = text.replace('key_file = "/etc/appliance/id_ed25519"', config)
    else:
        text = text.replace('name = "public.orders"', 'nmae = "public.orders"')
    path = tmp_path / "appliance.toml"
    path.write_text(text)
    with pytest.raises(ImageError, match=message):
        customize_target(str(bookworm.path), str(path), full_options)


def test_customize_refuses_a_tunnel_key_the_config_does_not_use(bookworm, secrets, full_options, tmp_path):
    text = secrets.config.read_text()
    direct = text[text.index("[source]") :]  # no [ssh] section: a direct connection
    path = tmp_path / "direct.toml"
    path.write_text(direct)
    with pytest.raises(ImageError, match="--tunnel-key was given"):
        customize_target(str(bookworm.path), str(path), full_options)


def test_customize_refuses_what_is_not_a_pi_image(tmp_path, secrets, full_options, image_cache):
    blank = tmp_path / "blank.img"
    blank.write_bytes(bytes(64 * 1024))
    with pytest.raises(ImageError, match="no partition table"):
        customize_target(str(blank), str(secrets.config), full_options)
    image = image_cache(tmp_path, 16, form="none")  # a FAT partition without cmdline.txt
    with pytest.raises(ImageError, match="no cmdline.txt"):
        customize_target(str(image.path), str(secrets.config), full_options)
