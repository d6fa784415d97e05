# Process handling shared by the benchmark scripts (sourced). The caller
# keeps the PIDs of its current run in the array PIDS.

# start_bg LOG CMD...: run CMD in the background, output to LOG, and
# remember its PID.
start_bg() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  PIDS+=($!)
}

# wait_until SECONDS CMD...: retry CMD every 0.1 s until it succeeds, or
# fail after SECONDS.
wait_until() {
  local end=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.1
  done
}

# stop_pids: SIGTERM every process of the current run by its PID, give it
# 5 s to exit (charon deletes its SAs), then SIGKILL.
stop_pids() {
  local pid i
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for i in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
