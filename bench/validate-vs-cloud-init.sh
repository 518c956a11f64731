#!/usr/bin/env bash
# Benchmark (not a test): `egs-service validate` vs Debian's `cloud-init schema
# --config-file` on the same files (the cloud-init YAML conformance corpus), side by side
# in one run, alternating per round. Prints wall time, peak memory and ratios.
#
# Needs: a release build (built here), Debian's cloud-init package, GNU time (`time` package).
# Usage: bench/validate-vs-cloud-init.sh [ROUNDS]
set -euo pipefail
rounds=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
corpus=${EGS_CONFORMANCE_DIR:-$root/../shared/conformance}/cloud-init-yaml
command -v cloud-init >/dev/null || { echo "cloud-init is not installed (apt-get install cloud-init)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is not installed (apt-get install time)" >&2; exit 2; }
cargo build --release -q -p egs-service --manifest-path "$root/Cargo.toml"
egs=$root/target/release/egs-service
mapfile -t files < <(find "$corpus" -name '*.yaml' | sort)

now() { date +%s%N; }
declare -A total=( [egs]=0 [cloud-init]=0 ) peak=( [egs]=0 [cloud-init]=0 )
rss_file=$(mktemp)
trap 'rm -f "$rss_file"' EXIT
run() { # tool file
  if [ "$1" = egs ]; then
    /usr/bin/time -f %M -o "$rss_file" "$egs" validate --user-data "$2" >/dev/null 2>&1 || true
  else
    /usr/bin/time -f %M -o "$rss_file" cloud-init schema --config-file "$2" >/dev/null 2>&1 || true
  fi
  local rss
  rss=$(tail -n 1 "$rss_file")
  [ "${rss:-0}" -gt "${peak[$1]}" ] && peak[$1]=$rss
  return 0
}
for ((r = 1; r <= rounds; r++)); do
  for tool in egs cloud-init; do
    start=$(now)
    for f in "${files[@]}"; do run "$tool" "$f"; done
    total[$tool]=$(( total[$tool] + $(now) - start ))
  done
done
n=$(( ${#files[@]} * rounds ))
awk -v e="${total[egs]}" -v c="${total[cloud-init]}" -v n="$n" -v pe="${peak[egs]}" -v pc="${peak[cloud-init]}" -v files="${#files[@]}" -v rounds="$rounds" 'BEGIN {
  printf "corpus: %d files x %d rounds (cloud-init YAML conformance examples)\n", files, rounds
  printf "%-28s %12s %14s %14s\n", "tool", "mean ms/file", "total s", "peak RSS KiB"
  printf "%-28s %12.2f %14.2f %14d\n", "egs-service validate", e / n / 1e6, e / 1e9, pe
  printf "%-28s %12.2f %14.2f %14d\n", "cloud-init schema (22.4.2)", c / n / 1e6, c / 1e9, pc
  printf "ratio (cloud-init / egs): wall time %.1fx, peak memory %.1fx\n", c / e, pc / pe
}'
