#!/usr/bin/env bash
# bench/tunnel/run.sh: one-stream iperf3 TCP throughput from podA to podB in
# the two-site topology of topo.sh, through
#
#   plain         the veth underlay with plain routes, no encryption;
#   wireguard-go  wireguard-go between hostA and hostB (TUN with vnet_hdr,
#                 UDP GSO/GRO);
#   libipsec      strongSwan charon with kernel-libipsec: IKEv2 PSK,
#                 aes256gcm16, ESP in UDP 4500 (encap), tunnel mode;
#   rampart       `rampart tunnel run`, started by rampart_up from
#                 bench/tunnel/rampart.sh (skipped while that file is absent);
#
# each for DURATION seconds, N times, interleaved (plain, wireguard-go,
# libipsec, rampart, plain, ...) to spread noise. Every run builds a fresh
# topology, starts the variant, waits until podA can ping podB through it,
# runs iperf3 (server in podB), and tears everything down.
#
# CPU per Gbit: the CPU time the whole machine spent while the client ran
# (non-idle jiffies of /proc/stat over USER_HZ), divided by the Gbit that
# arrived.
#
# Environment: DURATION (10 s), N (3), UNDERLAY_MTU (1500),
# VARIANTS ("plain wireguard-go libipsec rampart"), WIREGUARD_GO
# (<repo>/bin/wireguard), RAMPART (used by rampart.sh; bin/rampart),
# KEEP_LOGS=1 to keep the work directory (configs, logs, iperf3 JSON),
# which is otherwise kept only on failure.
# Needs root and bench/tunnel/deps.sh. Traffic stays inside namespaces this
# script makes, on 198.18.0.0/15 (and fd00::/8).
#
# The last line is `ratio rampart/wireguard-go=X rampart/libipsec=Y`
# (ratios of median Gbit/s, n/a when a side was not measured).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/procs.sh
. "$here/../procs.sh"
repo=$(cd "$here/../.." && pwd)
cd "$repo"

DURATION=${DURATION:-10}
N=${N:-3}
UNDERLAY_MTU=${UNDERLAY_MTU:-1500}
VARIANTS=${VARIANTS:-plain wireguard-go libipsec rampart}
WIREGUARD_GO=${WIREGUARD_GO:-$repo/bin/wireguard}
CHARON=/usr/lib/ipsec/charon
IPERF_PORT=5201
WG_PORT=51820

# shellcheck source=bench/tunnel/topo.sh
. "$here/topo.sh"

if [ "$(id -u)" -ne 0 ]; then
  echo "bench/tunnel: needs root (network namespaces)" >&2
  exit 1
fi
for v in $VARIANTS; do
  case $v in
    plain | wireguard-go | libipsec | rampart) ;;
    *) echo "bench/tunnel: unknown variant $v (want plain wireguard-go libipsec rampart)" >&2; exit 1 ;;
  esac
done

need=(ip ss iperf3 jq ping awk)
case " $VARIANTS " in *" wireguard-go "*) need+=(wg "$WIREGUARD_GO") ;; esac
case " $VARIANTS " in *" libipsec "*) need+=(swanctl "$CHARON") ;; esac
for c in "${need[@]}"; do
  if ! command -v "$c" >/dev/null 2>&1; then
    echo "bench/tunnel: $c not found; run bash bench/tunnel/deps.sh" >&2
    exit 1
  fi
done

rampart_ok=0
if [[ " $VARIANTS " == *" rampart "* ]]; then
  if [ -f "$here/rampart.sh" ]; then
    # shellcheck source=/dev/null
    . "$here/rampart.sh"
    if [ -x "${RAMPART:-bin/rampart}" ]; then
      rampart_ok=1
    fi
  fi
  if [ "$rampart_ok" -eq 0 ]; then
    echo "rampart: not built yet"
  fi
fi

rid=$(od -An -tx1 -N3 /dev/urandom | tr -d ' \n')
hz=$(getconf CLK_TCK)
work=''
PIDS=()          # processes of the current run, stopped by stop_pids
rampart_running=0
failed=0

# run_down: stop everything of the current run and delete its topology.
run_down() {
  stop_pids
  if [ "$rampart_running" -eq 1 ]; then
    rampart_down || true
    rampart_running=0
  fi
  topo_down
}

# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  run_down
  if [ -z "$work" ]; then
    :
  elif [ "$rc" -eq 0 ] && [ "${KEEP_LOGS:-0}" != 1 ]; then
    rm -rf "$work"
  else
    echo "bench/tunnel: status $rc; logs kept in $work" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
work=$(mktemp -d "${TMPDIR:-/tmp}/rampart-bench.XXXXXX")

up_plain() { topo_plain_routes; }

