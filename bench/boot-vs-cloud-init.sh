#!/usr/bin/env bash
# bench/boot-vs-cloud-init.sh [BOOTS] — power-on → reachable → provisioned, EGS vs Debian's
# cloud-init 22.4.2, on twin Debian 12 images (vm-lab/image base / cloud-init) under QEMU
# (TCG) with the same NoCloud seed, BOOTS first boots each (default 3), alternating.
# Both images carry the EGS daemon, so both are reached the same way (ssh over vsock); in the
# cloud-init twin EGS only mirrors cloud-init's status (bridge mode). "Provisioned" is each
# one's own word: `egs-service status --wait` vs `cloud-init status --wait`, timed on the
# host from power-on. Each one's own records are printed too: the sum of its stages'
# durations (`egs-service status --format json`; `cloud-init analyze show`'s Total Time).
set -euo pipefail
boots=${1:-3}
. "$(dirname "$0")/../vm-lab/lab.sh"
work=${EGS_VM_WORK:-$(mktemp -d /tmp/egs-vm-bench.XXXXXX)}
mkdir -p "$work"; work=$(cd "$work" && pwd)
trap 'lab_stop "$work"' EXIT
lab_prepare
lab_host "$work"
EGS=/opt/eryph/guest-services/bin/egs-service

# A seed both can apply: cloud-init 22.4.2 rejects v2 `to: default` and its locale module
# fails in a minimal image.
seed=$work/seed; mkdir -p "$seed"
printf 'instance-id: iid-bench\nlocal-hostname: bench-vm\n' > "$seed/meta-data"
cat > "$seed/user-data" <<'UD'
#cloud-config
locale: false
hostname: bench-vm
users:
  - default
  - {name: alice, groups: [adm], sudo: "ALL=(ALL) NOPASSWD:ALL", shell: /bin/bash}
write_files:
  - {path: /etc/bench.conf, content: bench}
runcmd:
  - echo done > /var/log/bench-runcmd.log
UD
cat > "$seed/network-config" <<NC
version: 2
ethernets:
  lan:
    match: {macaddress: '$lab_mac'}
    addresses: [10.0.2.15/24]
    routes: [{to: 0.0.0.0/0, via: 10.0.2.2}]
NC
lab_seed_iso "$seed" "$work/seed.iso" cidata
lab_disk base install.sh "$work/egs.img" "$work"
lab_disk cloud-init install.sh "$work/cloud-init.img" "$work"
HOME=$work/home "$lab_egs_tool" add-ssh-config "fc:$work/vm.vsock" bench >/dev/null

since_power_on() { awk -v a="$(date +%s.%N)" -v b="$(cat "$work/power-on")" 'BEGIN{printf "%.1f", a - b}'; }
declare -A reach done own
for i in $(seq "$boots"); do
  for twin in egs cloud-init; do
    cp --sparse=always "$work/$twin.img" "$work/boot.img"
    lab_boot "$work/boot.img" "$work/seed.iso" "$work"
    r=$(lab_wait_ssh "$work" bench 900) || { echo "$twin: no SSH (see $work/console.log)" >&2; exit 1; }
    if [ "$twin" = egs ]; then
      lab_ssh "$work" bench "$EGS status --wait --timeout 900" > /dev/null || true
      d=$(since_power_on)
      # As cloud-init analyze's "Total Time": the stages' durations added up.
      o=$(lab_ssh "$work" bench "$EGS status --format json" | python3 -c 'import json,sys; s=json.load(sys.stdin); print("%.1f" % sum(x["duration"] for x in s["stages"]))')
    else
      lab_ssh "$work" bench "cloud-init status --wait" > /dev/null || true
      d=$(since_power_on)
      o=$(lab_ssh "$work" bench "cloud-init analyze show" | awk '/^Total Time:/{print $3; exit}')
    fi
    reach[$twin]+="$r "; done[$twin]+="$d "; own[$twin]+="$o "
    printf 'boot %d %-10s reachable %6s s  provisioned %6s s  own records %6s s\n' "$i" "$twin" "$r" "$d" "$o"
    lab_stop "$work"
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo
printf '%-34s %10s %12s %8s\n' "median of $boots boots (QEMU TCG)" EGS cloud-init ratio
for what in reach done own; do
  declare -n m=$what
  e=$(echo "${m[egs]}" | median); c=$(echo "${m[cloud-init]}" | median)
  case $what in reach) label="power-on → SSH over vsock";; done) label="power-on → provisioned";; own) label="provisioning, own records";; esac
  printf '%-34s %9ss %11ss %7sx\n' "$label" "$e" "$c" "$(awk -v a="$c" -v b="$e" 'BEGIN{printf "%.1f", a / b}')"
done
