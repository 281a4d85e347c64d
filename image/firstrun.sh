#!/bin/sh
# First boot of a Raspberry Pi OS card (Bookworm style) customized by `appliance image customize`.
#
# The kernel runs this once, as root, before the normal boot (cmdline.txt: systemd.run=
# /boot/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target).
# It sets the login, hostname, SSH and Wi-Fi from appliance/firstrun.env, hands the appliance
# payload to appliance/firstboot.sh, then removes itself, its settings and its cmdline.txt
# additions, and the Pi reboots into the normal system. It never fails: a failing script would
# leave a headless Pi stuck before the normal boot, so each step logs its errors and goes on.
# Log: /var/log/appliance-firstrun.log
set +e

BOOT=/boot/firmware
[ -f "$BOOT/cmdline.txt" ] || BOOT=/boot
exec >>/var/log/appliance-firstrun.log 2>&1
echo "appliance firstrun: started $(date -u +%Y-%m-%dT%H:%M:%SZ), boot partition $BOOT"

IMAGER_CUSTOM=/usr/lib/raspberrypi-sys-mods/imager_custom
USERCONF=/usr/lib/userconf-pi/userconf
APPLIANCE_USER=""
APPLIANCE_PASSWORD_HASH=""
APPLIANCE_SSH_KEYS=""
APPLIANCE_HOSTNAME=""
APPLIANCE_WIFI_SSID=""
APPLIANCE_WIFI_PSK=""
APPLIANCE_WIFI_COUNTRY=""
APPLIANCE_TIMEZONE=""
SETTINGS="$BOOT/appliance/firstrun.env"
if [ -f "$SETTINGS" ]; then
    # shellcheck source=/dev/null
    . "$SETTINGS"
fi

set_hostname() {
    [ -n "$APPLIANCE_HOSTNAME" ] || return 0
    if [ -x "$IMAGER_CUSTOM" ]; then
        "$IMAGER_CUSTOM" set_hostname "$APPLIANCE_HOSTNAME"
        return
    fi
    old=$(tr -d ' \t\n\r' </etc/hostname)
    echo "$APPLIANCE_HOSTNAME" >/etc/hostname
    if [ -f /etc/hosts ]; then
        sed -i "s/127\.0\.1\.1.*$old/127.0.1.1\t$APPLIANCE_HOSTNAME/g" /etc/hosts
    fi
}

set_user() {
    [ -n "$APPLIANCE_USER" ] || return 0
    if [ -x "$USERCONF" ]; then
        # Renames the image's first user (uid 1000) and skips the first-boot setup wizard.
        "$USERCONF" "$APPLIANCE_USER" "$APPLIANCE_PASSWORD_HASH"
        return
    fi
    first=$(getent passwd 1000 | cut -d: -f1)
    if [ -z "$first" ]; then
        useradd -m -s /bin/bash -G sudo "$APPLIANCE_USER"
    elif [ "$first" != "$APPLIANCE_USER" ]; then
        usermod -l "$APPLIANCE_USER" "$first"
        usermod -m -d "/home/$APPLIANCE_USER" "$APPLIANCE_USER"
        groupmod -n "$APPLIANCE_USER" "$first"
    fi
    if [ -n "$APPLIANCE_PASSWORD_HASH" ]; then
        echo "$APPLIANCE_USER:$APPLIANCE_PASSWORD_HASH" | chpasswd -e
    fi
}

enable_ssh() {
    [ -n "$APPLIANCE_USER" ] || return 0  # no login configured: nobody to let in
    set --
    while IFS= read -r key; do
        [ -n "$key" ] && set -- "$@" "$key"
    done <<EOF
$APPLIANCE_SSH_KEYS
EOF
    if [ -x "$IMAGER_CUSTOM" ]; then
        if [ "$#" -gt 0 ]; then
            "$IMAGER_CUSTOM" enable_ssh -k "$@"
        else
            "$IMAGER_CUSTOM" enable_ssh
        fi
        return
    fi
    if [ "$#" -gt 0 ]; then
        home=$(getent passwd "$APPLIANCE_USER" | cut -d: -f6)
        install -o "$APPLIANCE_USER" -g "$APPLIANCE_USER" -m 700 -d "$home/.ssh"
        printf '%s\n' "$@" >>"$home/.ssh/authorized_keys"
        chown "$APPLIANCE_USER:$APPLIANCE_USER" "$home/.ssh/authorized_keys"
        chmod 600 "$home/.ssh/authorized_keys"
        mkdir -p /etc/ssh/sshd_config.d
        echo 'PasswordAuthentication no' >/etc/ssh/sshd_config.d/appliance.conf
    fi
    systemctl enable ssh
}

