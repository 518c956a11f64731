#!/usr/bin/env bash
# Benchmark (not a test): the egs-service SSH server vs OpenSSH's sshd + sftp-server, side by
# side in one run on loopback TCP, same client (OpenSSH), same cipher and MAC, same files:
#   - upload and download of one file with sftp (default 1 GiB), ROUNDS alternating rounds
#     (median), with the server side's CPU time per GiB (the daemon's own, or sshd's whole
#     connection tree: the per-connection sshd and sftp-server, reaped into the listener),
#   - connection-to-first-command latency (`ssh host true`, repeated),
#   - idle memory of the listener and memory per open session,
#   - egs-tool's own upload/download of the same file to the daemon,
#   - a tree of 2000 small files (4 KiB each, 20 directories) up and down: egs-tool
#     upload-directory / download-directory to the daemon vs `rsync -a` and `scp -r` to sshd.
# Prints the numbers and ratios (egs relative to sshd).
#
# Measures the shipped form: the static musl release binary (scripts/build-release).
# Needs: openssh-server (/usr/sbin/sshd), musl-tools, run as root.
# Usage: bench/ssh-vs-openssh.sh [SIZE_MIB] [LATENCY_ROUNDS] [TRANSFER_ROUNDS]
set -euo pipefail
size_mib=${1:-1024}
rounds=${2:-20}
transfer_rounds=${3:-3}
cipher=${EGS_BENCH_CIPHER:-aes256-gcm@openssh.com}
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x /usr/sbin/sshd ] || { echo "openssh-server is not installed (apt-get install openssh-server)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root: sshd needs it, and EGS sessions run as root" >&2; exit 2; }
"$root/scripts/build-release" > /dev/null
egs=$root/target/x86_64-unknown-linux-musl/release/egs-service
tool=$root/target/x86_64-unknown-linux-musl/release/egs-tool
# Both servers start with their programs read from the disk, as at boot: a binary the linker
# has just written sits in the page cache in large folios, and the kernel maps a whole folio
# where a process touches one page of it.
for program in "$egs" /usr/sbin/sshd /usr/lib/openssh/sftp-server; do
  sync "$program"
  dd if="$program" iflag=nocache count=0 status=none
done
work=$(mktemp -d /var/tmp/egs-ssh-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p /run/sshd "$work/egs-conf" "$work/kvp"
ssh-keygen -q -t ed25519 -N "" -f "$work/client"
ssh-keygen -q -t ed25519 -N "" -f "$work/sshd_host_key"
cp "$work/client.pub" "$work/egs-conf/id_egs.pub"
cp "$work/client.pub" "$work/authorized_keys"
echo "ProvisioningEnabled=0" > "$work/egs-conf/service-control.conf"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sshd_port=$(free_port)
cat > "$work/sshd_config" <<CFG
ListenAddress 127.0.0.1:$sshd_port
HostKey $work/sshd_host_key
AuthorizedKeysFile $work/authorized_keys
PidFile $work/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel ERROR
MaxStartups 100
MaxSessions 100
CFG
/usr/sbin/sshd -D -f "$work/sshd_config" &
pids+=($!)
sshd_pid=$!
HOME=/root "$egs" --listen tcp:127.0.0.1:0 --config-dir "$work/egs-conf" --kvp-dir "$work/kvp" > "$work/egs.out" 2>&1 &
pids+=($!)
egs_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/egs.out" 2>/dev/null && break; sleep 0.05; done
egs_port=$(sed -n 's/^listening on tcp:127.0.0.1:\([0-9]*\)$/\1/p' "$work/egs.out")
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$sshd_port) 2>/dev/null && break; sleep 0.05; done

