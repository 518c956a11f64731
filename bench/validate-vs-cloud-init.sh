#!/usr/bin/env bash
# Benchmark (not a test): `egs-service validate` vs Debian's `cloud-init schema
# --config-file` on the same files (the cloud-init YAML conformance corpus), side by side
# in one run, alternating per round. Prints wall time, peak memory and ratios.
#
# Measures the shipped form: the static musl release binary (scripts/build-release).
# Needs: Debian's cloud-init package, python3, musl-tools, GNU time (`time` package).
# Usage: bench/validate-vs-cloud-init.sh [ROUNDS]
set -euo pipefail
rounds=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
corpus=${EGS_CONFORMANCE_DIR:-$root/../shared/conformance}/cloud-init-yaml
command -v cloud-init >/dev/null || { echo "cloud-init is not installed (apt-get install cloud-init)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is not installed (apt-get install time)" >&2; exit 2; }
"$root/scripts/build-release" > /dev/null
egs=$root/target/x86_64-unknown-linux-musl/release/egs-service
mapfile -t files < <(find "$corpus" -name '*.yaml' | sort)

# Each file is one whole process per tool, started with posix_spawn and reaped with waitpid,
# so no wrapper process or shell fork is timed. Peak memory comes from a separate pass
# under GNU time (a spawned child's rusage would include the spawning Python's pages).
python3 - "$rounds" "$egs" "${files[@]}" <<'PY'
import os, sys, time
rounds, egs, files = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
tools = {
    "egs-service validate": lambda f: [egs, "validate", "--user-data", f],
    "cloud-init schema (22.4.2)": lambda f: ["cloud-init", "schema", "--config-file", f],
}
null = os.open(os.devnull, os.O_WRONLY)
actions = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
total = {t: 0.0 for t in tools}
peak = {t: 0 for t in tools}
for _ in range(rounds):
    for name, argv in tools.items():  # alternating per round
        for f in files:
            args = argv(f)
            path = args[0] if os.sep in args[0] else next(
                os.path.join(d, args[0]) for d in os.environ["PATH"].split(os.pathsep)
                if os.access(os.path.join(d, args[0]), os.X_OK))
            start = time.perf_counter()
            pid = os.posix_spawn(path, args, os.environ, file_actions=actions)
            os.waitpid(pid, 0)
            total[name] += time.perf_counter() - start
for name, argv in tools.items():
    for f in files:
        out = os.popen("/usr/bin/time -f %M " + " ".join(f"'{a}'" for a in argv(f)) + " 2>&1 >/dev/null")
        peak[name] = max(peak[name], int(out.read().split()[-1]))
n = len(files) * rounds
(e, c) = tools
print(f"corpus: {len(files)} files x {rounds} rounds (cloud-init YAML conformance examples)")
print(f"{'tool':<28} {'mean ms/file':>12} {'total s':>14} {'peak RSS KiB':>14}")
for name in tools:
    print(f"{name:<28} {total[name] / n * 1000:>12.2f} {total[name]:>14.2f} {peak[name]:>14d}")
print(f"ratio (cloud-init / egs): wall time {total[c] / total[e]:.1f}x, peak memory {peak[c] / peak[e]:.1f}x")
PY
