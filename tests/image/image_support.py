"""Disk images shaped like Raspberry Pi OS, built with the real tools, and readers for them.

An image here is an MBR disk (sfdisk) with a FAT boot partition (mkfs.vfat) and an ext4
root (mkfs.ext4), a few MB each; files go in with mtools (``mcopy``), and are read back
with mtools (``mtype``) too, so the code under test is checked by an independent reader.
Nothing is ever mounted.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

SECTOR = 512
ROOTFS_SECTORS = 8192  # 4 MiB of ext4: enough to be a real root partition
LAYOUTS = {  # FAT bits -> (partition type, boot partition sectors, mkfs.vfat options)
    32: ("c", 73728, ["-F", "32", "-s", "1"]),  # 36 MiB: FAT32 needs 65525 clusters
    16: ("e", 16384, ["-F", "16", "-s", "1"]),
    12: ("1", 4096, ["-F", "12"]),
}
START = 2048
TOOLS = ("sfdisk", "mkfs.vfat", "mkfs.ext4", "mcopy", "mtype", "mdir", "fsck.fat")

CMDLINE = (
    b"console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 "
    b"fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n"
)
CONFIG_TXT = b"""# For more options and information see
# http://rptl.io/configtxt
# Some settings may impact device functionality. See link above for details

# Uncomment some or all of these to enable the optional hardware interfaces
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on

# Enable audio (loads snd_bcm2835)
dtparam=audio=on

# Automatically load initramfs files, if found
auto_initramfs=1

[cm4]
# Enable host mode on the 2711 built-in XHCI USB controller.
otg_mode=1

[all]

[pi4]
# Run as fast as firmware / board allows
arm_boost=1

