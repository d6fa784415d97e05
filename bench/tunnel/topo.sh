# bench/tunnel/topo.sh: the two-site topology of the tunnel benchmark, in
# shell; sourced by run.sh. It mirrors internal/netns/topo_linux.go exactly
# (same names of links, addresses, MTUs, sysctls); keep the two in step.
#
#   podA ─veth─ hostA ══ underlay veth ══ hostB ─veth─ podB
#
#   podA  eth0  198.19.1.2/24 fd00:1::2/64   default via hostA
#   hostA pod0  198.19.1.1/24 fd00:1::1/64
#   hostA ul0   198.18.0.1/24 fd00::1/64
#   hostB ul0   198.18.0.2/24 fd00::2/64
#   hostB pod0  198.19.2.1/24 fd00:2::1/64
#   podB  eth0  198.19.2.2/24 fd00:2::2/64   default via hostB
#
# Hosts forward and have no route to the far pod subnet; topo_plain_routes
# adds routes through the underlay in clear (the baseline), a tunnel adds
# its own.
#
# topo_up NAME [UNDERLAY_MTU [POD_MTU]] makes namespaces NAME-pA NAME-hA
# NAME-hB NAME-pB and sets NS_PA NS_HA NS_HB NS_PB to them; topo_down
# deletes every namespace topo_up made (also after a partial failure).

# shellcheck shell=bash

TOPO_NS=()
NS_PA='' NS_HA='' NS_HB='' NS_PB=''

POD_A4=198.19.1.2  POD_A6=fd00:1::2
GW_A4=198.19.1.1   GW_A6=fd00:1::1
UL_A4=198.18.0.1   UL_A6=fd00::1
UL_B4=198.18.0.2   UL_B6=fd00::2
GW_B4=198.19.2.1   GW_B6=fd00:2::1
POD_B4=198.19.2.2  POD_B6=fd00:2::2
NET_A4=198.19.1.0/24 NET_A6=fd00:1::/64
NET_B4=198.19.2.0/24 NET_B6=fd00:2::/64

# topo_ns NAME: ip netns add, IPv6 DAD off for links made later (as
# netns.New), lo up.
topo_ns() {
  TOPO_NS+=("$1") # first: an interrupt right after the add must not leak it
  ip netns add "$1"
  ip netns exec "$1" sh -c 'echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad &&
    echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad'
  ip -n "$1" link set lo up
}

# topo_veth NS_A NAME_A ADDR4_A ADDR6_A NS_B NAME_B ADDR4_B ADDR6_B MTU
topo_veth() {
  ip -n "$1" link add "$2" mtu "$9" type veth peer name "$6" mtu "$9" netns "$5"
  ip -n "$1" addr add "$3" dev "$2"
  ip -n "$1" addr add "$4" dev "$2" nodad
  ip -n "$5" addr add "$7" dev "$6"
  ip -n "$5" addr add "$8" dev "$6" nodad
  ip -n "$1" link set "$2" up
  ip -n "$5" link set "$6" up
}

# topo_wait_up NS LINK...: wait until the links are operationally up; until
# the kernel's link watcher has run (up to a second) a new veth drops what
# it is given.
topo_wait_up() {
  local ns=$1 link i
  shift
  for link in "$@"; do
    for i in $(seq 500); do
      ip -n "$ns" -o link show "$link" | grep -q 'state UP' && continue 2
      sleep 0.01
    done
    echo "topo: $ns/$link not up after 5 s" >&2
    return 1
  done
}

topo_up() {
  local name=$1 mtu=${2:-1500} podmtu=${3:-1500} ns
  NS_PA=$name-pA NS_HA=$name-hA NS_HB=$name-hB NS_PB=$name-pB
  topo_ns "$NS_PA"
  topo_ns "$NS_HA"
  topo_veth "$NS_PA" eth0 "$POD_A4/24" "$POD_A6/64" "$NS_HA" pod0 "$GW_A4/24" "$GW_A6/64" "$podmtu"
  topo_ns "$NS_HB"
  topo_veth "$NS_HA" ul0 "$UL_A4/24" "$UL_A6/64" "$NS_HB" ul0 "$UL_B4/24" "$UL_B6/64" "$mtu"
  topo_ns "$NS_PB"
  topo_veth "$NS_HB" pod0 "$GW_B4/24" "$GW_B6/64" "$NS_PB" eth0 "$POD_B4/24" "$POD_B6/64" "$podmtu"
  ip -n "$NS_PA" route add default via "$GW_A4"
  ip -n "$NS_PA" -6 route add default via "$GW_A6"
  ip -n "$NS_PB" route add default via "$GW_B4"
  ip -n "$NS_PB" -6 route add default via "$GW_B6"
  for ns in "$NS_HA" "$NS_HB"; do
    ip netns exec "$ns" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward &&
      echo 1 > /proc/sys/net/ipv6/conf/all/forwarding'
  done
  topo_wait_up "$NS_PA" eth0
  topo_wait_up "$NS_HA" pod0 ul0
  topo_wait_up "$NS_HB" ul0 pod0
  topo_wait_up "$NS_PB" eth0
}

# topo_plain_routes: each host reaches the far pod subnet through the
# underlay, in clear (netns.TwoSitesOptions.PlainRoutes).
topo_plain_routes() {
  ip -n "$NS_HA" route add "$NET_B4" via "$UL_B4"
  ip -n "$NS_HA" -6 route add "$NET_B6" via "$UL_B6"
  ip -n "$NS_HB" route add "$NET_A4" via "$UL_A4"
  ip -n "$NS_HB" -6 route add "$NET_A6" via "$UL_A6"
}

# topo_down deletes the namespaces topo_up made, newest first, and keeps
# going past errors. Processes in them must be stopped first.
topo_down() {
  local i
  for ((i = ${#TOPO_NS[@]} - 1; i >= 0; i--)); do
    [ -e "/run/netns/${TOPO_NS[i]}" ] || continue
    ip netns del "${TOPO_NS[i]}" || echo "topo: could not delete netns ${TOPO_NS[i]}" >&2
  done
  TOPO_NS=()
}
