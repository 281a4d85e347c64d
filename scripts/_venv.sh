# Shared by scripts/test, scripts/demo and scripts/bench: make .venv and install the package.
# Sourced, not run. Reinstalls only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${APPLIANCE_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

ensure_venv() {
    local extras="$1"   # e.g. "pi,test", "pi" or ""
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
    fi
    local spec="$ROOT"
    [ -n "$extras" ] && spec="$ROOT[$extras]"
    local stamp="$VENV/.installed-$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/constraints.txt" | sha256sum | cut -c1-16)-${extras:-base}"
    if [ ! -f "$stamp" ]; then
        # The exact versions of scripts/constraints.txt: every machine runs the same libraries.
        # Quiet unless it fails: setuptools' editable-build warnings are not for a newcomer.
        if ! "$VENV/bin/python" -m pip install --quiet -c "$ROOT/scripts/constraints.txt" -e "$spec" \
            >"$VENV/.install.log" 2>&1; then
            cat "$VENV/.install.log" >&2
            return 1
        fi
        touch "$stamp"
    fi
}

# Install Debian packages when running as root and the command is missing.
# Usage: need_apt COMMAND PACKAGE...
APT_UPDATED=0
need_apt() {
    local cmd="$1"; shift
    if command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ]; then return 0; fi
    if [ "$(id -u)" != 0 ]; then
        echo "missing: $cmd (install the Debian package(s): $*)" >&2
        return 1
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The PostgreSQL server binaries (initdb, pg_ctl, postgres) for throwaway clusters.
ensure_postgres_binaries() {
    if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        return 0
    fi
    need_apt initdb postgresql
}
