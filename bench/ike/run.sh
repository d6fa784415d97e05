#!/usr/bin/env bash
# bench/ike/run.sh: IKEv2 responders side by side. Handshakes per second and
# memory per IKE SA of
#
#   rampart     `ike-bench responder`: one ike.Daemon with an esp.Table as
#               its SA database, one peer config per identity (a Config has
#               a single RemoteID; the daemon picks it by the IDi proven in
#               IKE_AUTH among the configs at 0.0.0.0);
#   strongswan  strongSwan's charon (Debian's, kernel-libipsec: it installs
#               the CHILD_SAs in user space and a route per CHILD_SA), one
#               connection with `remote { id = %any }` and one PSK for all;
#
# both driven by the same initiator, `ike-bench initiator`: one Rampart
# ike.Daemon with N identities client-00001.bench.example ... and at most
# WINDOW handshakes in flight. Each handshake is IKE_SA_INIT + IKE_AUTH with
# one CHILD_SA: PSK, aes256gcm16-prfsha256-x25519, ESP aes256gcm16 in tunnel
# mode with selectors 198.18.128.<i>/32 <=> 198.19.2.0/24, on UDP 4500
# behind the non-ESP marker.
#
#   initiator netns  i0 198.18.0.1/24 ══ veth ══ r0 198.18.0.2/24  responder netns
#                                                lo 198.19.2.1/32 (libipsec's route source)
#
# Every run gets fresh namespaces: the responder is started and configured,
# its VmRSS and CPU time (/proc/PID) read, the initiator runs until all N
# handshakes are done, the responder's VmRSS, VmHWM and CPU time are read
# again, and everything is stopped (by PID) and deleted. Memory per IKE SA
# is the growth of VmRSS over N; the heap figure is Go's HeapInuse after a
# GC (Rampart, printed on SIGUSR1) or glibc's mallinfo "used" (charon,
# `swanctl --stats`), before and after, over N. The rounds interleave the
# responders and sizes (rampart N1, strongswan N1, rampart N2, ...).
#
# CPU: the initiator is pinned to INIT_CPUS and the responder to RESP_CPUS
# (taskset), the same for both responders; on a 2-core machine that is one
# core each, with the kernel's network work on both. Set them empty to let
# the scheduler place everything.
#
# Environment: N_LIST ("1000 10000"), ROUNDS (3), WINDOW (32: fewer than 32
# IKE SAs half open at the responder, below the usual cookie thresholds),
# RESPONDERS ("rampart strongswan"), INIT_CPUS (0), RESP_CPUS (1),
# IKE_PROPOSALS (aes256gcm16-prfsha256-x25519), ESP_PROPOSALS (aes256gcm16),
# TIMEOUT (600 s per run), SWAN_THREADS (16), SWAN_LOG (0: charon's
# default log level), SWAN_TABLE_SIZE (32768) and SWAN_TABLE_SEGMENTS (16):
# charon's IKE SA hash table (its default is 1 and 1: one bucket, a list);
# RAMPART_LOG (info: one line per IKE SA, like charon's level 0);
# PROFILE=1 adds one Rampart run at the largest N with a CPU and a heap
# profile and prints their top 10 (not in the medians; the work directory
# with the profiles is kept); IKE_BENCH
# (bin/ike-bench); KEEP_LOGS=1 keeps the work directory (logs, configs,
# profiles), which is otherwise kept only on failure.
#
# Waits while /tmp/bench.lock exists (another benchmark runs) and holds
# /tmp/bench-ike.lock while it runs. Needs root; traffic stays inside the
# namespaces it makes, on 198.18.0.0/15.
#
# Output: a line per run, then per responder and N the medians
#   ike-responder rampart n=10000 handshakes/s=... rss-per-sa-KiB=... heap-per-sa-KiB=... cpu-ms/handshake=... failed=...
# and per N
#   ratio n=10000 handshakes rampart/strongswan=X memory rampart/strongswan=Y
# (memory: RSS per SA).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/procs.sh
. "$here/../procs.sh"
repo=$(cd "$here/../.." && pwd)
cd "$repo"

