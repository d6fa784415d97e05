#!/usr/bin/env bash
# bench/tunnel/deps.sh: install what bench/tunnel/run.sh needs, only what is
# missing (idempotent): iperf3, strongSwan's charon with kernel-libipsec and
# swanctl, wg, ping, jq, tcpdump from Debian, and wireguard-go built into
# <repo>/bin from the Go module proxy. Needs root to install packages.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# file-or-command:package. A file is tested for plugins that have no command
# of their own (kernel-libipsec is in libcharon-extra-plugins, openssl and
# curve25519 in the standard and extra plugin packages).
need=(
  iperf3:iperf3
  /usr/lib/ipsec/charon:strongswan-charon
  swanctl:strongswan-swanctl
  /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so:libcharon-extra-plugins
  /usr/lib/ipsec/plugins/libstrongswan-openssl.so:libstrongswan-standard-plugins
  /usr/lib/ipsec/plugins/libstrongswan-curve25519.so:libstrongswan-extra-plugins
  wg:wireguard-tools
  ping:iputils-ping
  jq:jq
  tcpdump:tcpdump
)
missing=()
for pair in "${need[@]}"; do
  what=${pair%%:*} pkg=${pair#*:}
  if [[ $what == /* ]]; then
    [ -e "$what" ] && continue
  else
    command -v "$what" >/dev/null 2>&1 && continue
  fi
  missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench deps: not root, cannot install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"
fi

# wireguard-go: the module has no version tags, so @latest is the newest
# pseudo-version; its binary is named after the module's last element.
if [ ! -x "$repo/bin/wireguard" ]; then
  GOBIN="$repo/bin" go install golang.zx2c4.com/wireguard@latest
fi
