"""scripts/install-on-pi: shellcheck, the dry-run plan, and idempotence in a throwaway root.

The script runs for real with APPLIANCE_ROOT pointing at a temporary tree; the commands
that would change the machine (apt-get, useradd, systemctl, raspi-config, the venv's pip,
...) are stand-ins on PATH that record their calls and keep their state in files, so a
second run can see what the first one did. Files, owners and modes are real.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts/install-on-pi"
UNITS = ["appliance-sync.service", "appliance-web.service", "appliance-indicator.service"]

FAKES = {
    "dpkg-query": r"""
pkg=""; for a in "$@"; do pkg="$a"; done
if grep -qx "$pkg" "$FAKE_STATE/dpkg" 2>/dev/null; then printf 'install ok installed'; exit 0; fi
echo "dpkg-query: no packages found matching $pkg" >&2; exit 1
""",
    "apt-cache": r"""
case " $FAKE_APT_AVAILABLE " in *" $2 "*) exit 0 ;; esac
exit 100
""",
    "apt-get": r"""
echo "apt-get $*" >>"$FAKE_LOG"
install=0
for a in "$@"; do
    case "$a" in -*) ;; install) install=1 ;; *) [ "$install" = 1 ] && echo "$a" >>"$FAKE_STATE/dpkg" ;; esac
done
exit 0
""",
    "getent": r"""
grep "^$2:" "$APPLIANCE_ROOT/etc/$1" || exit 2
""",
    "groupadd": r"""
echo "groupadd $*" >>"$FAKE_LOG"
for a in "$@"; do name="$a"; done
echo "$name:x:$((980 + $(wc -l <"$APPLIANCE_ROOT/etc/group"))):" >>"$APPLIANCE_ROOT/etc/group"
""",
    "useradd": r"""
echo "useradd $*" >>"$FAKE_LOG"
groups=""; prev=""
for a in "$@"; do [ "$prev" = --groups ] && groups="$a"; prev="$a"; name="$a"; done
id=$((900 + $(wc -l <"$APPLIANCE_ROOT/etc/passwd")))
echo "$name:x:$id:$id::/var/lib/appliance:/usr/sbin/nologin" >>"$APPLIANCE_ROOT/etc/passwd"
echo "$name:x:$id:" >>"$APPLIANCE_ROOT/etc/group"
for g in $(echo "$groups" | tr ',' ' '); do add-member "$g" "$name"; done
""",
    "usermod": r"""
echo "usermod $*" >>"$FAKE_LOG"
add-member "$3" "$4"
""",
    "add-member": r"""
sed -i -e "s/^\($1:[^:]*:[^:]*:..*\)$/\1,$2/" -e "s/^\($1:[^:]*:[^:]*:\)$/\1$2/" "$APPLIANCE_ROOT/etc/group"
""",
    "systemctl": r"""
cmd="$1"; shift
[ "${1:-}" = --quiet ] && shift
case "$cmd" in is-enabled | is-active) [ -e "$FAKE_STATE/$cmd-$1" ]; exit ;; esac
echo "systemctl $cmd${*:+ $*}" >>"$FAKE_LOG"
case "$cmd" in
    enable) touch "$FAKE_STATE/is-enabled-$1" ;;
    disable) rm -f "$FAKE_STATE/is-enabled-$1" ;;
    start | restart) touch "$FAKE_STATE/is-active-$1" ;;
esac
""",
    "raspi-config": r"""
if [ "$2" = get_i2c ]; then [ -e "$FAKE_STATE/i2c" ] && echo 0 || echo 1; exit 0; fi
echo "raspi-config $*" >>"$FAKE_LOG"
touch "$FAKE_STATE/i2c"
""",
    "fake-python": r"""