N_LIST=${N_LIST:-1000 10000}
ROUNDS=${ROUNDS:-3}
WINDOW=${WINDOW:-32}
RESPONDERS=${RESPONDERS:-rampart strongswan}
INIT_CPUS=${INIT_CPUS-0}
RESP_CPUS=${RESP_CPUS-1}
IKE_PROPOSALS=${IKE_PROPOSALS:-aes256gcm16-prfsha256-x25519}
ESP_PROPOSALS=${ESP_PROPOSALS:-aes256gcm16}
TIMEOUT=${TIMEOUT:-600}
SWAN_THREADS=${SWAN_THREADS:-16}
SWAN_LOG=${SWAN_LOG:-0}
SWAN_TABLE_SIZE=${SWAN_TABLE_SIZE:-32768}
SWAN_TABLE_SEGMENTS=${SWAN_TABLE_SEGMENTS:-16}
RAMPART_LOG=${RAMPART_LOG:-info}
PROFILE=${PROFILE:-0}
IKE_BENCH=${IKE_BENCH:-$repo/bin/ike-bench}
CHARON=/usr/lib/ipsec/charon
LOCK=/tmp/bench-ike.lock
OTHER_LOCK=/tmp/bench.lock

INIT_ADDR=198.18.0.1
RESP_ADDR=198.18.0.2
RESP_TS=198.19.2.0/24
RESP_TS_ADDR=198.19.2.1
CLIENT_NET=198.18.128.0/17

if [ "$(id -u)" -ne 0 ]; then
  echo "bench/ike: needs root (network namespaces)" >&2
  exit 1
fi
for r in $RESPONDERS; do
  case $r in
    rampart | strongswan) ;;
    *) echo "bench/ike: unknown responder $r (want rampart strongswan)" >&2; exit 1 ;;
  esac
done
need=(ip awk taskset "$IKE_BENCH")
case " $RESPONDERS " in *" strongswan "*) need+=(swanctl "$CHARON") ;; esac
for c in "${need[@]}"; do
  if ! command -v "$c" >/dev/null 2>&1; then
    echo "bench/ike: $c not found (make bench-ike builds bin/ike-bench; make deps installs strongSwan)" >&2
    exit 1
  fi
done

rid=$(od -An -tx1 -N3 /dev/urandom | tr -d ' \n')
hz=$(getconf CLK_TCK)
work=''
locked=0
PIDS=() # processes of the current run, stopped by stop_pids
NS=()   # namespaces of the current run
failed=0

