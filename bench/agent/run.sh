#!/usr/bin/env bash
# bench/agent/run.sh: the figures of issue 5 (docs/performance.md, "Node
# agent and lab").
#
# Part 1, unless SKIP_NFT=1: nft-bench (bench/nft): ruleset sync from
# empty, one policy changed (with the time until a TCP probe flips), one
# pod added or removed, at 5,000 pods and 1,000 policies on one node in
# fresh network namespaces; then iperf3 between two pods of that node with
# the whole ruleset in force, a conntrack-only table and no table
# (NFT_ARGS are passed on: see bench/nft/main.go).
#
# Part 2, unless SKIP_LAB=1: `rampart lab up` with 2 nodes and the three
# pods of bench/agent/manifests (a and c on node-1, b on node-2), then
# iperf3 TCP, one stream, DURATION seconds, N rounds interleaved (the order
# rotates each round):
#
#   underlay    node-1 -> node-2 on the bridge, MTU 1500, no encryption:
#               between two extra addresses on the nodes' underlay links
#               (UL_EXTRA_1, UL_EXTRA_2), because the agents route traffic
#               to the other node's own address into the tunnel too
#               (policy routing: table 21072);
#   node-esp    node-1 -> node-2 on their node addresses: through the
#               agents' tunnel, like pod traffic but without the pods'
#               veths and forward path;
#   same-node   pod a -> pod c on node-1: veths through node-1's forward
#               path and its agent's table, MTU 1415;
#   cross-node  pod a -> pod b: node-1's agent seals it into ESP in UDP,
#               node-2's opens it (IKEv2-keyed AES-GCM), MTU 1415.
#
# The pods of the lab answer every TCP port through a redirect table in
# their namespace (internal/lab/server.go); bench/agent/unredirect removes
# it from b's and c's namespaces so that iperf3 can listen there.
#
# CPU-s/Gbit is the whole machine's busy time (/proc/stat) over the Gbit
# carried, as in bench/tunnel. Every run reports the load average.
#
# Coordination: the script waits while any file of WAIT_LOCKS exists
# (default /tmp/bench-tunnel.lock) or a process matches WAIT_PGREP (pgrep
# -f; default none), then holds LOCK (/tmp/bench-agent.lock) until it exits.
#
# Environment: DURATION (10), N (3), NFT_ARGS, SKIP_NFT, SKIP_LAB, RAMPART
# (a rampart binary with rampart-cni beside it; default: both built into the
# work directory), WAIT_LOCKS, WAIT_PGREP, LOCK, KEEP_LOGS=1.
# Needs root, iperf3 and jq. Everything stays in namespaces made here, on
# 198.18.0.0/15. Cleans up on exit (trap): processes by PID, `lab down`,
# the lock.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/procs.sh
. "$here/../procs.sh"
repo=$(cd "$here/../.." && pwd)
cd "$repo"

DURATION=${DURATION:-10}
N=${N:-3}
NFT_ARGS=${NFT_ARGS:-}
WAIT_LOCKS=${WAIT_LOCKS:-/tmp/bench-tunnel.lock}
WAIT_PGREP=${WAIT_PGREP:-}
LOCK=${LOCK:-/tmp/bench-agent.lock}
IPERF_PORT=5201
UL_EXTRA_1=198.18.0.201
UL_EXTRA_2=198.18.0.202

if [ "$(id -u)" -ne 0 ]; then
  echo "bench/agent: needs root (network namespaces)" >&2
  exit 1
fi
for c in ip iperf3 jq go awk; do
  if ! command -v "$c" >/dev/null 2>&1; then
    echo "bench/agent: $c not found (scripts/deps.sh installs iperf3, bench/tunnel/deps.sh also jq)" >&2
    exit 1
  fi
done

work=''
lab_name="rb$$"
lab_up=0
have_lock=0
PIDS=()
hz=$(getconf CLK_TCK)

# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pids
  if [ "$lab_up" -eq 1 ]; then
    "$RAMPART" lab down --name "$lab_name" --state "$work/lab" >/dev/null || rc=1
  fi
  if [ "$have_lock" -eq 1 ]; then
    rm -f "$LOCK"
  fi
  if [ -n "$work" ]; then
    if [ "$rc" -eq 0 ] && [ "${KEEP_LOGS:-0}" != 1 ]; then
      rm -rf "$work"
    else
      echo "bench/agent: status $rc; logs kept in $work" >&2
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
work=$(mktemp -d "${TMPDIR:-/tmp}/rampart-bench-agent.XXXXXX")

