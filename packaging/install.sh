#!/bin/sh
# Installs, upgrades or removes eryph guest services (EGS) on a Linux guest.
#
#   install.sh [install] [--ssh-public-key KEY|FILE] [--root DIR] [--no-start]
#   install.sh uninstall [--purge] [--root DIR]
#
# install (the default) copies bin/egs-service from beside this script to
# /opt/eryph/guest-services/bin, the systemd units to /etc/systemd/system, creates
# /etc/opt/eryph/guest-services, enables the units and (re)starts the service. Running it
# again upgrades in place and changes nothing else. --ssh-public-key writes id_egs.pub
# (an authorized_keys line, or a file holding them).
# uninstall stops and removes the service and the program; configuration, state and logs
# stay unless --purge.
# --root DIR acts on a system image below DIR (no service is started there).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
action=install
root=
key=
purge=0
start=1
while [ $# -gt 0 ]; do
  case $1 in
    install|uninstall) action=$1 ;;
    --ssh-public-key) [ $# -ge 2 ] || { echo "install.sh: --ssh-public-key needs a key or a file" >&2; exit 2; }; key=$2; shift ;;
    --root) [ $# -ge 2 ] || { echo "install.sh: --root needs a directory" >&2; exit 2; }; root=${2%/}; shift ;;
    --purge) purge=1 ;;
    --no-start) start=0 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$root" ] && start=0
if [ -z "$root" ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root" >&2
  exit 1
fi

prefix=$root/opt/eryph/guest-services
config=$root/etc/opt/eryph/guest-services
units=$root/etc/systemd/system
unit_names="eryph-guest-services.service egs-provision-local.service egs-provision.service"

have_systemd() { [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }
systemctl_() {
  if [ -n "$root" ]; then
    command -v systemctl >/dev/null && systemctl --root="$root" "$@" >/dev/null 2>&1 || true
  elif have_systemd; then
    systemctl "$@"
  fi
}

if [ "$action" = uninstall ]; then
  if have_systemd; then systemctl stop $unit_names 2>/dev/null || true; fi
  systemctl_ disable $unit_names
  for u in $unit_names; do rm -f "$units/$u"; done
  systemctl_ daemon-reload
  rm -rf "$prefix"
  rmdir "$root/opt/eryph" 2>/dev/null || true
  if [ "$purge" = 1 ]; then
    rm -rf "$config" "$root/var/lib/eryph/provisioning" "$root/var/log/eryph/guest-services"
    rmdir "$root/etc/opt/eryph" "$root/var/lib/eryph" "$root/var/log/eryph" 2>/dev/null || true
  fi
  if [ "$purge" = 1 ]; then
    echo "EGS removed, with its configuration, state and logs"
  else
    echo "EGS removed; configuration kept in ${config#"$root"} (uninstall --purge removes it)"
  fi
  exit 0
fi

[ -x "$here/bin/egs-service" ] || { echo "install.sh: $here/bin/egs-service is missing" >&2; exit 1; }
if have_systemd && systemctl is-active --quiet eryph-guest-services.service; then
  systemctl stop eryph-guest-services.service
fi
mkdir -p "$prefix/bin" "$units"
# Copy under a temporary name, then rename: a running binary is never overwritten in place.
cp "$here/bin/egs-service" "$prefix/bin/.egs-service.new"
chmod 0755 "$prefix/bin/.egs-service.new"
mv -f "$prefix/bin/.egs-service.new" "$prefix/bin/egs-service"
for u in $unit_names; do
  install -m 0644 "$here/systemd/$u" "$units/$u"
done
[ -f "$here/README.md" ] && install -m 0644 "$here/README.md" "$prefix/README.md"
mkdir -p "$config"
chmod 0755 "$config"
if [ -n "$key" ]; then
  if [ -f "$key" ]; then text=$(cat "$key"); else text=$key; fi
  case $text in
    ssh-*|ecdsa-*|sk-*|*" ssh-"*|*" ecdsa-"*) ;;
    *) echo "install.sh: '$key' is neither a public key nor a file with one" >&2; exit 2 ;;
  esac
  printf '%s\n' "$text" > "$config/.id_egs.pub.new"
  chmod 0644 "$config/.id_egs.pub.new"
  mv -f "$config/.id_egs.pub.new" "$config/id_egs.pub"
fi
systemctl_ daemon-reload
systemctl_ enable $unit_names
if [ "$start" = 1 ] && have_systemd; then
  systemctl restart eryph-guest-services.service
fi
echo "EGS $("$prefix/bin/egs-service" version 2>/dev/null | cut -d' ' -f2) installed in ${prefix#"$root"}"