topo_down() {
  local i
  for ((i = ${#NS[@]} - 1; i >= 0; i--)); do
    [ -e "/run/netns/${NS[i]}" ] || continue
    ip netns del "${NS[i]}" || echo "bench/ike: could not delete netns ${NS[i]}" >&2
  done
  NS=()
}

# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pids
  topo_down
  if [ "$locked" -eq 1 ]; then
    rm -f "$LOCK"
  fi
  if [ -z "$work" ]; then
    :
  elif [ "$rc" -eq 0 ] && [ "${KEEP_LOGS:-0}" != 1 ]; then
    rm -rf "$work"
  else
    echo "bench/ike: status $rc; logs kept in $work" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -e "$OTHER_LOCK" ]; then
  echo "bench/ike: $OTHER_LOCK exists (another benchmark is running); waiting"
  while [ -e "$OTHER_LOCK" ]; do sleep 5; done
fi
if ! (set -o noclobber && echo $$ >"$LOCK") 2>/dev/null; then
  echo "bench/ike: $LOCK exists (pid $(cat "$LOCK" 2>/dev/null)): another bench-ike is running" >&2
  exit 1
fi
locked=1
work=$(mktemp -d "${TMPDIR:-/tmp}/rampart-bench-ike.XXXXXX")
psk=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
(umask 077 && echo "$psk" >"$work/psk")

# pin CPUS: the taskset prefix for a command, none if CPUS is empty.
pin() {
  if [ -n "$1" ]; then
    echo taskset -c "$1"
  fi
}

# topo_up NAME: the initiator's and the responder's namespaces, NS_I and
# NS_R, joined by a veth.
topo_up() {
  NS_I=$1-i NS_R=$1-r
  local ns
  for ns in "$NS_I" "$NS_R"; do
    NS+=("$ns") # first: an interrupt right after the add must not leak it
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  ip -n "$NS_I" link add i0 type veth peer name r0 netns "$NS_R"
  ip -n "$NS_I" addr add "$INIT_ADDR/24" dev i0
  ip -n "$NS_R" addr add "$RESP_ADDR/24" dev r0
  ip -n "$NS_R" addr add "$RESP_TS_ADDR/32" dev lo
  ip -n "$NS_I" link set i0 up
  ip -n "$NS_R" link set r0 up
  wait_until 5 sh -c "ip -n '$NS_I' -o link show i0 | grep -q 'state UP'"
  wait_until 5 sh -c "ip -n '$NS_R' -o link show r0 | grep -q 'state UP'"
}

# proc_cpu PID: user + system clock ticks of the process (all threads).
proc_cpu() {
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# proc_kib PID FIELD: VmRSS or VmHWM of the process, in KiB.
proc_kib() {
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# stat_ticks: "busy total" clock ticks of all CPUs, from /proc/stat.
stat_ticks() {
  awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}

# kv KEY LINE: the value of KEY=value in LINE.
kv() {
  awk -v k="$1" '{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) { print substr($i, length(k) + 2); exit } }' <<<"$2"
}

# rampart_up DIR N [PROFILE]: start Rampart's responder; sets RESP_PID,
# HEAP0 (Go's HeapInuse once configured, bytes).
rampart_up() {
  local d=$1 n=$2 prof=${3:-0} extra=()
  if [ "$prof" -eq 1 ]; then
    extra=(-cpuprofile "$d/cpu.pprof" -memprofile "$d/heap.pprof")
  fi
  # shellcheck disable=SC2046 # pin's words
  start_bg "$d/responder.log" ip netns exec "$NS_R" $(pin "$RESP_CPUS") "$IKE_BENCH" responder \
    -addr "$RESP_ADDR" -n "$n" -psk-file "$work/psk" -ike "$IKE_PROPOSALS" -esp "$ESP_PROPOSALS" \
    -client-net "$CLIENT_NET" -responder-ts "$RESP_TS" -log-level "$RAMPART_LOG" "${extra[@]}"
  RESP_PID=${PIDS[-1]}
  if ! wait_until 60 grep -q '^ready ' "$d/responder.log"; then
    echo "rampart: responder not ready after 60 s:" >&2
    cat "$d/responder.log" >&2
    return 1
  fi
  HEAP0=$(kv heap-inuse "$(grep '^memstats stage=configured' "$d/responder.log")")
}

# rampart_after DIR: HEAP1 after the run (SIGUSR1: a GC, then memstats).
rampart_after() {
  local d=$1 line
  kill -USR1 "$RESP_PID"
  wait_until 10 grep -q '^memstats stage=signal' "$d/responder.log"
  line=$(grep '^memstats stage=signal' "$d/responder.log" | tail -n 1)
  HEAP1=$(kv heap-inuse "$line")
  RESP_SAS=$(kv established "$line")
}

# swan_stats DIR: SWAN_SAS (IKE SAs, total) and SWAN_HEAP (mallinfo used,
# bytes) from swanctl --stats.
swan_stats() {
  local out
  out=$(swanctl --stats --uri "unix://$1/charon.vici")
  SWAN_SAS=$(awk '$1 == "IKE_SAs:" { print $2 }' <<<"$out")
  SWAN_HEAP=$(awk '$1 == "mallinfo:" { for (i = 2; i <= NF; i++) if ($i == "used") { v = $(i + 1); sub(/,$/, "", v); print v } }' <<<"$out")
}

# strongswan_up DIR: charon with its own /run and vici socket, one
# connection for every identity; sets RESP_PID, HEAP0.
strongswan_up() {
  local d=$1
  mkdir -p "$d/run"
  # openssl before everything else that implements AES-GCM: strongSwan's
  # own aes/gcm plugins run about 8 times slower. kdf is required by 5.9.8.
  cat >"$d/strongswan.conf" <<EOF
charon {
  load_modular = no
  load = random nonce kdf aesni openssl sha1 sha2 hmac pem pkcs1 x509 pubkey curve25519 kernel-libipsec kernel-netlink socket-default vici
  port = 500
  port_nat_t = 4500
  threads = $SWAN_THREADS
  # Thousands of IKE SAs from one address: no COOKIE round trips (Rampart's
  # responder is set the same way) and no blocking of half-open SAs per
  # address.
  cookie_threshold = 1000000
  cookie_threshold_ip = 1000000
  block_threshold = 1000000
  init_limit_half_open = 0
  # The IKE SA table: the default is a single bucket.
  ikesa_table_size = $SWAN_TABLE_SIZE
  ikesa_table_segments = $SWAN_TABLE_SEGMENTS
  filelog {
    stderr {
      default = $SWAN_LOG
    }
  }
  syslog {
    daemon {
      default = -1
    }
    auth {
      default = -1
    }
  }
  plugins {
    vici {
      socket = unix://$d/charon.vici
    }
  }
}
EOF
  (umask 077 && cat >"$d/swanctl.conf" <<EOF
connections {
  bench {
    version = 2
    local_addrs = $RESP_ADDR
    encap = yes
    unique = never
    proposals = $IKE_PROPOSALS
    local {
      auth = psk
      id = responder.bench.example
    }
    remote {
      auth = psk
      id = %any
    }
    children {
      bench {
        local_ts = $RESP_TS
        remote_ts = $CLIENT_NET
        esp_proposals = $ESP_PROPOSALS
        mode = tunnel
        start_action = none
      }
    }
  }
}
secrets {
  ike-any {
    secret = "$psk"
  }
}
EOF
  )
  # ip netns exec gives the shell a private mount namespace: the bind
  # mount of /run is charon's alone. ip, taskset, sh and env exec, so the
  # PID is charon's.
  # shellcheck disable=SC2016,SC2046 # $1 is expanded by sh -c; pin's words
  start_bg "$d/charon.log" ip netns exec "$NS_R" $(pin "$RESP_CPUS") sh -c \
    'mount --bind "$1/run" /run && exec env STRONGSWAN_CONF="$1/strongswan.conf" "$2"' sh "$d" "$CHARON"
  RESP_PID=${PIDS[-1]}
  if ! wait_until 10 test -S "$d/charon.vici"; then
    echo "strongswan: no vici socket after 10 s:" >&2
    cat "$d/charon.log" >&2
    return 1
  fi
  swanctl --load-all --file "$d/swanctl.conf" --uri "unix://$d/charon.vici" >"$d/swanctl.log" 2>&1
  swan_stats "$d"
  HEAP0=$SWAN_HEAP
}

k=0
# run RESPONDER N [PROFILE]: one measurement in fresh namespaces; appends a
# line to results (or profiled, with PROFILE=1).
run() {
  local r=$1 n=$2 prof=${3:-0} d rc perf_pid rss0 rss1 hwm cpu0 cpu1 busy0 busy1 total0 total1 line sas
  k=$((k + 1))
  d="$work/$k-$r-$n"
  mkdir -p "$d"
  topo_up "ikb-$rid-$k"
  case $r in
    rampart) rampart_up "$d" "$n" "$prof" ;;
    strongswan) strongswan_up "$d" ;;
  esac
  # Let startup settle before the "before" reading.
  sleep 1
  rss0=$(proc_kib "$RESP_PID" VmRSS)
  cpu0=$(proc_cpu "$RESP_PID")
  perf_pid=''
  if [ "$prof" -eq 1 ] && [ "$r" = strongswan ]; then
    perf record -q -F 499 -g -p "$RESP_PID" -o "$d/perf.data" >"$d/perf.log" 2>&1 &
    perf_pid=$!
    PIDS+=("$perf_pid")
    sleep 1
  fi
  read -r busy0 total0 < <(stat_ticks)
  rc=0
  # shellcheck disable=SC2046 # pin's words
  ip netns exec "$NS_I" $(pin "$INIT_CPUS") "$IKE_BENCH" initiator \
    -addr "$INIT_ADDR" -responder "$RESP_ADDR" -n "$n" -window "$WINDOW" -psk-file "$work/psk" \
    -ike "$IKE_PROPOSALS" -esp "$ESP_PROPOSALS" -client-net "$CLIENT_NET" -responder-ts "$RESP_TS" \
    -log-level warn -timeout "${TIMEOUT}s" >"$d/initiator.out" 2>"$d/initiator.log" &
  PIDS+=($!)
  wait "${PIDS[-1]}" || rc=$?
  unset 'PIDS[-1]'
  line=$(grep '^initiator ' "$d/initiator.out" || true)
  if [ -z "$line" ]; then
    echo "$r n=$n: the initiator printed no result (status $rc):" >&2
    tail -n 20 "$d/initiator.log" >&2
    failed=1
    stop_pids
    topo_down
    return 0
  fi
  [ "$rc" -eq 0 ] || failed=1
  read -r busy1 total1 < <(stat_ticks)
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    PIDS=("$RESP_PID")
  fi
  cpu1=$(proc_cpu "$RESP_PID")
  rss1=$(proc_kib "$RESP_PID" VmRSS)
  hwm=$(proc_kib "$RESP_PID" VmHWM)
  case $r in
    rampart)
      rampart_after "$d"
      sas=$RESP_SAS
      ;;
    strongswan)
      swan_stats "$d"
      sas=$SWAN_SAS HEAP1=$SWAN_HEAP
      # kernel-libipsec's routes to the initiators' selectors, for the log.
      echo "routes in table 220: $(ip -n "$NS_R" route show table 220 | wc -l)" >>"$d/swanctl.log"
      ;;
  esac
  stop_pids
  topo_down
  # responder n handshakes/s established failed seconds rss0 rss1 hwm
  # rss/SA heap/SA cpu-ms/handshake initiator-busy p50 p99 responder-SAs
  # machine-busy (all CPUs, all processes, while the initiator ran)
  # other-cpus (CPUs' worth of that busy time spent neither by the
  # responder nor by the initiator: other work on the machine, and the
  # kernel's softirq time)
  awk -v r="$r" -v n="$n" -v hs="$(kv handshakes/s "$line")" -v ok="$(kv established "$line")" \
    -v bad="$(kv failed "$line")" -v s="$(kv seconds "$line")" -v rss0="$rss0" -v rss1="$rss1" -v hwm="$hwm" \
    -v h0="$HEAP0" -v h1="$HEAP1" -v c0="$cpu0" -v c1="$cpu1" -v hz="$hz" -v ic="$(kv cpu-seconds "$line")" \
    -v p50="$(kv p50-ms "$line")" -v p99="$(kv p99-ms "$line")" -v sas="$sas" \
    -v mb=$((busy1 - busy0)) -v mt=$((total1 - total0)) -v ncpu="$(nproc)" 'BEGIN {
      est = ok > 0 ? ok : 1
      other = mt > 0 ? (mb - (c1 - c0) - ic * hz) / (mt / ncpu) : 0
      printf "%s\t%d\t%.1f\t%d\t%d\t%.3f\t%d\t%d\t%d\t%.2f\t%.2f\t%.3f\t%.2f\t%.1f\t%.1f\t%s\t%.2f\t%.2f\n",
        r, n, hs, ok, bad, s, rss0, rss1, hwm, (rss1 - rss0) / est, (h1 - h0) / 1024 / est,
        (c1 - c0) / hz * 1000 / est, (s > 0 ? ic / s : 0), p50, p99, sas, (mt > 0 ? mb / mt : 0), other
    }' >>"$work/$([ "$prof" -eq 1 ] && echo profiled || echo results)"
  tail -n 1 "$work/$([ "$prof" -eq 1 ] && echo profiled || echo results)" | awk -F'\t' '{
    printf "  %-10s n=%-6d %8.1f handshakes/s  failed=%d  %.2f s  RSS %d -> %d KiB (peak %d): %.2f KiB/SA  heap %.2f KiB/SA  responder %.3f CPU-ms/handshake  initiator busy %.2f  p50 %.1f ms  p99 %.1f ms  SAs %s  machine busy %.2f  other work %.2f CPUs\n",
      $1, $2, $3, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18 }'
  if [ "$sas" != "$n" ]; then
    echo "  $r n=$n: the responder holds $sas IKE SAs, not $n" >&2
    failed=1
  fi
}

