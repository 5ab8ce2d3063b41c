#!/bin/sh
# Part of the edgevision bundle on the boot partition. Called once at first boot, by firstrun.sh (Bookworm) or by
# cloud-init's runcmd (Trixie), as root: installs and enables edgevision-firstboot.service, which runs
# provision.sh from this folder once the network is up (and again a minute later if it fails, e.g. no network
# yet), then disables itself. With --now (cloud-init, where the boot goes on) the service is also started.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
unit=/etc/systemd/system/edgevision-firstboot.service
case "$here" in
    *[!A-Za-z0-9/._-]*) echo "firstboot-setup: unexpected folder name $here" >&2; exit 1 ;;
esac
sed "s|@BUNDLE@|$here|g" "$here/edgevision-firstboot.service" > "$unit.tmp"
chmod 644 "$unit.tmp"
mv "$unit.tmp" "$unit"
systemctl enable edgevision-firstboot.service
if [ "${1:-}" = --now ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl start --no-block edgevision-firstboot.service
fi
echo "firstboot-setup: edgevision-firstboot.service enabled: provision.sh runs from $here once the network is up"