config() { # name user port
  cat <<CFG
Host $1
  HostName 127.0.0.1
  Port $3
  User $2
  IdentityFile $work/client
  IdentitiesOnly yes
  BatchMode yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
  Ciphers $cipher
  Compression no
CFG
}
{ config egs egs "$egs_port"; config sshd root "$sshd_port"; } > "$work/ssh_config"
ssh_to() { ssh -F "$work/ssh_config" "$@"; }
now() { date +%s%N; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# CPU time (ms) of a process, its threads and its reaped children (USER_HZ = 100).
cpu_ms() { awk '{print ($14 + $15 + $16 + $17) * 10}' "/proc/$1/stat"; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# sshd forks a process (two, with privilege separation) per connection: count them all.
tree_rss_kib() {
  local total=0 p
  for p in $1 $(pgrep -P "$1" 2>/dev/null) $(for c in $(pgrep -P "$1" 2>/dev/null); do pgrep -P "$c"; done); do
    case $(cat "/proc/$p/comm" 2>/dev/null) in sshd|egs-service) total=$((total + $(rss_kib "$p"))) ;; esac
  done
  echo "$total"
}

declare -A up down upc downc lat idle per_session tasks
idle[egs]=$(tree_rss_kib "$egs_pid"); idle[sshd]=$(tree_rss_kib "$sshd_pid")
idle_threads=$(awk '/^Threads:/ {print $2}' "/proc/$egs_pid/status")

echo "creating a ${size_mib} MiB file ..."
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/payload"
sum=$(sha256sum < "$work/payload")
declare -A ups downs upcpu downcpu
for ((r = 1; r <= transfer_rounds; r++)); do
  for target in sshd egs; do   # the payload is in the page cache for both
    server=$([ "$target" = egs ] && echo "$egs_pid" || echo "$sshd_pid")
    rm -f "$work/uploaded" "$work/downloaded"
    ssh_to "$target" true   # warm-up
    c0=$(cpu_ms "$server"); t0=$(now)
    sftp -q -F "$work/ssh_config" -b <(echo "put $work/payload $work/uploaded") "$target" >/dev/null
    t1=$(now); sleep 0.2; c1=$(cpu_ms "$server"); t1b=$(now)
    sftp -q -F "$work/ssh_config" -b <(echo "get $work/uploaded $work/downloaded") "$target" >/dev/null
    t2=$(now); sleep 0.2; c2=$(cpu_ms "$server")
    [ "$(sha256sum < "$work/downloaded")" = "$sum" ] || { echo "$target: the download differs" >&2; exit 1; }
    ups[$target]+=" $(( (t1 - t0) / 1000000 ))"; downs[$target]+=" $(( (t2 - t1b) / 1000000 ))"
    upcpu[$target]+=" $((c1 - c0))"; downcpu[$target]+=" $((c2 - c1))"
  done
done
# egs-tool to the daemon, the same file, with the same client key.
export EGS_TOOL_HOME=$work/tool
mkdir -p "$EGS_TOOL_HOME/private"
cp "$work/client" "$EGS_TOOL_HOME/private/id_egs"
cp "$work/client.pub" "$EGS_TOOL_HOME/private/id_egs.pub"
for ((r = 1; r <= transfer_rounds; r++)); do
  rm -f "$work/uploaded" "$work/downloaded"
  t0=$(now)
  "$tool" upload-file "tcp:127.0.0.1:$egs_port" "$work/payload" "$work/uploaded" >/dev/null
  t1=$(now)
  "$tool" download-file "tcp:127.0.0.1:$egs_port" "$work/uploaded" "$work/downloaded" >/dev/null
  t2=$(now)
  [ "$(sha256sum < "$work/downloaded")" = "$sum" ] || { echo "egs-tool: the download differs" >&2; exit 1; }
  ups[tool]+=" $(( (t1 - t0) / 1000000 ))"; downs[tool]+=" $(( (t2 - t1) / 1000000 ))"
done
rm -f "$work/uploaded" "$work/downloaded"

# 2000 small files in 20 directories, up and down.
for d in $(seq -w 1 20); do
  mkdir -p "$work/tree/d$d"
  for f in $(seq -w 1 100); do head -c 4096 /dev/urandom > "$work/tree/d$d/f$f"; done
done
tree_sum() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }
want=$(tree_sum "$work/tree")
declare -A tree_up tree_down
tree_round() { # name upload-command download-command
  rm -rf "$work/tree.up" "$work/tree.down"
  local t0 t1 t2
  t0=$(now); eval "$2" >/dev/null 2>&1; t1=$(now); eval "$3" >/dev/null 2>&1; t2=$(now)
  [ "$(tree_sum "$work/tree.up")" = "$want" ] || { echo "$1: the uploaded tree differs" >&2; exit 1; }
  [ "$(tree_sum "$work/tree.down")" = "$want" ] || { echo "$1: the downloaded tree differs" >&2; exit 1; }
  tree_up[$1]+=" $(( (t1 - t0) / 1000000 ))"; tree_down[$1]+=" $(( (t2 - t1) / 1000000 ))"
}
rsh="ssh -F $work/ssh_config"
for ((r = 1; r <= transfer_rounds; r++)); do
  tree_round egs-tool "'$tool' upload-directory tcp:127.0.0.1:$egs_port '$work/tree' '$work/tree.up' --recursive" \
    "'$tool' download-directory tcp:127.0.0.1:$egs_port '$work/tree.up' '$work/tree.down' --recursive"
  tree_round rsync "rsync -a -e '$rsh' '$work/tree/' 'sshd:$work/tree.up/'" \
    "rsync -a -e '$rsh' 'sshd:$work/tree.up/' '$work/tree.down/'"
  tree_round scp "scp -q -r -F '$work/ssh_config' '$work/tree' 'sshd:$work/tree.up'" \
    "scp -q -r -F '$work/ssh_config' 'sshd:$work/tree.up' '$work/tree.down'"
