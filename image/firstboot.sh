#!/bin/sh
# Hand the appliance payload on the boot partition over to the system, once, at first boot.
#
# Run as root by firstrun.sh (Bookworm style) or by cloud-init's runcmd (Trixie style), from
# the boot partition's appliance/ folder. The config and secrets move to /etc/appliance
# (mode 0600; scripts/install-on-pi hands them to the service user) and are wiped from the
# boot partition, which has no permissions at all. The appliance's source goes to
# /opt/appliance/src, and appliance-firstboot.service is enabled: it runs install-on-pi as
# soon as the network is up, and again after a failure, until the install succeeds.
# Usage: firstboot.sh [--start]   (--start: start that service now instead of at next boot)
# APPLIANCE_ROOT=DIR prefixes the system paths (for tests, with a stand-in systemctl).
set -eu

PAYLOAD=$(cd "$(dirname "$0")" && pwd)
ROOT="${APPLIANCE_ROOT:-}"
ETC="$ROOT/etc/appliance"
SRC="$ROOT/opt/appliance/src"
UNIT_DIR="$ROOT/etc/systemd/system"
BUNDLE=appliance-src.tar.gz
umask 077

say() {
    echo "appliance firstboot: $*"
}

wipe() {
    shred -u "$1" 2>/dev/null || rm -f "$1"
}

move_files() {
    install -d -m 0750 "$ETC"
    for file in "$PAYLOAD"/*; do
        [ -f "$file" ] || continue
        name=$(basename "$file")
        case "$name" in
            firstboot.sh | firstrun.env | "$BUNDLE") continue ;;
        esac
        install -m 0600 "$file" "$ETC/$name"
        wipe "$file"
        say "moved $name to /etc/appliance"
    done
}

unpack_source() {
    [ -f "$PAYLOAD/$BUNDLE" ] || return 0
    umask 022
    rm -rf "$SRC.new"
    mkdir -p "$SRC.new"  # beside the old copy: a failed unpack leaves the old one
    tar -xzf "$PAYLOAD/$BUNDLE" -C "$SRC.new" --no-same-owner
    rm -rf "$SRC"
    mv "$SRC.new" "$SRC"
    rm -f "$PAYLOAD/$BUNDLE"
    umask 077
    say "unpacked the appliance source to /opt/appliance/src"
}

enable_installer() {
    install -d -m 0755 "$UNIT_DIR"
    install -m 0644 "$SRC/systemd/appliance-firstboot.service" "$UNIT_DIR/"
    systemctl enable appliance-firstboot.service
    if [ "${1:-}" = "--start" ]; then
        # Enabled above, so a start that fails now (no systemd yet, a chroot) happens at next boot.
        systemctl start --no-block appliance-firstboot.service ||
            say "could not start appliance-firstboot.service now; it starts at the next boot"
    fi
    say "appliance-firstboot.service will run install-on-pi once the network is up"
}

move_files
unpack_source
enable_installer "${1:-}"
rm -f "$PAYLOAD/firstboot.sh"
rmdir "$PAYLOAD" 2>/dev/null || true
