#!/usr/bin/env bash
# Benchmark (not a test): egs-tool to one egs-service daemon directly (Unix socket) and
# through the eryph stand-in's WebSocket relay (`catlet …`): connect latency and transfer
# throughput, with relay ÷ direct ratios. Release build. Usage: bench/eryph-relay.sh [SIZE_MIB]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release -q -p egs-tool --manifest-path "$root/Cargo.toml"
EGS_BENCH_MIB=${1:-256} cargo test --release -q --manifest-path "$root/Cargo.toml" -p egs-service \
  --test eryph -- --ignored --exact relay_vs_direct_benchmark --nocapture 2>/dev/null |
  grep -v '^running\|^test \|^\.*$\|test result'
