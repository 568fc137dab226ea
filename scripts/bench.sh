#!/usr/bin/env bash
# Benchmarks, on demand (not a test): prints one markdown table.
#
#   scripts/bench.sh [PODS...]        default: 1000 5000
#   NODES=500 scripts/bench.sh 5000   the pods spread over 500 nodes whose status
#                                     is re-written every 10 s (kubelet's heartbeat)
#
# For each pod count it starts the fake API server (tests/bin/fake_apiserver.rs)
# with that many pods, starts the release daemon against it, and measures:
#   - time from start to /readyz 200 (the LIST of every pod included),
#   - idle RSS (listed and watching, before any churn), peak RSS (VmHWM) and
#     steady RSS (VmRSS after churn),
#   - CPU seconds per 10,000 watch events while the fake churns pods,
#   - LIST requests after start-up (should be 0 unless the server says 410).
# Then it runs the single-core decode+apply bench (tests/bench/watch_apply.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

PODS=("$@")
[ ${#PODS[@]} -gt 0 ] || PODS=(1000 5000)
CHURN_PER_SEC=${CHURN_PER_SEC:-2000}
CHURN_SECONDS=${CHURN_SECONDS:-10}
CHURN_DELAY=${CHURN_DELAY:-10}
NODES=${NODES:-0}

cargo build --release --quiet --bin opsctrl-daemon --example fake_apiserver
BIN=${DAEMON_BIN:-target/release/opsctrl-daemon}
FAKE=target/release/examples/fake_apiserver
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
status_kb() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1==m {print $2}'; }
now() { date +%s.%N; }

rows=()
idle_notes=()
for n in "${PODS[@]}"; do
  dir="$WORK/$n"; mkdir -p "$dir"
  # The fake starts churning CHURN_DELAY seconds after it is ready, by which
  # time the daemon has listed everything and is watching.
  "$FAKE" --pods "$n" --nodes "$NODES" --churn-per-sec "$CHURN_PER_SEC" --churn-delay-secs "$CHURN_DELAY" \
    --seconds $((CHURN_DELAY + CHURN_SECONDS + 60)) --kubeconfig-out "$dir/kubeconfig" >"$dir/fake.out" 2>"$dir/fake.err" &
  fake=$!; PIDS+=("$fake")
  for _ in $(seq 600); do grep -q '^READY' "$dir/fake.out" 2>/dev/null && break; sleep 0.1; done
  grep -q '^READY' "$dir/fake.out" || { echo "fake apiserver did not start" >&2; cat "$dir/fake.err" >&2; exit 1; }

  port=$(free_port)
  t0=$(now)
  HOME="$dir" LOG_LEVEL=warn HEALTH_CHECK_PORT=$port "$BIN" run --kubeconfig "$dir/kubeconfig" 2>"$dir/daemon.err" &
  d=$!; PIDS+=("$d")
  for _ in $(seq 3000); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)" = 200 ] && break
    sleep 0.01
  done
  t1=$(now)
  ready_ms=$(python3 -c "print(round(($t1-$t0)*1000))")
  lists_at_start=$(metric "$port" opsctrl_api_list_requests_total)
  tracked=$(metric "$port" opsctrl_pods_tracked)

  # Idle: listed, watching, nothing changing yet (the churn starts later).
  ci0=$(cpu_ticks "$d"); ie0=$(metric "$port" opsctrl_watch_events_processed_total)
  sleep 3
  ci1=$(cpu_ticks "$d"); ie1=$(metric "$port" opsctrl_watch_events_processed_total)
  idle=$(status_kb "$d" VmRSS)
  # Idle CPU: with nodes, their heartbeats are all that arrives (ticks are 10 ms).
  idle_notes+=("$n pods, $NODES nodes, idle: $(python3 -c "print('%.1f' % (($ci1-$ci0)*10/3.0))") ms CPU/s, $(python3 -c "print(round((${ie1%.*}-${ie0%.*})/3.0))") watch events/s")

  # Wait for the churn to begin, then measure over CHURN_SECONDS.
  for _ in $(seq 600); do grep -q '^CHURN' "$dir/fake.out" && break; sleep 0.1; done
  ev0=$(metric "$port" opsctrl_watch_events_processed_total)
  c0=$(cpu_ticks "$d")
  sleep "$CHURN_SECONDS"
  ev1=$(metric "$port" opsctrl_watch_events_processed_total)
  c1=$(cpu_ticks "$d")
  rss=$(status_kb "$d" VmRSS); hwm=$(status_kb "$d" VmHWM)
  lists_total=$(metric "$port" opsctrl_api_list_requests_total)
  relists=$(metric "$port" opsctrl_watch_relists_total)
  events=$((${ev1%.*} - ${ev0%.*}))
  cpu_per_10k=$(python3 -c "e=$events; print('n/a' if e<=0 else '%.3f' % (($c1-$c0)/100.0*10000/e))")
  mib() { echo "$(($1 / 1024)).$((($1 % 1024) * 10 / 1024))"; }
  label=$n; [ "$NODES" -eq 0 ] || label="$n + $NODES nodes"
  rows+=("| $label | $tracked | $ready_ms | $(mib "$idle") | $((hwm / 1024)).$(((hwm % 1024) * 10 / 1024)) | $((rss / 1024)).$(((rss % 1024) * 10 / 1024)) | $events | $cpu_per_10k | $lists_at_start | $((${lists_total%.*} - ${lists_at_start%.*})) ($relists after 410) |")
  kill "$d" "$fake" 2>/dev/null || true
  wait "$d" "$fake" 2>/dev/null || true
done

echo
echo "Machine: $(nproc) cores, $(awk -F: '/model name/ {gsub(/^ /,"",$2); print $2; exit}' /proc/cpuinfo), $(uname -r)"
echo
echo "| pods | tracked | start → ready (ms) | idle RSS (MiB) | peak RSS (MiB) | RSS after churn (MiB) | churn events | CPU s / 10k events | LIST pages at start | LIST pages after start |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
printf '%s\n' "${idle_notes[@]}"
echo
cargo bench --quiet --bench watch_apply 2>/dev/null
