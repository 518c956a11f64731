# vm-lab/lab.sh — functions of the VM lab, sourced by vm-lab/scenarios and bench/boot-vs-cloud-init.sh.
# A guest is a Debian 12 disk image (vm-lab/image) with EGS installed, booted by QEMU (TCG)
# with its virtio-vsock bridged by vhost-device-vsock to a Unix socket on the host
# (Firecracker hybrid-vsock protocol), so the host reaches it as `fc:SOCKET` and never
# touches its own AF_VSOCK. Seeds are CD-ROMs; the NIC is virtio on user-mode networking.

lab_repo=${EGS_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
lab_cache=${EGS_VM_CACHE:-/var/cache/egs-vm-lab}
lab_mac=52:54:00:12:34:56

# Installs what the lab needs (Debian packages; vhost-device-vsock from crates.io into the cache).
lab_prepare() {
  local need=()
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
  command -v genisoimage >/dev/null || need+=(genisoimage)
  command -v ssh >/dev/null || need+=(openssh-client)
  command -v sftp >/dev/null || need+=(openssh-client)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  lab_vhost=$(command -v vhost-device-vsock || echo "$lab_cache/tools/bin/vhost-device-vsock")
  if [ ! -x "$lab_vhost" ]; then
    echo "vm-lab: cargo install vhost-device-vsock (once, into $lab_cache/tools)" >&2
    cargo install --locked -q vhost-device-vsock --root "$lab_cache/tools"
  fi
  lab_egs_service=${EGS_SERVICE_BIN:-$lab_repo/target/x86_64-unknown-linux-musl/release/egs-service}
  lab_egs_tool=${EGS_TOOL_BIN:-$lab_repo/target/x86_64-unknown-linux-musl/release/egs-tool}
  [ -x "$lab_egs_service" ] && [ -x "$lab_egs_tool" ] || "$lab_repo/scripts/build-release" >&2
}

# lab_disk FLAVOUR INSTALL OUT.img WORK — a disk image of the cached tree with EGS installed,
#   INSTALL: install.sh (packaging/install.sh --root with the machine key) or deb (dpkg -i
#   inside the image, the key then written like an operator would), or none.
lab_disk() {
  local flavour=$1 install=$2 out=$3 work=$4 tree stage
  tree=$("$lab_repo/vm-lab/image" "$flavour")
  stage=$work/stage-$(basename "$out" .img)
  rm -rf "$stage"; cp -a "$tree" "$stage"
  case $install in
    install.sh)
      local kit=$work/kit; rm -rf "$kit"; mkdir -p "$kit/bin" "$kit/systemd"
      cp "$lab_egs_service" "$kit/bin/egs-service"
      cp "$lab_repo/packaging/install.sh" "$kit/"; cp "$lab_repo/packaging/systemd/"*.service "$kit/systemd/"
      sh "$kit/install.sh" --root "$stage" --ssh-public-key "$work/home/.eryph-key.pub" >/dev/null ;;
    deb)
      local dist=$work/dist
      "$lab_repo/scripts/package" --bin-dir "$(dirname "$lab_egs_service")" --out "$dist" > "$work/package.log" 2>&1 || {
        cat "$work/package.log" >&2; return 1; }
      cp "$dist"/eryph-guest-services_*_amd64.deb "$stage/tmp/egs.deb"
      chroot "$stage" dpkg -i /tmp/egs.deb >/dev/null
      rm -f "$stage/tmp/egs.deb"
      install -m 0644 "$work/home/.eryph-key.pub" "$stage/etc/opt/eryph/guest-services/id_egs.pub" ;;
    none) ;;
  esac
  rm -f "$out"; truncate -s 3G "$out"
  mkfs.ext4 -q -F -L root -d "$stage" "$out"
  rm -rf "$stage"
  # The guest's own kernel and initramfs boot it.
  cp "$tree"/boot/vmlinuz-* "$work/vmlinuz"; cp "$tree"/boot/initrd.img-* "$work/initrd"
}