echo "python3 $*" >>"$FAKE_LOG"
for a in "$@"; do venv="$a"; done
mkdir -p "$venv/bin"
printf '#!/bin/sh\necho "venv-python $*" >>"$FAKE_LOG"\n' >"$venv/bin/python"
chmod +x "$venv/bin/python"
""",
}
CONFIG_TXT = "# Pi OS\n#dtparam=i2c_arm=on\ndtparam=audio=on\n\n[pi4]\narm_boost=1\n\n[all]\n"


class Pi:
    """A throwaway root, stand-in commands and a small appliance source tree."""

    def __init__(self, tmp: Path, raspi_config: bool = True, groups: bool = True) -> None:
        self.root, self.state, self.bin = tmp / "root", tmp / "state", tmp / "bin"
        self.source, self.log = tmp / "src", tmp / "calls.log"
        for d in (
            self.root / "etc",
            self.root / "boot/firmware",
            self.root / "run/systemd/system",
            self.state,
            self.bin,
            self.source / "appliance",
            self.source / "scripts",
        ):
            d.mkdir(parents=True)
        (self.root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
        (self.root / "etc/group").write_text(
            "root:x:0:\n" + ("gpio:x:997:pi\ni2c:x:998:pi\n" if groups else "")
        )
        (self.root / "boot/firmware/config.txt").write_text(CONFIG_TXT)
        self.log.write_text("")
        for name, body in FAKES.items():
            if name == "raspi-config" and not raspi_config:
                continue
            path = self.bin / name
            path.write_text("#!/bin/sh\n" + body.lstrip())
            path.chmod(0o755)
        (self.source / "pyproject.toml").write_text('[project]\nname = "appliance"\n')
        (self.source / "appliance/__init__.py").write_text('__version__ = "0.1.0"\n')
        shutil.copytree(REPO / "systemd", self.source / "systemd")
        shutil.copy(SCRIPT, self.source / "scripts/install-on-pi")
        shutil.copy(REPO / "scripts/constraints.txt", self.source / "scripts/constraints.txt")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {
            "PATH": f"{self.bin}:/usr/bin:/bin:/usr/sbin:/sbin",
            "APPLIANCE_ROOT": str(self.root),
            "APPLIANCE_PYTHON": str(self.bin / "fake-python"),
            "FAKE_STATE": str(self.state),
            "FAKE_LOG": str(self.log),
            "FAKE_APT_AVAILABLE": "python3-lgpio",
            "LC_ALL": "C",
        }
        out = subprocess.run(
            [str(SCRIPT), "--source", str(self.source), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert out.returncode == 0, out.stdout + out.stderr
        return out

    def calls(self) -> list:
        lines = self.log.read_text().splitlines()
        self.log.write_text("")
        return lines

    def snapshot(self) -> dict:
        """Every path under the root with its owner, mode and content hash."""
        seen = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                st = path.lstat()
                digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
                seen[str(path.relative_to(self.root))] = (st.st_uid, st.st_gid, oct(st.st_mode), digest)
        return seen

    def payload(self, tmp: Path) -> Path:
        payload = tmp / "payload"
        payload.mkdir()
        (payload / "appliance.toml").write_text("[source]\nhost = 'db'\n")
        (payload / "known_hosts").write_text("bastion ssh-ed25519 AAAA\n")
        (payload / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n")
        (payload / "source.password").write_text("db-secret\n")
        return payload


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="owners are set with chown: needs root")


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
@pytest.mark.parametrize("script", ["scripts/install-on-pi", "image/firstrun.sh", "image/firstboot.sh"])
def test_install_scripts_pass_shellcheck(script):
    out = subprocess.run(["shellcheck", str(REPO / script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_install_dry_run_prints_the_full_plan_and_changes_nothing(tmp_path):
    pi = Pi(tmp_path, raspi_config=False, groups=False)
    payload = pi.payload(tmp_path)
    before = pi.snapshot()
    out = pi.run("--dry-run", "--payload", str(payload)).stdout
    plan = [line.strip() for line in out.splitlines() if "would run:" in line]
    expected = [
        "apt-get install -y -qq --no-install-recommends python3-venv python3-pip i2c-tools python3-lgpio",
        "groupadd --system gpio",
        "groupadd --system i2c",
        "useradd --system --user-group --home-dir /var/lib/appliance --no-create-home "
        "--shell /usr/sbin/nologin --groups gpio,i2c appliance",
        "dtparam=i2c_arm=on",
        "appliance-i2c.conf",
        "-m venv --system-site-packages",
        f"-m pip install --quiet --upgrade -c {pi.source}/scripts/constraints.txt {pi.source}",
        *[f"install -D -m 0644 {pi.source}/systemd/{u}" for u in UNITS],
        "systemctl daemon-reload",
        "/etc/appliance",
        "chown appliance:appliance",
        "id_ed25519",
        "chmod 600",
        "chmod 640",
        *[f"systemctl enable {u}" for u in UNITS],
        *[f"systemctl start {u}" for u in UNITS],
    ]
    for piece in expected:
        assert any(piece in line for line in plan), f"plan lacks {piece!r}:\n{out}"
    assert "db-secret" not in out and "secret\n" not in out
    assert "change(s) planned" in out
    assert pi.calls() == [] and pi.snapshot() == before


@needs_root
@pytest.mark.parametrize("raspi_config", [True, False])
def test_install_twice_changes_nothing_the_second_time(tmp_path, raspi_config):
    pi = Pi(tmp_path, raspi_config=raspi_config)
    payload = pi.payload(tmp_path)
    first = pi.run("--payload", str(payload))
    calls = pi.calls()
    assert any(c.startswith("useradd") for c in calls) and "Done:" in first.stdout
    after_first = pi.snapshot()
    second = pi.run("--payload", str(payload))
    assert pi.calls() == [], second.stdout
    assert pi.snapshot() == after_first
    assert "Nothing to change" in second.stdout
    assert pi.run("--dry-run", "--payload", str(payload)).stdout.count("would run:") == 0


@needs_root
def test_install_result_on_the_pi(tmp_path):
    pi = Pi(tmp_path, raspi_config=False)
    pi.run("--payload", str(pi.payload(tmp_path)))
    calls = pi.calls()
    assert "systemctl daemon-reload" in calls
    assert [c for c in calls if c.startswith("systemctl start")] == [f"systemctl start {u}" for u in UNITS]
    assert any(c.startswith("venv-python -m pip install") and str(pi.source) in c for c in calls)
    for unit in UNITS:
        assert (pi.root / "etc/systemd/system" / unit).read_bytes() == (REPO / "systemd" / unit).read_bytes()
    user = (pi.root / "etc/passwd").read_text().splitlines()[-1].split(":")
    uid, gid = int(user[2]), int(user[3])
    group = (pi.root / "etc/group").read_text()
    assert "gpio:x:997:pi,appliance" in group and "i2c:x:998:pi,appliance" in group
    etc = pi.root / "etc/appliance"
    assert (etc.stat().st_uid, etc.stat().st_gid, oct(etc.stat().st_mode & 0o777)) == (0, gid, "0o750")
    for name, owner, mode in [
        ("id_ed25519", uid, 0o600),
        ("source.password", uid, 0o600),
        ("appliance.toml", 0, 0o640),
        ("known_hosts", 0, 0o640),
    ]:
        st = (etc / name).stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (owner, gid, mode), name
    config = (pi.root / "boot/firmware/config.txt").read_text()
    assert config.endswith("[all]\ndtparam=i2c_arm=on\n")
    assert (pi.root / "etc/modules-load.d/appliance-i2c.conf").read_text() == "i2c-dev\n"


@needs_root
def test_install_update_restarts_what_changed(tmp_path):
    pi = Pi(tmp_path)
    pi.run("--payload", str(pi.payload(tmp_path)))
    pi.calls()
    unit = pi.source / "systemd/appliance-web.service"
    unit.write_text(unit.read_text().replace("RestartSec=5s", "RestartSec=7s"))
    pi.run()
    calls = pi.calls()
    assert f"install -D -m 0644 {unit}" not in calls  # install runs for real, not via a stand-in
    assert "systemctl daemon-reload" in calls
    assert [c for c in calls if "restart" in c] == [f"systemctl restart {u}" for u in UNITS]
    assert (pi.root / "etc/systemd/system/appliance-web.service").read_text() == unit.read_text()


@needs_root
def test_install_without_config_enables_but_does_not_start(tmp_path):
    pi = Pi(tmp_path)
    out = pi.run().stdout
    calls = pi.calls()
    assert "appliance.toml is missing" in out
    assert [c for c in calls if c.startswith("systemctl enable")] == [f"systemctl enable {u}" for u in UNITS]
    assert not [c for c in calls if c.startswith("systemctl start")]


@needs_root
def test_install_first_boot_disables_the_installer(tmp_path):
    pi = Pi(tmp_path)
    (pi.state / "is-enabled-appliance-firstboot.service").touch()
    pi.run("--first-boot", "--payload", str(pi.payload(tmp_path)))
    assert "systemctl disable appliance-firstboot.service" in pi.calls()
    pi.run("--first-boot", "--payload", str(tmp_path / "payload"))
    assert pi.calls() == []


def test_install_needs_root_unless_dry_run(tmp_path):
    pi = Pi(tmp_path)
    fake_id = pi.bin / "id"  # a user, as far as the script can tell
    fake_id.write_text("#!/bin/sh\necho 1000\n")
    fake_id.chmod(0o755)
    out = pi.run(check=False)
    assert out.returncode == 1 and "run as root" in out.stderr
    assert pi.run("--dry-run").returncode == 0
    assert pi.calls() == []


# -- for real, in a throwaway Debian root (opt-in: needs the network and about 3 minutes) --
#
# How to run it (as root, on Debian, with the Debian mirror reachable):
#   apt-get install debootstrap mtools dosfstools fdisk e2fsprogs
#   APPLIANCE_CHROOT_TEST=1 .venv/bin/python -m pytest tests/test_install_on_pi.py -k for_real
# APPLIANCE_DEBIAN_MIRROR overrides the mirror (default: the first of apt's own sources).


def _apt_mirror() -> str:
    """Return the Debian mirror apt is configured with (the one this machine reaches)."""
    for source in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]:
        text = source.read_text() if source.is_file() else ""
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] or (words[:1] == ["deb"] and len(words) > 1):
                uri = words[1] if words[0] == "URIs:" else next(w for w in words[1:] if "://" in w)
                if uri.rstrip("/").endswith("/debian"):
                    return uri
    return "http://deb.debian.org/debian"


for_real = pytest.mark.skipif(
    os.environ.get("APPLIANCE_CHROOT_TEST") != "1"
    or os.geteuid() != 0
    or shutil.which("debootstrap") is None,
    reason="opt-in: set APPLIANCE_CHROOT_TEST=1 (as root, with debootstrap and the Debian mirror reachable)",
)
DEBIAN_PACKAGES = "systemd,python3,python3-venv,python3-pip,passwd,tzdata,ca-certificates,openssh-server"


def _debian_root(tmp_path: Path, kit) -> Path:
    """Return a fresh Debian bookworm root made by debootstrap from apt's own mirror."""
    root = tmp_path / "root"
    mirror = os.environ.get("APPLIANCE_DEBIAN_MIRROR") or _apt_mirror()
    kit.run("debootstrap", "--variant=minbase", f"--include={DEBIAN_PACKAGES}", "bookworm", str(root), mirror)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/")  # proxies' CAs
    return root


