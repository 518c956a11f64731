#!/usr/bin/env bash
# Benchmark (not a test): `egs-service net-convert` vs Debian's `cloud-init devel
# net-convert` rendering the same network-configs (the shared network conformance inputs)
# to the same output kinds (netplan, networkd, eni), side by side in one run, alternating
# per round. Prints wall time per render, peak memory and ratios.
#
# Needs: a release build (built here), Debian's cloud-init package, GNU time (`time` package).
# Usage: bench/netconvert-vs-cloud-init.sh [ROUNDS]
set -euo pipefail
rounds=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
corpus=${EGS_CONFORMANCE_DIR:-$root/../shared/conformance}/network
command -v cloud-init >/dev/null || { echo "cloud-init is not installed (apt-get install cloud-init)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is not installed (apt-get install time)" >&2; exit 2; }
cargo build --release -q -p egs-service --manifest-path "$root/Cargo.toml"
egs=$root/target/release/egs-service
mapfile -t inputs < <(find "$corpus" -name input.yaml | sort)
kinds=(netplan networkd eni)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

declare -A total=( [egs]=0 [cloud-init]=0 ) peak=( [egs]=0 [cloud-init]=0 )
render() { # tool input kind
  local out=$work/out rss
  rm -rf "$out"
  if [ "$1" = egs ]; then
    /usr/bin/time -f %M -o "$work/rss" "$egs" net-convert -p "$2" -k yaml -O "$3" -d "$out" >/dev/null 2>&1
  else
    /usr/bin/time -f %M -o "$work/rss" cloud-init devel net-convert -p "$2" -k yaml -O "$3" -d "$out" -D debian >/dev/null 2>&1
  fi
  rss=$(tail -n 1 "$work/rss")
  [ "${rss:-0}" -gt "${peak[$1]}" ] && peak[$1]=$rss
  return 0
}
for ((r = 1; r <= rounds; r++)); do
  for tool in egs cloud-init; do
    start=$(date +%s%N)
    for input in "${inputs[@]}"; do
      for kind in "${kinds[@]}"; do render "$tool" "$input" "$kind"; done
    done
    total[$tool]=$(( total[$tool] + $(date +%s%N) - start ))
  done
done
n=$(( ${#inputs[@]} * ${#kinds[@]} * rounds ))
awk -v e="${total[egs]}" -v c="${total[cloud-init]}" -v n="$n" -v pe="${peak[egs]}" -v pc="${peak[cloud-init]}" -v inputs="${#inputs[@]}" -v rounds="$rounds" 'BEGIN {
  printf "corpus: %d network-configs x 3 output kinds x %d rounds\n", inputs, rounds
  printf "%-34s %14s %14s\n", "tool", "mean ms/render", "peak RSS KiB"
  printf "%-34s %14.2f %14d\n", "egs-service net-convert", e / n / 1e6, pe
  printf "%-34s %14.2f %14d\n", "cloud-init devel net-convert 22.4.2", c / n / 1e6, pc
  printf "ratio (cloud-init / egs): wall time %.0fx, peak memory %.1fx\n", c / e, pc / pe
}'
