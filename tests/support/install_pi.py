"""A throwaway Pi for scripts/install-on-pi: a root folder, stand-in commands, real code.

The script runs for real with APPLIANCE_ROOT pointing at a temporary tree. The commands that
would change the machine (apt-get, useradd, systemctl, raspi-config, python's venv and pip)
are stand-ins on PATH that record their calls and keep their state in files, so a second run
sees what the first one did. Files, owners and modes are real.

A release's venv is a stand-in too (pip cannot reach PyPI here), but what runs from it is
the real appliance: its ``python`` is this interpreter with the release's own copy of the
code first on the path (a checkout copied into ``src/``, or a wheel unpacked). The stand-in
``systemctl`` starts the units named in ``real_units`` for real, from the unit file's
``ExecStart=`` (so through ``/opt/appliance/current``), and stops them with SIGTERM: the
script's checks then talk HTTP to a real ``appliance web``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
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
    # Units named in $FAKE_REAL_UNITS run for real (their ExecStart=, inside the root).
    "systemctl": r"""
cmd="$1"; shift
[ "${1:-}" = --quiet ] && shift
unit="${1:-}"
real() { case " $FAKE_REAL_UNITS " in *" $1 "*) return 0 ;; esac; return 1; }
alive() {
    pid=$(cat "$FAKE_STATE/pid-$1" 2>/dev/null) || return 1
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$state" ] && [ "$state" != Z ]
}
start_real() {
    line=$(sed -n 's/^ExecStart=//p' "$APPLIANCE_ROOT/etc/systemd/system/$1")
    export APPLIANCE_CONFIG="$APPLIANCE_ROOT/etc/appliance/appliance.toml"
    # systemd's child, not the caller's: no descriptor of the script's (its lock) goes along.
    (cd / && setsid sh -c "exec $APPLIANCE_ROOT$line" </dev/null >>"$FAKE_STATE/$1.log" 2>&1 \
        3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- & echo $! >"$FAKE_STATE/pid-$1")
}
stop_real() {
    alive "$1" || return 0
    kill "$pid"
    i=0
    while alive "$1" && [ "$i" -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    if alive "$1"; then kill -9 "$pid"; fi
    rm -f "$FAKE_STATE/pid-$1"
}
case "$cmd" in
    is-enabled) [ -e "$FAKE_STATE/is-enabled-$unit" ]; exit ;;
    # A real unit never started for real (no pid file) is as its record says.
    is-active) alive "$unit" || { [ ! -e "$FAKE_STATE/pid-$unit" ] && [ -e "$FAKE_STATE/$cmd-$unit" ]; }
        exit ;;
esac
echo "systemctl $cmd${*:+ $*}" >>"$FAKE_LOG"
active="$FAKE_STATE/is-active-$unit"
case "$cmd" in
    enable) touch "$FAKE_STATE/is-enabled-$unit" ;;
    disable) rm -f "$FAKE_STATE/is-enabled-$unit" ;;
    start) touch "$active"; if real "$unit" && ! alive "$unit"; then start_real "$unit"; fi ;;
    restart) touch "$active"; if real "$unit"; then stop_real "$unit"; start_real "$unit"; fi ;;
    stop) rm -f "$active"; if real "$unit"; then stop_real "$unit"; fi ;;
esac
exit 0
""",
    "raspi-config": r"""
if [ "$2" = get_i2c ]; then [ -e "$FAKE_STATE/i2c" ] && echo 0 || echo 1; exit 0; fi
echo "raspi-config $*" >>"$FAKE_LOG"
touch "$FAKE_STATE/i2c"
""",
    # python3 -m venv: a venv whose python is the one below.
    "fake-python": r"""
echo "python3 $*" >>"$FAKE_LOG"
for a in "$@"; do venv="$a"; done
mkdir -p "$venv/bin"
cp "$(dirname "$0")/venv-python" "$venv/bin/python"
""",
    # A venv's python: pip is a stand-in; anything else is the real interpreter on the code
    # pip "installed" (the release's src/ or its unpacked wheel), ahead of the dependencies.
    "venv-python": r"""
venv=$(cd "$(dirname "$0")/.." && pwd)
if [ "$1" = -m ] && [ "$2" = pip ]; then
    echo "venv-python $*" >>"$FAKE_LOG"
    shift 2
    exec fake-pip "$venv" "$@"
