#!/usr/bin/env bash
# Runs one fuzz target for a given time, seeded from the conformance data.
# Usage: fuzz/run.sh TARGET SECONDS   (targets: yaml_load, mime_parse, userdata_pipeline, kvp_decode, seed_media, kvp_documents)
set -euo pipefail
target=${1:?target}
seconds=${2:-600}
here=$(cd "$(dirname "$0")" && pwd)
conformance=${EGS_CONFORMANCE_DIR:-$here/../../shared/conformance}
corpus=$here/corpus/$target
mkdir -p "$corpus"
if [ -d "$conformance" ] && [ -z "$(ls -A "$corpus")" ]; then
  case $target in
    yaml_load) find "$conformance/cloud-init-yaml" -name '*.yaml' -exec cp {} "$corpus/" \; ;;
    kvp_decode) find "$conformance/kvp" -name kvp_pool_1 | while read -r f; do cp "$f" "$corpus/$(echo "$f" | sha256sum | cut -c1-16)"; done ;;
    *) find "$conformance/mime" \( -name user-data -o -path '*/inputs/*' \) -type f | while read -r f; do
         cp "$f" "$corpus/$(echo "$f" | sha256sum | cut -c1-16)"; done ;;
  esac
fi
cd "$here"
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP enables them on the stable toolchain.
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$corpus" -- -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048
