#!/usr/bin/env bash
# Runs one fuzz target for a given time, seeded from the conformance data.
# Usage: fuzz/run.sh TARGET SECONDS   (targets: yaml_load, mime_parse, userdata_pipeline, kvp_decode, seed_media, kvp_documents, ssh_preauth, ssh_auth_inputs, netconfig, root_resolve, sftp_names)
# A dictionary fuzz/TARGET.dict, when there is one, steers the mutations.
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
    ssh_auth_inputs) printf 'expiry-time="20300101" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ c\nKvpAuthEnabled=0\n' > "$corpus/seed" ;;
    ssh_preauth) printf '\x01\x00\x00\x01\x0c\x0a\x14' > "$corpus/seed"; printf '\x00SSH-2.0-x\r\n' > "$corpus/seed2" ;;
    netconfig) find "$conformance/network" -name input.yaml | while read -r f; do
         { printf '\x00'; cat "$f"; } > "$corpus/$(echo "$f" | sha256sum | cut -c1-16)"; done
       printf '\x01{"links": [{"id": "a", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:01"}], "networks": [{"link": "a", "type": "ipv4", "ip_address": "10.0.0.2", "netmask": "255.255.255.0"}], "services": [{"type": "dns", "address": "10.0.0.53"}]}' > "$corpus/json-seed" ;;
    root_resolve) printf '\x00\x03\x06\x06\x06\x01\x02\x05\x00\x00\x01' > "$corpus/seed" ;;
    kvp_decode) find "$conformance/kvp" -name kvp_pool_1 | while read -r f; do cp "$f" "$corpus/$(echo "$f" | sha256sum | cut -c1-16)"; done ;;
    *) find "$conformance/mime" \( -name user-data -o -path '*/inputs/*' \) -type f | while read -r f; do
         cp "$f" "$corpus/$(echo "$f" | sha256sum | cut -c1-16)"; done ;;
  esac
fi
cd "$here"
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP enables them on the stable toolchain.
dict=()
[ -f "$here/$target.dict" ] && dict=(-dict="$here/$target.dict")
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$corpus" -- -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 "${dict[@]}"