fi
code=$(cat "$venv/code-path" 2>/dev/null || echo /nonexistent)
PYTHONPATH="$code:$FAKE_SITE" exec "$FAKE_REAL_PYTHON" -S -P "$@"  # -P: never the working folder's
""",
    "fake-pip": r"""
venv="$1"; cmd="$2"; shift 2
if [ -n "${FAKE_PIP_FAIL:-}" ]; then echo "ERROR: No matching distribution found (stand-in)" >&2; exit 1; fi
links=""; dest=""; target=""; extras=""
while [ $# -gt 0 ]; do
    case "$1" in
        --find-links) links="$2"; shift ;;
        --dest) dest="$2"; shift ;;
        -c) shift ;;
        -*) ;;
        *) target="${1%\[*\]}"; extras="${1#"$target"}" ;;
    esac
    shift
done
if [ "$cmd" = install ] && [ "$extras" != "[pi]" ]; then
    echo "ERROR: the Pi needs appliance[pi]" >&2
    exit 1
fi
if [ "$cmd" = download ]; then  # appliance==VERSION from the stand-in PyPI folder
    cp "$FAKE_PYPI"/appliance-"${target#appliance==}"-*.whl "$dest/"; exit
fi
if [ -d "$target" ]; then
    code="$target"
else
    case "$target" in *.whl) wheel="$target" ;; *) wheel=$(ls "$links"/appliance-*.whl | tail -1) ;; esac
    rm -rf "$venv/site" && mkdir -p "$venv/site"
    "$FAKE_REAL_PYTHON" -m zipfile -e "$wheel" "$venv/site"
    code="$venv/site"