def _card(tmp_path: Path, kit, seeds: bool, **extra):
    """Return a complete customized card image (Bookworm or Trixie style) and its secrets folder."""
    from appliance.image import CustomizeOptions, customize_target

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "appliance.toml").write_text(kit.APP_TOML)
    kit.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(secrets / "tunnel"))
    host_key = " ".join((secrets / "tunnel.pub").read_text().split()[:2])
    (secrets / "known_hosts").write_text(f"bastion.example.com {host_key}\n")
    (secrets / "db").write_text("db-secret\n")
    image = kit.build_image(tmp_path / "card.img", 32, seeds=seeds)
    options = CustomizeOptions(
        user="admin",
        ssh_key_file=str(secrets / "tunnel.pub"),
        tunnel_key_file=str(secrets / "tunnel"),
        known_hosts_file=str(secrets / "known_hosts"),
        source_password_file=str(secrets / "db"),
        **extra,
    )
    report = customize_target(str(image.path), str(secrets / "appliance.toml"), options)
    assert report.complete and report.format == ("cloud-init" if seeds else "firstrun")
    return image, secrets


def _kit():
    import sys

    sys.path.insert(0, str(REPO / "tests/image"))
    import image_support  # the image builders of tests/image

    return image_support


@pytest.mark.slow
@pytest.mark.timeout(1200)
@for_real
def test_install_for_real_in_a_chroot(tmp_path):
    """debootstrap a Debian root; run the card's firstrun.sh in it, then install-on-pi twice.

    The card is made by the real customization (complete: config, secrets, login, time
    zone); its boot partition is copied into the root with mtools, as the Pi would mount it.
    Nothing is mounted: chroot without /proc is enough for apt, useradd, venv and pip. The
    units are enabled, not started (systemd does not run there)."""
    kit = _kit()
    root = _debian_root(tmp_path, kit)
    image, secrets = _card(tmp_path, kit, False, hostname="appliance-test", timezone="Europe/Berlin")
    boot = root / "boot/firmware"
    boot.mkdir(parents=True)
    kit.run(
        "mcopy",
        "-s",
        "-n",
        "-i",
        image.spec,
        "::/appliance",
        "::/firstrun.sh",
        "::/cmdline.txt",
        "::/config.txt",
        str(boot),
    )

    kit.run("chroot", str(root), "/bin/sh", "/boot/firmware/firstrun.sh")
    log = (root / "var/log/appliance-firstrun.log").read_text()
    assert "failed" not in log, log
    assert not (boot / "appliance").exists() and not (boot / "firstrun.sh").exists()
    assert "systemd.run" not in (boot / "cmdline.txt").read_text()
    assert "appliance-test" in (root / "etc/hostname").read_text()
    assert os.readlink(root / "etc/localtime").endswith("Europe/Berlin")
    assert "admin:" in (root / "etc/passwd").read_text()
    home_keys = root / "home/admin/.ssh/authorized_keys"
    assert home_keys.read_text().strip() == (secrets / "tunnel.pub").read_text().strip()
    assert (root / "etc/systemd/system/sshd.service").exists() or list(
        root.glob("etc/systemd/system/*/ssh.service")
    )
    assert (root / "etc/systemd/system/multi-user.target.wants/appliance-firstboot.service").is_symlink()
    installer = [
        "chroot",
        str(root),
        "/opt/appliance/src/scripts/install-on-pi",
        "--source",
        "/opt/appliance/src",
        "--first-boot",
    ]
    first = subprocess.run(installer, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    second = subprocess.run(installer, capture_output=True, text=True, check=True)
    assert "Nothing to change" in second.stdout, second.stdout
    assert (root / "opt/appliance/venv/bin/appliance").exists()
    check = subprocess.run(
        ["chroot", str(root), "/opt/appliance/venv/bin/appliance", "--help"], capture_output=True, text=True
    )
    assert check.returncode == 0 and "flash" in check.stdout, check.stderr
    verify = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *UNITS], capture_output=True, text=True
    )
    assert verify.returncode == 0 and not verify.stderr, verify.stderr
    as_service = ["chroot", "--userspec=appliance:appliance", str(root), "sh", "-c"]
    assert (
        subprocess.run(
            [*as_service, "head -c 5 /etc/appliance/id_ed25519"], capture_output=True, text=True
        ).stdout
        == "-----"
    )
    assert (
        subprocess.run([*as_service, "echo x >>/etc/appliance/known_hosts"], capture_output=True).returncode
        != 0
    )