# up_wireguard_go DIR K: wireguard-go on both hosts, routes to the far pod
# subnet through it. Its UAPI sockets are /var/run/wireguard/NAME.sock in
# every namespace, hence names unique per run.
up_wireguard_go() {
  local d=$1 ia ib
  ia="wg${rid}${2}a" ib="wg${rid}${2}b"
  (umask 077 && wg genkey >"$d/a.key" && wg genkey >"$d/b.key")
  wg pubkey <"$d/a.key" >"$d/a.pub"
  wg pubkey <"$d/b.key" >"$d/b.pub"
  start_bg "$d/a.log" ip netns exec "$NS_HA" "$WIREGUARD_GO" -f "$ia"
  start_bg "$d/b.log" ip netns exec "$NS_HB" "$WIREGUARD_GO" -f "$ib"
  wait_until 10 test -S "/var/run/wireguard/$ia.sock"
  wait_until 10 test -S "/var/run/wireguard/$ib.sock"
  ip netns exec "$NS_HA" wg set "$ia" listen-port "$WG_PORT" private-key "$d/a.key" \
    peer "$(cat "$d/b.pub")" endpoint "$UL_B4:$WG_PORT" allowed-ips "$NET_B4"
  ip netns exec "$NS_HB" wg set "$ib" listen-port "$WG_PORT" private-key "$d/b.key" \
    peer "$(cat "$d/a.pub")" endpoint "$UL_A4:$WG_PORT" allowed-ips "$NET_A4"
  # 80 = outer IPv6 header (the worst case WireGuard sizes for) + UDP +
  # WireGuard header and tag; 1420 on a 1500 underlay, its default.
  ip -n "$NS_HA" link set "$ia" mtu $((UNDERLAY_MTU - 80)) up
  ip -n "$NS_HB" link set "$ib" mtu $((UNDERLAY_MTU - 80)) up
  ip -n "$NS_HA" route add "$NET_B4" dev "$ia"
  ip -n "$NS_HB" route add "$NET_A4" dev "$ib"
}

# libipsec_side DIR NS LOCAL REMOTE LOCAL_NET REMOTE_NET START_ACTION PSK:
# configure and start one charon with its own /run (its pid file is always
# /run/charon.pid) and vici socket, and load its connection.
libipsec_side() {
  local d=$1 ns=$2 local=$3 remote=$4 lnet=$5 rnet=$6 start=$7 psk=$8
  mkdir -p "$d/run"
  # openssl before everything else that implements AES-GCM: strongSwan's
  # own aes/gcm plugins run about 8 times slower. kdf is required by 5.9.8.
  cat >"$d/strongswan.conf" <<EOF
charon {
  load_modular = no
  load = random nonce kdf aesni openssl sha1 sha2 hmac pem pkcs1 x509 pubkey curve25519 kernel-libipsec kernel-netlink socket-default vici
  port = 500
  port_nat_t = 4500
  filelog {
    stderr {
      default = 1
      ike = 1
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
    local_addrs = $local
    remote_addrs = $remote
    encap = yes
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = psk
      id = $local
    }
    remote {
      auth = psk
      id = $remote
    }
    children {
      pods {
        local_ts = $lnet
        remote_ts = $rnet
        esp_proposals = aes256gcm16
        mode = tunnel
        start_action = $start
      }
    }
  }
}
secrets {
  ike-bench {
    id-a = $UL_A4
    id-b = $UL_B4
    secret = $psk
  }
}
EOF
  )
  # ip netns exec gives the shell a private mount namespace: the bind
  # mount of /run is charon's alone. sh and ip exec, so the PID is charon's.
  # shellcheck disable=SC2016 # $1 is expanded by sh -c
  start_bg "$d/charon.log" ip netns exec "$ns" sh -c \
    'mount --bind "$1/run" /run && exec env STRONGSWAN_CONF="$1/strongswan.conf" "$2"' sh "$d" "$CHARON"
  wait_until 10 test -S "$d/charon.vici"
  swanctl --load-all --file "$d/swanctl.conf" --uri "unix://$d/charon.vici" >"$d/swanctl.log" 2>&1
}

# up_libipsec DIR: hostB answers, hostA initiates (start_action = start;
# trap does not work with kernel-libipsec).
up_libipsec() {
  local d=$1 psk
  psk=0x$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
  libipsec_side "$d/b" "$NS_HB" "$UL_B4" "$UL_A4" "$NET_B4" "$NET_A4" none "$psk"
  libipsec_side "$d/a" "$NS_HA" "$UL_A4" "$UL_B4" "$NET_A4" "$NET_B4" start "$psk"
}