done

for target in sshd egs tool; do
  # shellcheck disable=SC2086
  up[$target]=$(median ${ups[$target]}); down[$target]=$(median ${downs[$target]})
  # shellcheck disable=SC2086
  [ "$target" = tool ] || upc[$target]=$(median ${upcpu[$target]})
  [ "$target" = tool ] || downc[$target]=$(median ${downcpu[$target]})
done
for name in egs-tool rsync scp; do
  # shellcheck disable=SC2086
  tree_up[$name]=$(median ${tree_up[$name]}); tree_down[$name]=$(median ${tree_down[$name]})
done
for target in sshd egs; do
  t0=$(now)
  for _ in $(seq "$rounds"); do ssh_to "$target" true; done
  t1=$(now)
  lat[$target]=$(( (t1 - t0) / 1000 / rounds ))
  # Ten open sessions (each an ssh running `sleep`): memory over idle, per session.
  before=$(tree_rss_kib "$([ "$target" = egs ] && echo "$egs_pid" || echo "$sshd_pid")")
  sleepers=()
  for _ in $(seq 10); do ssh_to "$target" sleep 30 2>/dev/null & sleepers+=($!); done
  sleep 3
  after=$(tree_rss_kib "$([ "$target" = egs ] && echo "$egs_pid" || echo "$sshd_pid")")
  per_session[$target]=$(( (after - before) / 10 ))
  # What ten sessions cost in threads of execution: the daemon's threads, sshd's processes.
  if [ "$target" = egs ]; then
    tasks[$target]="$idle_threads → $(awk '/^Threads:/ {print $2}' "/proc/$egs_pid/status") threads"
  else
    children=$(pgrep -P "$sshd_pid" || true)
    grandchildren=$(for c in $children; do pgrep -P "$c" || true; done)
    tasks[$target]="1 → $(( 1 + $(echo $children $grandchildren | wc -w) )) processes"
  fi
  kill "${sleepers[@]}" 2>/dev/null || true; wait "${sleepers[@]}" 2>/dev/null || true
done