fi
echo "$code" >"$venv/code-path"
main='import sys; sys.argv[0] = "appliance"; from appliance.cli import main; sys.exit(main())'
printf '#!/bin/sh\nexec "$(dirname "$0")/python" -c %s "$@"\n' "'$main'" >"$venv/bin/appliance"
chmod +x "$venv/bin/appliance"
""",
}
CONFIG_TXT = "# Pi OS\n#dtparam=i2c_arm=on\ndtparam=audio=on\n\n[pi4]\narm_boost=1\n\n[all]\n"
TEST_TOKEN = "token-from-the-environment-0123456789"  # the page's token in tests that run it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_source(dest: Path, full: bool = True) -> Path:
    """Copy this checkout's appliance (the real package, or a stub) as an installable tree."""
    (dest / "scripts").mkdir(parents=True)
    if full:
        shutil.copytree(REPO / "appliance", dest / "appliance", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")
    else:
        (dest / "appliance").mkdir()
        (dest / "appliance/__init__.py").write_text('__version__ = "0.1.0"\n')
        (dest / "pyproject.toml").write_text('[project]\nname = "appliance"\nversion = "0.1.0"\n')
    shutil.copytree(REPO / "systemd", dest / "systemd")
    shutil.copy(SCRIPT, dest / "scripts/install-on-pi")
    shutil.copy(REPO / "scripts/constraints.txt", dest / "scripts/constraints.txt")
    return dest


def break_readyz(source: Path) -> Path:
    """Make a build whose /readyz fails for real (its view raises: the page answers 500)."""
    views = source / "appliance/web/views.py"
    text = views.read_text()
    marker = '    """503 during an outage (or when the state cannot be read), else 200."""\n'
    assert marker in text, "the readyz view changed: update break_readyz"
    views.write_text(text.replace(marker, marker + '    raise RuntimeError("a broken build")\n'))
    return source


def make_wheel(source: Path, into: Path, version: str) -> Path:
    """Zip a checkout's package as a wheel of ``version`` (what pip would install from it)."""
    into.mkdir(parents=True, exist_ok=True)
    wheel = into / f"appliance-{version}-py3-none-any.whl"
    info = f"appliance-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as z:
        for path in sorted((source / "appliance").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                z.write(path, path.relative_to(source).as_posix())
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: appliance\nVersion: {version}\n")
        z.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(f"{info}/RECORD", "")
    return wheel


class Pi:
    """A throwaway root, stand-in commands and an appliance checkout to install."""

    def __init__(
        self, tmp: Path, raspi_config: bool = True, groups: bool = True, full_source: bool = False
    ) -> None:
        self.tmp = tmp
        self.root, self.state, self.bin = tmp / "root", tmp / "state", tmp / "bin"
        self.source, self.log = tmp / "src", tmp / "calls.log"
        self.port = free_port()
        self.real_units: list[str] = []
        self.extra_env: dict[str, str] = {}
        for d in (self.root / "etc", self.root / "boot/firmware", self.root / "run/systemd/system"):
            d.mkdir(parents=True)
        self.state.mkdir()
        self.bin.mkdir()
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
        copy_source(self.source, full=full_source)

    def env(self) -> dict[str, str]:
        """The environment the script and the stand-ins run in."""
        return {
            "PATH": f"{self.bin}:/usr/bin:/bin:/usr/sbin:/sbin",
            "APPLIANCE_ROOT": str(self.root),
            "APPLIANCE_PYTHON": str(self.bin / "fake-python"),
            "FAKE_STATE": str(self.state),
            "FAKE_LOG": str(self.log),
            "FAKE_APT_AVAILABLE": "python3-lgpio",
            "FAKE_REAL_UNITS": " ".join(self.real_units),
            "FAKE_REAL_PYTHON": sys.executable,
            "FAKE_SITE": sysconfig.get_paths()["purelib"],
            "APPLIANCE_TEST_TOKEN": TEST_TOKEN,
            "LC_ALL": "C",
            **self.extra_env,
        }

    def run(self, *args: str, check: bool = True, **popen) -> subprocess.CompletedProcess:
        """Run install-on-pi (``--source`` the checkout) with ``args``; check it succeeded."""
        options = {"text": True, **popen} if "stdout" in popen else {"capture_output": True, "text": True}
        out = subprocess.run(
            [str(SCRIPT), "--source", str(self.source), *args], env=self.env(), timeout=180, **options
        )
        if check:
            assert out.returncode == 0, (out.stdout or "") + (out.stderr or "")
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

    def payload(self, tmp: Path, config: str | None = None) -> Path:
        """A payload folder: a config (the given text, else a stub) and the secret files."""
        payload = tmp / "payload"
        payload.mkdir(exist_ok=True)
        (payload / "appliance.toml").write_text(config or "[source]\nhost = 'db'\n")
        (payload / "known_hosts").write_text("bastion ssh-ed25519 AAAA\n")
        (payload / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n")
        (payload / "source.password").write_text("db-secret\n")
        return payload

    def real_config(self) -> str:
        """A config the real appliance loads: state in the root, the page on a free port."""
        return (
            f'[appliance]\nstate_dir = "{self.root}/var/lib/appliance"\n\n'
            '[source]\nhost = "db.internal"\ndatabase = "sales"\nuser = "ro"\n'
            'password_file = "/etc/appliance/source.password"\n\n'
            f'[web]\nhost = "127.0.0.1"\nport = {self.port}\napi_token_env = "APPLIANCE_TEST_TOKEN"\n\n'
            '[[tables]]\nname = "public.orders"\n'
        )

    @property
    def state_dir(self) -> Path:
        return self.root / "var/lib/appliance"

    @property
    def releases(self) -> Path:
        return self.root / "opt/appliance/releases"

    def current(self) -> str:
        """The release /opt/appliance/current links to (its name)."""
        return os.readlink(self.root / "opt/appliance/current").rsplit("/", 1)[-1]

    def ids(self, name: str) -> tuple[int, int]:
        """(uid, gid) of a user made by the stand-in useradd."""
        for line in (self.root / "etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name:
                return int(fields[2]), int(fields[3])
        raise KeyError(name)

    def group_members(self, group: str) -> list[str]:
        for line in (self.root / "etc/group").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == group:
                return [m for m in fields[3].split(",") if m]
        raise KeyError(group)

    def gid(self, group: str) -> int:
        for line in (self.root / "etc/group").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == group:
                return int(fields[2])
        raise KeyError(group)

    def pid(self, unit: str) -> int | None:
        path = self.state / f"pid-{unit}"
        return int(path.read_text()) if path.exists() else None

    def close(self) -> None:
        """Stop what the stand-in systemctl started for real."""
        for path in self.state.glob("pid-*"):
            try:
                os.kill(int(path.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
