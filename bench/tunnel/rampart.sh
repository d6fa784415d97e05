# shellcheck shell=bash
# bench/tunnel/rampart.sh: Rampart's variant for bench/tunnel/run.sh, sourced.
#
# rampart_up HOST_A_NS HOST_B_NS WORKDIR starts `rampart tunnel run` in both
# hosts of the topology (underlay 198.18.0.1 <-> 198.18.0.2, subnets
# 198.19.1.0/24 and 198.19.2.0/24) with AES-256-GCM-16, the transform the
# other variants use (strongSwan aes256gcm16). The keys are random per run;
# manual AEAD keys need the test-only flag. rampart_down stops both by PID.
#
# RAMPART (default bin/rampart) is the binary to run.

RAMPART=${RAMPART:-bin/rampart}
RAMPART_PIDS=()

rampart_config() { # NAME LOCAL PEER_NAME PEER LOCAL_NET REMOTE_NET OUT_SPI IN_SPI OUT_KEY IN_KEY DIR
  cat > "${11}/$1.yaml" <<CONF
apiVersion: rampart.dev/v1alpha1
kind: Tunnel
metadata: {name: $1}
spec:
  device: {name: rpb$1}
  localAddress: $2
  controlSocket: ${11}/$1.sock
  peers:
  - name: $3
    endpoint: $4
    localSubnets: [$5]
    remoteSubnets: [$6]
    sas:
      outbound: {spi: "$7", algorithm: aes-gcm-16, keyFile: $9}
      inbound: {spi: "$8", algorithm: aes-gcm-16, keyFile: ${10}}
CONF
}

rampart_up() {
  local a=$1 b=$2 dir=$3
  mkdir -p "$dir"
  (umask 077
   head -c 36 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/ab.key"
   head -c 36 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/ba.key")
  rampart_config a 198.18.0.1 b 198.18.0.2 198.19.1.0/24 198.19.2.0/24 0x1001 0x2001 ab.key ba.key "$dir"
  rampart_config b 198.18.0.2 a 198.18.0.1 198.19.2.0/24 198.19.1.0/24 0x2001 0x1001 ba.key ab.key "$dir"
  ip netns exec "$a" "$RAMPART" tunnel run --config "$dir/a.yaml" --insecure-manual-aead-keys ${RAMPART_WORKERS:+--crypto-workers $RAMPART_WORKERS} ${RAMPART_PROFILE:+--cpuprofile $dir/a.prof} 2>"$dir/a.log" &
  RAMPART_PIDS+=($!)
  ip netns exec "$b" "$RAMPART" tunnel run --config "$dir/b.yaml" --insecure-manual-aead-keys ${RAMPART_WORKERS:+--crypto-workers $RAMPART_WORKERS} ${RAMPART_PROFILE:+--cpuprofile $dir/b.prof} 2>"$dir/b.log" &
  RAMPART_PIDS+=($!)
  local _
  for _ in $(seq 50); do
    [ -S "$dir/a.sock" ] && [ -S "$dir/b.sock" ] && return 0
    sleep 0.1
  done
  echo "rampart: tunnel did not start:" >&2
  cat "$dir/a.log" "$dir/b.log" >&2
  return 1
}

rampart_down() {
  local pid
  for pid in "${RAMPART_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${RAMPART_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  RAMPART_PIDS=()
}