: >"$work/results"
echo "bench/ike: N=$N_LIST, $ROUNDS rounds, window $WINDOW, $IKE_PROPOSALS / $ESP_PROPOSALS"
echo "bench/ike: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); initiator on CPU ${INIT_CPUS:-any}, responder on CPU ${RESP_CPUS:-any}"
if [[ " $RESPONDERS " == *" strongswan "* ]]; then
  echo "bench/ike: $("$CHARON" --version 2>&1 | head -n 1 || true); threads=$SWAN_THREADS ikesa_table_size=$SWAN_TABLE_SIZE segments=$SWAN_TABLE_SEGMENTS log=$SWAN_LOG"
fi
read -r b0 t0 < <(stat_ticks)
sleep 1
read -r b1 t1 < <(stat_ticks)
if [ $(((b1 - b0) * 100 / (t1 - t0 > 0 ? t1 - t0 : 1))) -gt 10 ]; then
  echo "bench/ike: note: the machine was $(((b1 - b0) * 100 / (t1 - t0 > 0 ? t1 - t0 : 1)))% busy before starting; other work skews every figure (see machine busy per run)"
fi
for ((round = 1; round <= ROUNDS; round++)); do
  echo "round $round/$ROUNDS"
  for n in $N_LIST; do
    for r in $RESPONDERS; do
      run "$r" "$n"
    done
  done