# Build before waiting: compiling is not measured.
go build -trimpath -o "$work/nft-bench" ./bench/nft
go build -trimpath -o "$work/unredirect" ./bench/agent/unredirect
if [ -z "${RAMPART:-}" ]; then
  go build -trimpath -o "$work/rampart" ./cmd/rampart
  go build -trimpath -o "$work/rampart-cni" ./cmd/rampart-cni
  RAMPART=$work/rampart
fi

busy() {
  local f
  for f in $WAIT_LOCKS; do
    [ -e "$f" ] && return 0
  done
  [ -n "$WAIT_PGREP" ] && pgrep -f "$WAIT_PGREP" >/dev/null && return 0
  return 1
}
while busy; do
  echo "bench/agent: waiting for ${WAIT_LOCKS} / ${WAIT_PGREP:-(no process pattern)} ($(date -u +%H:%M:%S))"
  sleep 15
done
if ! (set -o noclobber; echo $$ >"$LOCK") 2>/dev/null; then
  echo "bench/agent: $LOCK exists (another run?)" >&2
  exit 1
fi
have_lock=1

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "bench/agent: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($cpu_model), kernel $(uname -r), $(go version | awk '{ print $3 }'), code at $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet 2>/dev/null || echo '+changes'); loadavg $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "${SKIP_NFT:-0}" != 1 ]; then
  echo
  echo "== nft-bench $NFT_ARGS"
  # shellcheck disable=SC2086 # NFT_ARGS is a list of flags
  "$work/nft-bench" $NFT_ARGS
fi

[ "${SKIP_LAB:-0}" = 1 ] && exit 0

echo
echo "== lab: 2 nodes, iperf3 TCP, 1 stream, ${DURATION}s, $N rounds"
"$RAMPART" lab up bench/agent/manifests --nodes 2 --name "$lab_name" --state "$work/lab" >"$work/lab-up.log" 2>&1 || {
  lab_up=1
  cat "$work/lab-up.log" >&2
  exit 1
}
lab_up=1
"$RAMPART" lab status --name "$lab_name" --state "$work/lab" -o json >"$work/status.json"
nsof() { jq -r --arg r "$1" '.pods[] | select(.ref == $r) | .netns' "$work/status.json"; }
addrof() { jq -r --arg r "$1" '.pods[] | select(.ref == $r) | .address' "$work/status.json"; }
NS_A=$(nsof bench/a) NS_B=$(nsof bench/b) NS_C=$(nsof bench/c)
ADDR_B=$(addrof bench/b) ADDR_C=$(addrof bench/c)
NS_N1=$(jq -r '.nodes[] | select(.name == "node-1") | .netns' "$work/status.json")
NS_N2=$(jq -r '.nodes[] | select(.name == "node-2") | .netns' "$work/status.json")
UL_N2=$(jq -r '.nodes[] | select(.name == "node-2") | .address' "$work/status.json")
echo "pods: a in $NS_A, b $ADDR_B in $NS_B (node-2), c $ADDR_C in $NS_C (node-1); nodes $NS_N1, $NS_N2 ($UL_N2)"
"$work/unredirect" "$NS_B" "$NS_C"
ul_link() { ip netns exec "$1" ip -o -4 addr show | awk '$4 ~ /^198\.18\.0\./ { print $2; exit }'; }
UL_LINK=$(ul_link "$NS_N1")
ip netns exec "$NS_N1" ip addr add "$UL_EXTRA_1/32" dev "$UL_LINK"
ip netns exec "$NS_N2" ip addr add "$UL_EXTRA_2/32" dev "$(ul_link "$NS_N2")"
echo "MTU: pod a eth0 $(ip netns exec "$NS_A" cat /sys/class/net/eth0/mtu), node-1 $UL_LINK $(ip netns exec "$NS_N1" cat "/sys/class/net/$UL_LINK/mtu")"
route_dev() { ip netns exec "$1" ip -o route get "${@:2}" | awk '{ for (i = 1; i <= NF; i++) if ($i == "dev") { print $(i + 1); exit } }'; }
echo "underlay: $UL_EXTRA_1 -> $UL_EXTRA_2 via $(route_dev "$NS_N1" "$UL_EXTRA_2" from "$UL_EXTRA_1"); node-esp: -> $UL_N2 via $(route_dev "$NS_N1" "$UL_N2")"