# measure VARIANT DIR: iperf3 podA -> podB; appends a line of results.
measure() {
  local v=$1 d=$2 c0 c1 _u _n _s _i _w _q _sq _st
  start_bg "$d/iperf3-server.log" ip netns exec "$NS_PB" iperf3 -s -1 -B "$POD_B4" -p "$IPERF_PORT"
  wait_until 10 sh -c "ip netns exec '$NS_PB' ss -Hltn 'sport = :$IPERF_PORT' | grep -q ."
  read -r _ _u _n _s _i _w _q _sq _st _ </proc/stat
  c0=$((_u + _n + _s + _q + _sq + _st))
  if ! ip netns exec "$NS_PA" iperf3 -c "$POD_B4" -p "$IPERF_PORT" -t "$DURATION" -J >"$d/iperf3.json" 2>"$d/iperf3.err"; then
    echo "$v: iperf3 failed: $(jq -r '.error // empty' "$d/iperf3.json" 2>/dev/null) $(cat "$d/iperf3.err")" >&2
    return 1
  fi
  read -r _ _u _n _s _i _w _q _sq _st _ </proc/stat
  c1=$((_u + _n + _s + _q + _sq + _st))
  jq -r --arg v "$v" --argjson cpu "$((c1 - c0))" --argjson hz "$hz" '
    .end.sum_received.bytes as $b
    | [$v, (.end.sum_received.bits_per_second / 1e9), .end.sum_sent.retransmits,
       (if $b > 0 then ($cpu / $hz) / ($b * 8 / 1e9) else null end)]
    | @tsv' "$d/iperf3.json" >>"$work/results"
  tail -n 1 "$work/results" | awk -F'\t' '{ printf "  %-13s %6.2f Gbit/s  %6d retransmits  %7.3f CPU-s/Gbit\n", $1, $2, $3, $4 }'
}

# cpu_busy_percent: how busy all CPUs are over one second, from /proc/stat.
cpu_busy_percent() {
  local u n s i w q sq st b0 t0 b1 t1
  read -r _ u n s i w q sq st _ </proc/stat
  b0=$((u + n + s + q + sq + st)) t0=$((u + n + s + i + w + q + sq + st))
  sleep 1
  read -r _ u n s i w q sq st _ </proc/stat
  b1=$((u + n + s + q + sq + st)) t1=$((u + n + s + i + w + q + sq + st))
  echo $(((b1 - b0) * 100 / (t1 - t0 > 0 ? t1 - t0 : 1)))
}

k=0
# run VARIANT: one measurement in a fresh topology.
run() {
  local v=$1 d
  k=$((k + 1))
  d="$work/$k-$v"
  mkdir -p "$d"
  topo_up "rb-$rid-$k" "$UNDERLAY_MTU"
  case $v in
    plain) up_plain ;;
    wireguard-go) up_wireguard_go "$d" "$k" ;;
    libipsec) up_libipsec "$d" ;;
    rampart)
      rampart_running=1
      if ! rampart_up "$NS_HA" "$NS_HB" "$d"; then
        echo "rampart: did not start (logs in $d)" >&2
        failed=1
        run_down
        return 0
      fi
      ;;
  esac
  if ! wait_until 20 ip netns exec "$NS_PA" ping -c 1 -W 1 "$POD_B4"; then
    echo "$v: podA cannot ping podB through it after 20 s (logs in $d)" >&2
    failed=1
    run_down
    return 0
  fi
  # Let the deletion of the previous topology and the setup settle.
  sleep 1
  measure "$v" "$d" || failed=1
  run_down
}

: >"$work/results"
echo "bench/tunnel: iperf3 TCP, 1 stream, ${DURATION}s, underlay MTU $UNDERLAY_MTU, $N rounds; $(nproc) CPUs"
# CPU per Gbit counts the whole machine: say so if something else is busy.
busy=$(cpu_busy_percent)
if [ "$busy" -gt 10 ]; then
  echo "bench/tunnel: note: the machine was ${busy}% busy before starting; other work skews throughput and CPU per Gbit"
fi
for ((round = 1; round <= N; round++)); do
  echo "round $round/$N"
  for v in $VARIANTS; do
    if [ "$v" = rampart ] && [ "$rampart_ok" -eq 0 ]; then
      continue
    fi
    run "$v"
  done
done

# median COLUMN VARIANT
median() {
  awk -F'\t' -v v="$2" -v c="$1" '$1 == v { print $c }' "$work/results" | sort -g |
    awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

echo
printf '%-13s %12s %8s %8s %14s %12s\n' variant 'Gbit/s(med)' min max 'retrans(med)' 'CPU-s/Gbit'
for v in $VARIANTS; do
  if ! awk -F'\t' -v v="$v" '$1 == v { found = 1 } END { exit !found }' "$work/results"; then
    printf '%-13s %12s\n' "$v" 'not measured'
    continue
  fi
  read -r lo hi < <(awk -F'\t' -v v="$v" '$1 == v { if (n++ == 0 || $2 < lo) lo = $2; if (n == 1 || $2 > hi) hi = $2 } END { print lo, hi }' "$work/results")
  printf '%-13s %12.3f %8.3f %8.3f %14.0f %12.3f\n' "$v" "$(median 2 "$v")" "$lo" "$hi" "$(median 3 "$v")" "$(median 4 "$v")"
done

ratio() { # NUM DEN: median Gbit/s of NUM over DEN, or n/a
  local a b
  a=$(median 2 "$1")
  b=$(median 2 "$2")
  awk -v a="$a" -v b="$b" 'BEGIN { if (a == "nan" || b == "nan" || b + 0 == 0) print "n/a"; else printf "%.3f\n", a / b }'
}
echo "ratio rampart/wireguard-go=$(ratio rampart wireguard-go) rampart/libipsec=$(ratio rampart libipsec)"
exit "$failed"
