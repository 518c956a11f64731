#!/usr/bin/env bash
# Benchmark (not a test): EGS and Debian 12's cloud-init 22.4.2 apply the same cloud-config
# (users with groups, sudo and keys, passwords, write_files, runcmd) to the same isolated
# root — a debootstrapped Debian 12 with cloud-init installed, under a fresh overlay for
# every run. cloud-init runs its four stages inside the root (chroot, own mount and UTS
# namespaces, so nothing reaches this machine); EGS runs `egs-service run --root`. Both
# find the data in the NoCloud seed directory and run the same modules. Prints wall time,
# peak memory and ratios.
#
# Needs root, debootstrap, GNU time, overlayfs; builds the base root once in
# ${EGS_BENCH_CACHE:-/var/cache/egs-bench} (Debian's mirror).
# Usage: bench/provision-vs-cloud-init.sh [ROUNDS]
set -euo pipefail
rounds=${1:-5}
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${EGS_BENCH_CACHE:-/var/cache/egs-bench}
base=$cache/bookworm
for tool in debootstrap unshare chroot /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install debootstrap time)" >&2; exit 2; }
done
if [ ! -x "$base/usr/bin/cloud-init" ]; then
  mkdir -p "$cache"
  debootstrap --variant=minbase --include=passwd,openssh-client,python3-cffi-backend bookworm "$base" http://deb.debian.org/debian >/dev/null
  cp /etc/resolv.conf "$base/etc/resolv.conf"
  DEBIAN_FRONTEND=noninteractive chroot "$base" apt-get install -y -qq --no-install-recommends cloud-init >/dev/null
fi
cargo build --release -q -p egs-service --manifest-path "$repo/Cargo.toml"
egs=$repo/target/release/egs-service

work=$(mktemp -d /tmp/egs-bench.XXXXXX)
cleanup() {
  for m in "$work"/run.*/root; do umount "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/user-data" <<'EOF'
#cloud-config
users:
  - default
  - name: alice
    gecos: Alice
    groups: [adm, sudo]
    sudo: ALL=(ALL) NOPASSWD:ALL
    shell: /bin/bash
    lock_passwd: false
    plain_text_passwd: bench-password-1
    ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchAliceKeyxxxxxxxxxxxxxxxxxxxxxxxxx alice@bench]
  - name: bob
    groups: [users]
    ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchBobKeyxxxxxxxxxxxxxxxxxxxxxxxxxxx bob@bench]
ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchDefaultKeyxxxxxxxxxxxxxxxxxxxxxxx default@bench]
ssh_genkeytypes: [ed25519]
write_files:
  - path: /etc/bench/app.conf
    content: "setting = 1\n"
    permissions: '0640'
  - path: /etc/bench/blob
    encoding: b64
    content: aGVsbG8gZnJvbSBiZW5jaAo=
  - path: /etc/bench/alice.txt
    owner: alice:alice
    content: "owned\n"
    defer: true
runcmd:
  - echo one > /var/tmp/bench-runcmd
  - [sh, -c, 'echo two >> /var/tmp/bench-runcmd']
EOF
printf 'instance-id: iid-bench\nlocal-hostname: bench-vm\n' > "$work/meta-data"
cat > "$work/99-bench.cfg" <<'EOF'
datasource_list: [NoCloud, None]
network: {config: disabled}
cloud_init_modules: [bootcmd, write_files, set_hostname, update_hostname, update_etc_hosts, users_groups, ssh]
cloud_config_modules: [set_passwords, timezone, runcmd]
cloud_final_modules: [write_files_deferred, scripts_per_once, scripts_per_boot, scripts_per_instance, scripts_user, final_message, power_state_change]
EOF

# A fresh copy of the base root (overlay), seeded; prints its path.
fresh() {
  local dir
  dir=$(mktemp -d "$work/run.XXXX")
  mkdir -p "$dir/upper" "$dir/work" "$dir/root"
  mount -t overlay overlay -o "lowerdir=$base,upperdir=$dir/upper,workdir=$dir/work" "$dir/root"
  mkdir -p "$dir/root/var/lib/cloud/seed/nocloud" "$dir/root/etc/cloud/cloud.cfg.d"
  cp "$work/user-data" "$work/meta-data" "$dir/root/var/lib/cloud/seed/nocloud/"
  cp "$work/99-bench.cfg" "$dir/root/etc/cloud/cloud.cfg.d/"
  echo "$dir/root"
}

measure() { # label command… → "seconds kib"
  local label=$1 out=$work/time.txt
  shift
  /usr/bin/time -f "%e %M" -o "$out" "$@" >/dev/null 2>"$work/$label.stderr" || { echo "$label failed:" >&2; tail -5 "$work/$label.stderr" >&2; exit 1; }
  tail -n 1 "$out"
}

# cloud-init's four stages inside the root, in namespaces of their own.
cloud_init_in() {
  echo "mount --rbind /dev '$1/dev' && mount -t proc proc '$1/proc' && exec chroot '$1' sh -c 'cloud-init init --local && cloud-init init && cloud-init modules --mode config && cloud-init modules --mode final'"
}

check() { # root label
  grep -q '^alice:' "$1/etc/passwd" && grep -q '^bob:' "$1/etc/passwd" && [ "$(cat "$1/var/tmp/bench-runcmd")" = "$(printf 'one\ntwo')" ] \
    && [ -f "$1/etc/bench/alice.txt" ] || { echo "$2 did not provision the root as expected" >&2; exit 1; }
}

declare -A secs=( [egs]=0 [cloud-init]=0 ) peak=( [egs]=0 [cloud-init]=0 )
for ((r = 1; r <= rounds; r++)); do
  root_ci=$(fresh)
  read -r s m < <(measure cloud-init unshare --uts --mount sh -c "$(cloud_init_in "$root_ci")")
  check "$root_ci" cloud-init
  secs[cloud-init]=$(awk -v a="${secs[cloud-init]}" -v b="$s" 'BEGIN {print a + b}')
  [ "$m" -gt "${peak[cloud-init]}" ] && peak[cloud-init]=$m
  root_egs=$(fresh)
  # cloud-init is installed in the base root; disabled here, EGS provisions instead of bridging.
  touch "$root_egs/etc/cloud/cloud-init.disabled"
  read -r s m < <(measure egs "$egs" run --root "$root_egs")
  check "$root_egs" egs
  secs[egs]=$(awk -v a="${secs[egs]}" -v b="$s" 'BEGIN {print a + b}')
  [ "$m" -gt "${peak[egs]}" ] && peak[egs]=$m
done
awk -v e="${secs[egs]}" -v c="${secs[cloud-init]}" -v pe="${peak[egs]}" -v pc="${peak[cloud-init]}" -v n="$rounds" 'BEGIN {
  printf "workload: 3 users (groups, sudo, keys, passwords), 3 files, 2 runcmd entries; %d rounds, fresh Debian 12 root each\n", n
  printf "%-28s %14s %16s\n", "tool", "mean s/run", "peak RSS KiB"
  printf "%-28s %14.3f %16d\n", "egs-service run --root", e / n, pe
  printf "%-28s %14.3f %16d\n", "cloud-init 22.4.2 (chroot)", c / n, pc
  printf "ratio (cloud-init / egs): wall time %.1fx, peak memory %.1fx\n", c / e, pc / pe
}'