# Servers, one per destination, for the whole run.
start_server() { # NETNS ADDR LOG
  ip netns exec "$1" iperf3 -s -B "$2" -p "$IPERF_PORT" >"$3" 2>&1 &
  PIDS+=("$!")
}
start_server "$NS_B" "$ADDR_B" "$work/iperf3-b.log"
start_server "$NS_C" "$ADDR_C" "$work/iperf3-c.log"
start_server "$NS_N2" "$UL_N2" "$work/iperf3-n2.log"
start_server "$NS_N2" "$UL_EXTRA_2" "$work/iperf3-n2-extra.log"
sleep 1

: >"$work/results"
measure() { # VARIANT SRC_NS DST_ADDR [IPERF3 ARGS...]
  local v=$1 src=$2 dst=$3 c0 c1 _u _n _s _i _w _q _sq _st j="$work/$1-$round.json"
  shift 3
  read -r _ _u _n _s _i _w _q _sq _st _ </proc/stat
  c0=$((_u + _n + _s + _q + _sq + _st))
  if ! ip netns exec "$src" iperf3 -c "$dst" -p "$IPERF_PORT" -t "$DURATION" -J "$@" >"$j" 2>"$j.err"; then
    echo "$v: iperf3 failed: $(jq -r '.error // empty' "$j" 2>/dev/null) $(cat "$j.err")" >&2
    return 1
  fi
  read -r _ _u _n _s _i _w _q _sq _st _ </proc/stat
  c1=$((_u + _n + _s + _q + _sq + _st))
  jq -r --arg v "$v" --argjson cpu "$((c1 - c0))" --argjson hz "$hz" '
    .end.sum_received.bytes as $b
    | [$v, (.end.sum_received.bits_per_second / 1e9), .end.sum_sent.retransmits,
       (if $b > 0 then ($cpu / $hz) / ($b * 8 / 1e9) else null end)]
    | @tsv' "$j" >>"$work/results"
  tail -n 1 "$work/results" | awk -F'\t' -v l="$(cut -d' ' -f1 /proc/loadavg)" \
    '{ printf "  %-11s %6.2f Gbit/s  %6d retransmits  %7.3f CPU-s/Gbit  (loadavg %s)\n", $1, $2, $3, $4, l }'
}
variants=(underlay node-esp same-node cross-node)
for ((round = 1; round <= N; round++)); do
  echo "round $round/$N"
  for ((i = 0; i < ${#variants[@]}; i++)); do
    v=${variants[$(((i + round - 1) % ${#variants[@]}))]}
    case $v in
      underlay) measure underlay "$NS_N1" "$UL_EXTRA_2" -B "$UL_EXTRA_1" ;;
      node-esp) measure node-esp "$NS_N1" "$UL_N2" ;;
      same-node) measure same-node "$NS_A" "$ADDR_C" ;;
      cross-node) measure cross-node "$NS_A" "$ADDR_B" ;;
    esac
  done
done

median() { # COLUMN VARIANT
  awk -F'\t' -v v="$2" -v c="$1" '$1 == v { print $c }' "$work/results" | sort -g |
    awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
echo
printf '%-11s %12s %8s %8s %14s %12s\n' variant 'Gbit/s(med)' min max 'retrans(med)' 'CPU-s/Gbit'
for v in "${variants[@]}"; do
  printf '%-11s %12.2f %8.2f %8.2f %14s %12.3f\n' "$v" "$(median 2 "$v")" \
    "$(awk -F'\t' -v v="$v" '$1 == v { print $2 }' "$work/results" | sort -g | head -1)" \
    "$(awk -F'\t' -v v="$v" '$1 == v { print $2 }' "$work/results" | sort -g | tail -1)" \
    "$(median 3 "$v")" "$(median 4 "$v")"
done
u=$(median 2 underlay) s=$(median 2 same-node) x=$(median 2 cross-node)
e=$(median 2 node-esp)
awk -v u="$u" -v s="$s" -v x="$x" -v e="$e" 'BEGIN { printf "ratio cross-node/same-node=%.3f cross-node/underlay=%.3f same-node/underlay=%.3f cross-node/node-esp=%.3f\n", x / s, x / u, s / u, x / e }'
echo "bench/agent: done $(date -u '+%H:%M UTC'); loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