# lab_seed_iso DIR OUT LABEL — a seed CD-ROM (cidata for NoCloud, config-2 for ConfigDrive).
lab_seed_iso() {
  genisoimage -quiet -joliet -rock -volid "$3" -output "$2" "$1"
}

# lab_host WORK — the operator's side: a home of its own with the machine key.
lab_host() {
  local work=$1
  mkdir -p "$work/home"
  HOME=$work/home "$lab_egs_tool" initialize >/dev/null
  HOME=$work/home "$lab_egs_tool" get-ssh-key > "$work/home/.eryph-key.pub"
}

# lab_boot IMG SEED WORK — powers the guest on (records the time); returns at once.
lab_boot() {
  local img=$1 seed=$2 work=$3
  lab_stop "$work"
  rm -f "$work/vhost.sock" "$work/vm.vsock"
  "$lab_vhost" --guest-cid=3 --uds-path="$work/vm.vsock" --socket="$work/vhost.sock" > "$work/vhost.log" 2>&1 &
  echo $! > "$work/vhost.pid"
  for _ in $(seq 100); do [ -S "$work/vhost.sock" ] && break; sleep 0.1; done
  local cdrom=()
  [ -n "$seed" ] && cdrom=(-drive "file=$seed,media=cdrom,readonly=on")
  date +%s.%N > "$work/power-on"
  qemu-system-x86_64 -accel tcg -m 1024 -smp 1 -nographic -no-reboot \
    -object memory-backend-memfd,id=mem,size=1024M,share=on -machine q35,memory-backend=mem \
    -chardev socket,id=c0,path="$work/vhost.sock" -device vhost-user-vsock-pci,chardev=c0 \
    -drive "file=$img,if=virtio,format=raw" "${cdrom[@]}" \
    -netdev user,id=n0 -device "virtio-net-pci,netdev=n0,mac=$lab_mac" \
    -kernel "$work/vmlinuz" -initrd "$work/initrd" \
    -append "root=/dev/vda rw console=ttyS0 panic=-1" > "$work/console.log" 2>&1 &
  echo $! > "$work/qemu.pid"
}

# lab_stop WORK — powers the guest off (if it still runs) and stops its vsock bridge.
lab_stop() {
  local work=$1 pid
  for f in qemu vhost; do
    if [ -f "$work/$f.pid" ]; then
      pid=$(cat "$work/$f.pid"); kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true; rm -f "$work/$f.pid"
    fi
  done
}

# lab_wait_powered_off WORK SECONDS — waits for the guest to power off (after a reboot
# request: QEMU runs with -no-reboot, so a reboot ends the process and lab_boot starts the
# next boot from the same disk).
lab_wait_powered_off() {
  local pid; pid=$(cat "$1/qemu.pid")
  for _ in $(seq "$(( $2 * 10 ))"); do kill -0 "$pid" 2>/dev/null || { rm -f "$1/qemu.pid"; lab_stop "$1"; return 0; }; sleep 0.1; done
  return 1
}

# lab_ssh WORK ARGS... — plain ssh with the config egs-tool wrote.
lab_ssh() { local work=$1; shift; HOME=$work/home ssh -F "$work/home/.ssh/config" "$@"; }

# lab_wait_ssh WORK ALIAS SECONDS — waits until `ssh ALIAS true` works; prints seconds since
# power-on.
lab_wait_ssh() {
  local work=$1 alias=$2 limit=$3 start now
  start=$(cat "$work/power-on")
  while :; do
    if lab_ssh "$work" -o ConnectTimeout=10 "$alias" true 2>/dev/null; then
      now=$(date +%s.%N); awk -v a="$now" -v b="$start" 'BEGIN{printf "%.1f\n", a - b}'; return 0
    fi
    now=$(date +%s.%N)
    if awk -v a="$now" -v b="$start" -v l="$limit" 'BEGIN{exit !(a - b > l)}'; then return 1; fi
    if [ -f "$work/qemu.pid" ] && ! kill -0 "$(cat "$work/qemu.pid")" 2>/dev/null; then return 1; fi
    sleep 0.5
  done
}