mib_s() { awk -v ms="$1" -v mib="$size_mib" 'BEGIN { printf "%.0f MiB/s", mib / (ms / 1000) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "cipher $cipher, ${size_mib} MiB (median of $transfer_rounds rounds), $rounds connections, OpenSSH $(ssh -V 2>&1 | cut -d, -f1)"
printf '%-34s %16s %16s %s\n' "" "egs-service" "sshd" "egs/sshd"
printf '%-34s %16s %16s %sx time\n' "sftp upload" "$(mib_s "${up[egs]}")" "$(mib_s "${up[sshd]}")" "$(ratio "${up[egs]}" "${up[sshd]}")"
printf '%-34s %16s %16s %sx time\n' "sftp download" "$(mib_s "${down[egs]}")" "$(mib_s "${down[sshd]}")" "$(ratio "${down[egs]}" "${down[sshd]}")"
cpu_gib() { awk -v ms="$1" -v mib="$size_mib" 'BEGIN { printf "%.2f s/GiB", ms / 1000 / (mib / 1024) }'; }
printf '%-34s %16s %16s %sx\n' "server CPU, upload" "$(cpu_gib "${upc[egs]}")" "$(cpu_gib "${upc[sshd]}")" "$(ratio "${upc[egs]}" "${upc[sshd]}")"
printf '%-34s %16s %16s %sx\n' "server CPU, download" "$(cpu_gib "${downc[egs]}")" "$(cpu_gib "${downc[sshd]}")" "$(ratio "${downc[egs]}" "${downc[sshd]}")"
printf '%-34s %13s µs %13s µs %sx\n' "connect + first command (ssh true)" "${lat[egs]}" "${lat[sshd]}" "$(ratio "${lat[egs]}" "${lat[sshd]}")"
printf '%-34s %12s KiB %12s KiB %sx\n' "idle listener memory" "${idle[egs]}" "${idle[sshd]}" "$(ratio "${idle[egs]}" "${idle[sshd]}")"
printf '%-34s %12s KiB %12s KiB %sx\n' "memory per open session" "${per_session[egs]}" "${per_session[sshd]}" "$(ratio "${per_session[egs]}" "${per_session[sshd]}")"
printf '%-34s %16s %16s\n' "idle → 10 open sessions" "${tasks[egs]}" "${tasks[sshd]}"
echo
printf '%-22s %13s %13s %13s %s\n' "" "egs-tool→egs" "sftp→egs" "sftp→sshd" "egs-tool/sftp→egs, /sftp→sshd"
printf '%-22s %13s %13s %13s %sx, %sx time\n' "file upload" "$(mib_s "${up[tool]}")" "$(mib_s "${up[egs]}")" "$(mib_s "${up[sshd]}")" \
  "$(ratio "${up[tool]}" "${up[egs]}")" "$(ratio "${up[tool]}" "${up[sshd]}")"
printf '%-22s %13s %13s %13s %sx, %sx time\n' "file download" "$(mib_s "${down[tool]}")" "$(mib_s "${down[egs]}")" "$(mib_s "${down[sshd]}")" \
  "$(ratio "${down[tool]}" "${down[egs]}")" "$(ratio "${down[tool]}" "${down[sshd]}")"
echo
echo "2000 files of 4 KiB in 20 directories (median of $transfer_rounds rounds)"
printf '%-34s %12s %12s %12s %s\n' "" "egs-tool" "rsync -a" "scp -r" "egs-tool/rsync"
printf '%-34s %9s ms %9s ms %9s ms %sx time\n' "upload" "${tree_up[egs-tool]}" "${tree_up[rsync]}" "${tree_up[scp]}" "$(ratio "${tree_up[egs-tool]}" "${tree_up[rsync]}")"
printf '%-34s %9s ms %9s ms %9s ms %sx time\n' "download" "${tree_down[egs-tool]}" "${tree_down[rsync]}" "${tree_down[scp]}" "$(ratio "${tree_down[egs-tool]}" "${tree_down[rsync]}")"
