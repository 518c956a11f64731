#!/usr/bin/env bash
# Benchmark (not a test): `egs-tool upload-file` / `download-file` vs OpenSSH's `sftp` and
# `scp` against the same egs-service daemon (Unix socket, ProxyCommand for OpenSSH), same
# file (default 1 GiB). Prints throughput and time ratios (egs-tool relative to each tool).
# Needs: a release build (built here). Usage: bench/transfer-vs-openssh.sh [SIZE_MIB]
set -euo pipefail
size_mib=${1:-1024}
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release -q -p egs-service -p egs-tool --manifest-path "$root/Cargo.toml"
egs=$root/target/release/egs-service
tool=$root/target/release/egs-tool
work=$(mktemp -d /var/tmp/egs-transfer-bench.XXXXXX)
daemon=
cleanup() { [ -n "$daemon" ] && kill "$daemon" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
export EGS_TOOL_HOME=$work/tool HOME=$work/home
mkdir -p "$work/conf" "$work/guest" "$HOME"
echo "ProvisioningEnabled=0" > "$work/conf/service-control.conf"
"$tool" initialize >/dev/null
"$tool" get-ssh-key > "$work/conf/id_egs.pub"
"$egs" --listen "unix:$work/egs.sock" --config-dir "$work/conf" --kvp-dir "$work" > "$work/egs.out" 2>&1 &
daemon=$!
for _ in $(seq 100); do [ -S "$work/egs.sock" ] && break; sleep 0.05; done
target=unix:$work/egs.sock
"$tool" add-ssh-config "$target" bench >/dev/null
cfg=$HOME/.ssh/config
echo "creating a ${size_mib} MiB file ..."
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/payload"
sum=$(sha256sum < "$work/payload" | cut -c1-64)
now() { date +%s%N; }
declare -A up down
measure() { # name upload-command download-command
  rm -f "$work/guest/file" "$work/back"
  local t0 t1 t2
  t0=$(now); eval "$2" >/dev/null; t1=$(now); eval "$3" >/dev/null; t2=$(now)
  [ "$(sha256sum < "$work/back" | cut -c1-64)" = "$sum" ] || { echo "$1: the round trip differs" >&2; exit 1; }
  up[$1]=$(( (t1 - t0) / 1000000 )); down[$1]=$(( (t2 - t1) / 1000000 ))
}
measure egs-tool "'$tool' upload-file '$target' '$work/payload' '$work/guest/file'" "'$tool' download-file '$target' '$work/guest/file' '$work/back'"
measure sftp "sftp -q -F '$cfg' -b <(echo 'put $work/payload $work/guest/file') bench" "sftp -q -F '$cfg' -b <(echo 'get $work/guest/file $work/back') bench"
measure scp "scp -q -F '$cfg' '$work/payload' 'bench:$work/guest/file'" "scp -q -F '$cfg' 'bench:$work/guest/file' '$work/back'"
mib_s() { awk -v ms="$1" -v mib="$size_mib" 'BEGIN { printf "%.0f MiB/s", mib / (ms / 1000) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "${size_mib} MiB through one egs-service daemon (Unix socket), OpenSSH $(ssh -V 2>&1 | cut -d, -f1)"
printf '%-10s %14s %14s %18s %18s\n' "" "upload" "download" "egs-tool time ÷ up" "egs-tool time ÷ down"
for t in egs-tool sftp scp; do
  printf '%-10s %14s %14s %18s %18s\n' "$t" "$(mib_s "${up[$t]}")" "$(mib_s "${down[$t]}")" "$(ratio "${up[egs-tool]}" "${up[$t]}")" "$(ratio "${down[egs-tool]}" "${down[$t]}")"
done