[all]
"""
ISSUE_TXT = b"Raspberry Pi reference 2025-05-13\nGenerated using pi-gen\n"
SEEDS = {  # what a cloud-init (Trixie) image ships in its boot partition
    "user-data": b"#cloud-config\n# This is the user-data configuration file for cloud-init.\n",
    "meta-data": b"# This is the meta-data configuration file for cloud-init.\n",
    "network-config": b"# This is the network-config configuration file for cloud-init.\n",
}


def run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=True, capture_output=True, **kw)


@dataclass
class Image:
    """A built image and the byte offset of its boot partition."""

    path: Path
    offset: int
    fat: int

    @property
    def spec(self) -> str:
        return f"{self.path}@@{self.offset}"

    def mtype(self, name: str) -> bytes:
        """Return a file's contents as mtools reads it."""
        return run("mtype", "-i", self.spec, f"::/{name}").stdout

    def mdir(self, folder: str = "/") -> str:
        return run("mdir", "-a", "-i", self.spec, f"::{folder}").stdout.decode()

    def mcopy(self, data: bytes, name: str, tmp: Path) -> None:
        src = tmp / "mcopy.src"
        src.write_bytes(data)
        run("mcopy", "-o", "-i", self.spec, str(src), f"::/{name}")

    def fsck(self, tmp: Path) -> str:
        """Run fsck.fat -n on a copy of the boot partition; return its report."""
        size = LAYOUTS[self.fat][1] * SECTOR
        part = tmp / "bootfs.img"
        with open(self.path, "rb") as src, open(part, "wb") as dst:
            src.seek(self.offset)
            dst.write(src.read(size))
        out = subprocess.run(["fsck.fat", "-n", str(part)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout


def build_image(path: Path, fat: int = 32, seeds: bool = False, form: str = "mtools") -> Image:
    """Build a Raspberry Pi OS shaped image; ``form`` is how cmdline.txt is named on disk."""
    ptype, sectors, mkfs = LAYOUTS[fat]
    root_start = START + sectors
    path.write_bytes(b"")
    with open(path, "r+b") as f:
        f.truncate((root_start + ROOTFS_SECTORS) * SECTOR)
    table = f"label: dos\nstart={START}, size={sectors}, type={ptype}\nstart={root_start}, type=83\n"
    run("sfdisk", "-q", str(path), input=table.encode())
    run("mkfs.vfat", *mkfs, "-n", "BOOTFS", "--offset", str(START), str(path), str(sectors // 2))
    run(
        "mkfs.ext4",
        "-q",
        "-F",
        "-L",
        "rootfs",
        "-E",
        f"offset={root_start * SECTOR}",
        str(path),
        f"{ROOTFS_SECTORS // 2}k",
    )
    image = Image(path, START * SECTOR, fat)
    names = {"mtools": "cmdline.txt", "upper": "CMDLINE.TXT", "mixed": "Cmdline.txt"}
    files = {"config.txt": CONFIG_TXT, "issue.txt": ISSUE_TXT, **(SEEDS if seeds else {})}
    if form in names:
        files[names[form]] = CMDLINE
    for name, data in files.items():
        image.mcopy(data, name, path.parent)
    if form == "vfat":  # a long name with an 8.3 alias, as Linux's vfat driver writes it
        write_with_our_fat(image, "cmdline.txt", CMDLINE)
    run("mmd", "-i", image.spec, "::/overlays")
    image.mcopy(b"overlays live here\n", "overlays/README", path.parent)
    return image


def write_with_our_fat(image: Image, name: str, data: bytes) -> None:
    from appliance.image.blockdev import BlockDevice
    from appliance.image.fat import FatVolume

    with open(image.path, "r+b") as fh:
        vol = FatVolume(BlockDevice(fh, writable=True), image.offset)
        vol.write(name, data)
        vol.flush()


@pytest.fixture(scope="session", autouse=True)
def _tools():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(
            f"missing {', '.join(missing)} (scripts/test installs dosfstools, mtools, fdisk, e2fsprogs)"
        )


@pytest.fixture(scope="session")
def image_cache(tmp_path_factory):
    """Build each kind of pristine image once; hand out copies."""
    cache: dict = {}
    base = tmp_path_factory.mktemp("pristine")

    def get(tmp: Path, fat: int = 32, seeds: bool = False, form: str = "mtools") -> Image:
        key = (fat, seeds, form)
        if key not in cache:
            cache[key] = build_image(base / f"fat{fat}-{int(seeds)}-{form}.img", fat, seeds, form)
        src = cache[key]
        dst = tmp / "card.img"
        shutil.copyfile(src.path, dst)
        return Image(dst, src.offset, src.fat)

    return get


@pytest.fixture
def bookworm(image_cache, tmp_path) -> Image:
    return image_cache(tmp_path, 32, seeds=False)


@pytest.fixture
def trixie(image_cache, tmp_path) -> Image:
    return image_cache(tmp_path, 32, seeds=True)


@dataclass
class Secrets:
    """Throwaway files of everything customize reads, and the values inside them."""

    dir: Path
    config: Path
    pubkey: Path
    tunnel_key: Path
    known_hosts: Path
    source_password: Path
    password_file: Path
    wifi_password_file: Path
    password: str = "correct horse battery"
    wifi_password: str = "wifi 'quoted' pass"
    source_secret: str = "db-pa$$word-not-for-logs"


APP_TOML = """[ssh]
host = "bastion.example.com"
user = "replica"
key_file = "/etc/appliance/id_ed25519"
known_hosts = "/etc/appliance/known_hosts"

[source]
host = "db-replica.internal"
database = "sales"
user = "analytics_ro"
password_file = "/etc/appliance/source.password"

[[tables]]
name = "public.orders"
cursor = "updated_at"
"""


@pytest.fixture(scope="session")
def secrets(tmp_path_factory) -> Secrets:
    d = tmp_path_factory.mktemp("secrets")
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "admin@laptop", "-f", str(d / "login"))
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "appliance", "-f", str(d / "tunnel"))
    s = Secrets(
        d,
        d / "appliance.toml",
        d / "login.pub",
        d / "tunnel",
        d / "known_hosts",
        d / "source.password",
        d / "login.password",
        d / "wifi.password",
    )
    s.config.write_text(APP_TOML)
    host_key = (d / "tunnel.pub").read_text().split()[:2]
    s.known_hosts.write_text(f"bastion.example.com {' '.join(host_key)}\n")
    s.source_password.write_text(s.source_secret + "\n")
    s.password_file.write_text(s.password + "\n")
    s.wifi_password_file.write_text(s.wifi_password + "\n")
    for p in d.iterdir():
        p.chmod(0o600)
    return s


@pytest.fixture
def full_options(secrets):
    """Every option customize takes, as CustomizeOptions."""
    from appliance.image import CustomizeOptions

    return CustomizeOptions(
        user="admin",
        ssh_key_file=str(secrets.pubkey),
        password_file=str(secrets.password_file),
        hostname="appliance-site1",
        timezone="Europe/London",
        wifi_ssid='Shop "Floor": 2.4',
        wifi_country="gb",
        wifi_password_file=str(secrets.wifi_password_file),
        tunnel_key_file=str(secrets.tunnel_key),
        known_hosts_file=str(secrets.known_hosts),
        source_password_file=str(secrets.source_password),
    )


@pytest.fixture
def site(tmp_path, secrets) -> Path:
    """A site folder of its own: the config (no [web] section) and its secrets, as a user keeps
    them; a token the flasher generates for it lands here, not in the shared secrets folder."""
    folder = tmp_path / "site1"
    folder.mkdir()
    for f in (secrets.tunnel_key, secrets.known_hosts, secrets.source_password, secrets.pubkey):
        shutil.copy(f, folder / f.name)
    (folder / "appliance.toml").write_text(APP_TOML)
    return folder


def site_args(site: Path, *extra: str) -> list:
    """Return the customization options that make a complete card from a ``site`` folder."""
    return [
        "--config", str(site / "appliance.toml"), "--user", "admin", "--ssh-key", str(site / "login.pub"),
        "--tunnel-key", str(site / "tunnel"), "--known-hosts", str(site / "known_hosts"),
        "--source-password-file", str(site / "source.password"), "--hostname", "appliance-site1", *extra,
    ]  # fmt: skip