@pytest.mark.slow
@pytest.mark.timeout(1200)
@for_real
def test_cloud_init_card_for_real_in_a_chroot(tmp_path):
    """Trixie style: Debian's own cloud-init (22.4) reads the card's NoCloud seed in a chroot.

    Raspberry Pi OS points NoCloud at the boot partition; here a cloud.cfg.d file does the
    same (``seedfrom: file:///boot/firmware/``). Modules that need a booted system (resizefs
    without /proc/mounts, locale without locales data, starting units) fail in a chroot and
    are not judged; what the card asked for is."""
    kit = _kit()
    root = _debian_root(tmp_path, kit)
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "cloud-init"]
    kit.run("chroot", str(root), "env", "DEBIAN_FRONTEND=noninteractive", *install)
    image, secrets = _card(tmp_path, kit, True, hostname="appliance-ci", timezone="Asia/Tokyo")
    boot = root / "boot/firmware"
    boot.mkdir(parents=True)
    names = ["::/appliance", "::/user-data", "::/meta-data", "::/cmdline.txt", "::/config.txt"]
    kit.run("mcopy", "-s", "-n", "-i", image.spec, *names, str(boot))
    (root / "etc/cloud/cloud.cfg.d/99-nocloud-boot.cfg").write_text(
        "datasource_list: [NoCloud, None]\ndatasource:\n  NoCloud:\n    seedfrom: file:///boot/firmware/\n"
    )
    for stage in (["init", "--local"], ["init"], ["modules", "--mode=config"], ["modules", "--mode=final"]):
        subprocess.run(["chroot", str(root), "cloud-init", *stage], capture_output=True, timeout=300)
    log = (root / "var/log/cloud-init.log").read_text()
    assert (
        "DataSourceNoCloud [seed=ds_config_seedfrom,file:///boot/firmware/]"
        in (root / "var/log/cloud-init-output.log").read_text()
    ), log[-3000:]
    assert "admin:" in (root / "etc/passwd").read_text()
    keys = (root / "home/admin/.ssh/authorized_keys").read_text()
    assert (secrets / "tunnel.pub").read_text().split()[1] in keys
    assert (root / "etc/hostname").read_text().strip() == "appliance-ci"
    assert os.readlink(root / "etc/localtime").endswith("Asia/Tokyo")
    for name in ("appliance.toml", "id_ed25519", "known_hosts", "source.password"):
        assert (root / "etc/appliance" / name).exists(), name
        assert not (boot / "appliance" / name).exists(), name  # off the world-readable partition
    assert not (boot / "appliance").exists()  # firstboot.sh cleaned up after itself
    assert (root / "opt/appliance/src/scripts/install-on-pi").exists()
    assert (root / "etc/systemd/system/multi-user.target.wants/appliance-firstboot.service").is_symlink()


def test_install_help_is_the_header_and_nothing_of_the_script():
    done = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Install the appliance on a Raspberry Pi")
    assert lines[-1].startswith("APPLIANCE_ROOT=DIR prefixes every file path")
    assert not [line for line in lines if line.startswith(("set -", "ROOT=", "#"))]