set_wifi() {
    [ -n "$APPLIANCE_WIFI_COUNTRY" ] || return 0
    if [ -n "$APPLIANCE_WIFI_SSID" ] && [ -x "$IMAGER_CUSTOM" ]; then
        # Writes a NetworkManager connection; the PSK is the PBKDF2 hex, never the passphrase.
        "$IMAGER_CUSTOM" set_wlan "$APPLIANCE_WIFI_SSID" "$APPLIANCE_WIFI_PSK" "$APPLIANCE_WIFI_COUNTRY"
    elif [ -n "$APPLIANCE_WIFI_SSID" ]; then
        umask 077
        cat >/etc/wpa_supplicant/wpa_supplicant.conf <<EOF
country=$APPLIANCE_WIFI_COUNTRY
ctrl_interface=DIR=/var/run/wpa_supplicant GROUP=netdev
update_config=1
network={
	ssid="$APPLIANCE_WIFI_SSID"
	psk=$APPLIANCE_WIFI_PSK
}
EOF
        umask 022
    elif command -v raspi-config >/dev/null; then
        raspi-config nonint do_wifi_country "$APPLIANCE_WIFI_COUNTRY"
    fi
    rfkill unblock wifi
    for state in /var/lib/systemd/rfkill/*:wlan; do
        [ -f "$state" ] && echo 0 >"$state"
    done
}

set_timezone() {
    [ -n "$APPLIANCE_TIMEZONE" ] || return 0
    if [ -x "$IMAGER_CUSTOM" ]; then
        "$IMAGER_CUSTOM" set_timezone "$APPLIANCE_TIMEZONE"
        return
    fi
    [ -f "/usr/share/zoneinfo/$APPLIANCE_TIMEZONE" ] || return 1
    ln -sf "/usr/share/zoneinfo/$APPLIANCE_TIMEZONE" /etc/localtime
    echo "$APPLIANCE_TIMEZONE" >/etc/timezone
}

wipe() {
    shred -u "$1" 2>/dev/null || rm -f "$1"
}

set_hostname || echo "appliance firstrun: setting the hostname failed"
set_user || echo "appliance firstrun: setting up the login user failed"
enable_ssh || echo "appliance firstrun: enabling SSH failed"
set_wifi || echo "appliance firstrun: setting up Wi-Fi failed"
set_timezone || echo "appliance firstrun: setting the time zone failed"
if [ -f "$BOOT/appliance/firstboot.sh" ]; then
    sh "$BOOT/appliance/firstboot.sh" || echo "appliance firstrun: the appliance payload failed"
fi
[ -f "$SETTINGS" ] && wipe "$SETTINGS"
rmdir "$BOOT/appliance" 2>/dev/null
echo "appliance firstrun: done $(date -u +%Y-%m-%dT%H:%M:%SZ)"

# Bookworm's initramfs (raspberrypi-sys-mods' imager_fixup) cuts this script at the next line
# and appends its own equivalent with /boot/firmware paths; either way, only this removes
# itself and the cmdline.txt words it was started by. The script is deleted, not shredded:
# the shell is still reading it.
rm -f "$BOOT"/firstrun.sh
sed -i -e 's| systemd\.run=[^ ]*||g' -e 's| systemd\.run_success_action=[^ ]*||g' \
    -e 's| systemd\.unit=kernel-command-line\.target||g' "$BOOT/cmdline.txt"
exit 0