done

# median COLUMN RESPONDER N
median() {
  awk -F'\t' -v r="$2" -v n="$3" -v c="$1" '$1 == r && $2 == n { print $c }' "$work/results" | sort -g |
    awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

echo
for n in $N_LIST; do
  for r in $RESPONDERS; do
    if [ "$(median 3 "$r" "$n")" = nan ]; then
      echo "ike-responder $r n=$n not measured"
      continue
    fi
    read -r lo hi < <(awk -F'\t' -v r="$r" -v n="$n" '$1 == r && $2 == n { if (c++ == 0 || $3 < lo) lo = $3; if (c == 1 || $3 > hi) hi = $3 } END { print lo, hi }' "$work/results")
    echo "ike-responder $r n=$n handshakes/s=$(median 3 "$r" "$n") (min $lo max $hi) rss-per-sa-KiB=$(median 10 "$r" "$n") heap-per-sa-KiB=$(median 11 "$r" "$n") cpu-ms/handshake=$(median 12 "$r" "$n") failed=$(awk -F'\t' -v r="$r" -v n="$n" '$1 == r && $2 == n { s += $5 } END { print s + 0 }' "$work/results") initiator-busy=$(median 13 "$r" "$n") p99-ms=$(median 15 "$r" "$n") other-cpus=$(median 18 "$r" "$n")"
  done
done
ratio() { # COLUMN N: median of rampart over strongswan, or n/a
  local a b
  a=$(median "$1" rampart "$2")
  b=$(median "$1" strongswan "$2")
  awk -v a="$a" -v b="$b" 'BEGIN { if (a == "nan" || b == "nan" || b + 0 == 0) print "n/a"; else printf "%.3f\n", a / b }'
}
for n in $N_LIST; do
  echo "ratio n=$n handshakes rampart/strongswan=$(ratio 3 "$n") memory rampart/strongswan=$(ratio 10 "$n")"
done

nmax=$(tr ' ' '\n' <<<"$N_LIST" | sort -n | tail -n 1)
if [ "$PROFILE" = 1 ] && [[ " $RESPONDERS " == *" rampart "* ]]; then
  echo
  echo "profiled run (rampart n=$nmax; not in the medians):"
  run rampart "$nmax" 1
  d="$work/$k-rampart-$nmax"
  echo "CPU profile, top 10 by flat time ($d/cpu.pprof):"
  go tool pprof -top -nodecount=10 "$d/cpu.pprof" 2>/dev/null | sed 's/^/  /'
  echo "CPU profile, top 10 by cumulative time:"
  go tool pprof -top -cum -nodecount=10 "$d/cpu.pprof" 2>/dev/null | sed 's/^/  /'
  echo "heap profile, top 10 by space in use ($d/heap.pprof):"
  go tool pprof -top -sample_index=inuse_space -nodecount=10 "$d/heap.pprof" 2>/dev/null | sed 's/^/  /'
  KEEP_LOGS=1 # keep the profiles
fi
if [ "$PROFILE" = 1 ] && [[ " $RESPONDERS " == *" strongswan "* ]] && command -v perf >/dev/null; then
  echo
  echo "profiled run (strongswan n=$nmax, perf record -g; not in the medians):"
  run strongswan "$nmax" 1
  d="$work/$k-strongswan-$nmax"
  echo "perf profile of charon, top 10 symbols by self time ($d/perf.data):"
  perf report -i "$d/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ && n++ < 10 { print "  " $0 }'
  echo "by library (Debian's libraries are stripped of local symbols):"
  perf report -i "$d/perf.data" --no-children --sort dso --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ && n++ < 8 { print "  " $0 }'
  KEEP_LOGS=1
fi
exit "$failed"
