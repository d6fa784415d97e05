#!/usr/bin/env bash
# scripts/deps.sh: install the Debian packages the tests use, only those
# missing (idempotent). Called by `make deps`. Without root it installs
# nothing and says what is missing: the privileged tests skip then, unless
# RAMPART_REQUIRE_PRIVILEGED=1 (CI) turns their skip into a failure.
set -euo pipefail

# command:package
need=(
  ip:iproute2
  ping:iputils-ping
  tcpdump:tcpdump
  tshark:tshark
  iperf3:iperf3
  swanctl:strongswan-swanctl
  /usr/lib/ipsec/charon:strongswan-charon
  /usr/lib/ipsec/charon:libcharon-extra-plugins
  /usr/lib/ipsec/charon:libstrongswan-standard-plugins
  /usr/lib/ipsec/charon:libstrongswan-extra-plugins
)
missing=()
for pair in "${need[@]}"; do
  cmd=${pair%%:*} pkg=${pair#*:}
  if [ "${cmd#/}" != "$cmd" ]; then
    # A path: the package that ships it (and plugins with it) must be there.
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  else
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: not root, not installing: ${missing[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; they may not.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -q
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"
