#!/bin/sh
# capture.sh regenerates a strongSwan capture in this directory (see
# README.md). It needs root, strongSwan 5.9 (charon, swanctl, the
# kernel-libipsec plugin) and tcpdump. Everything runs in two network
# namespaces that the script creates and removes; nothing on the host changes.
#
#   sh capture.sh <name> <ike proposals> <esp proposals> [<responder's ike proposals>]
#
# writes <name>.pcap (every UDP datagram between the peers) and <name>.keys
# (the IKE SA keys, which charon logs at level 4 for the ike group, in the
# order the SAs were created). KEEP_LOGS=<dir> keeps both charon logs there.
set -eu
name=$1 ike=$2 esp=$3 rike=${4:-$2}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/ikemsg.XXXXXX)
A=ikemsgA B=ikemsgB
addrA=198.19.201.1 addrB=198.19.201.2

cleanup() {
	for p in "$work"/a/pid "$work"/b/pid "$work"/tcpdump.pid; do
		[ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true
	done
	sleep 1
	ip netns del $A 2>/dev/null || true
	ip netns del $B 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

ip netns add $A
ip netns add $B
ip link add ikemsg0 netns $A type veth peer name ikemsg1 netns $B
ip -n $A addr add $addrA/24 dev ikemsg0
ip -n $B addr add $addrB/24 dev ikemsg1
ip -n $A link set ikemsg0 up
ip -n $A link set lo up
ip -n $B link set ikemsg1 up
ip -n $B link set lo up
# kernel-libipsec routes need a local address inside the responder's selector
ip -n $B addr add 10.77.0.1/32 dev lo

for d in a b; do
	mkdir -p "$work/$d/run"
	cat >"$work/$d/strongswan.conf" <<EOC
charon {
	load_modular = no
	load = random nonce kdf aesni openssl sha1 sha2 hmac pem pkcs1 x509 pubkey curve25519 gmp kernel-libipsec kernel-netlink socket-default vici attr
	port = 500
	port_nat_t = 4500
	# small fragments, so that IKE_AUTH is sent as RFC 7383 fragments
	fragment_size = 300
	plugins {
		vici {
			socket = unix://$work/$d/charon.vici
		}
	}
	filelog {
		log {
			path = $work/$d/charon.log
			flush_line = yes
			default = 1
			ike = 4
		}
	}
}
EOC
done

cat >"$work/a/swanctl.conf" <<EOC
connections {
	c {
		version = 2
		local_addrs = $addrA
		remote_addrs = $addrB
		proposals = $ike
		fragmentation = yes
		vips = 0.0.0.0
		local {
			auth = psk
			id = initiator@rampart.test
		}
		remote {
			auth = psk
			id = responder.rampart.test
		}
		children {
			c {
				esp_proposals = $esp
				mode = tunnel
				local_ts = dynamic
				remote_ts = 10.77.0.0/16
			}
		}
	}
}
secrets {
	ike-c {
		id-a = initiator@rampart.test
		id-b = responder.rampart.test
		secret = rampart-message-test
	}
}
EOC
cat >"$work/b/swanctl.conf" <<EOC
connections {
	c {
		version = 2
		local_addrs = $addrB
		remote_addrs = $addrA
		proposals = $rike
		fragmentation = yes
		pools = p
		local {
			auth = psk
			id = responder.rampart.test
		}
		remote {
			auth = psk
			id = initiator@rampart.test
		}
		children {
			c {
				esp_proposals = $esp
				mode = tunnel
				local_ts = 10.77.0.0/16
			}
		}
	}
}
pools {
	p {
		addrs = 10.99.0.0/24
		dns = 10.99.0.53
	}
}
secrets {
	ike-c {
		id-a = initiator@rampart.test
		id-b = responder.rampart.test
		secret = rampart-message-test
	}
}
EOC

start() { # netns dir
	ip netns exec "$1" sh -c "mount --bind $work/$2/run /run && exec env STRONGSWAN_CONF=$work/$2/strongswan.conf /usr/lib/ipsec/charon" >/dev/null 2>&1 &
	echo $! >"$work/$2/pid"
}
ip netns exec $A tcpdump -i ikemsg0 -s0 -U -w "$work/cap.pcap" udp >/dev/null 2>&1 &
echo $! >"$work/tcpdump.pid"
start $B b
start $A a
for d in a b; do
	i=0
	while [ ! -S "$work/$d/charon.vici" ]; do
		i=$((i + 1))
		[ $i -gt 50 ] && exit 1
		sleep 0.1
	done
done
sw() { # netns dir args...
	ns=$1 d=$2
	shift 2
	ip netns exec "$ns" swanctl "$@" --uri "unix://$work/$d/charon.vici"
}
sw $B b --load-all --file "$work/b/swanctl.conf" 2>&1 | grep -v 'opening directory'
sw $A a --load-all --file "$work/a/swanctl.conf" 2>&1 | grep -v 'opening directory'
sw $A a --initiate --ike c --child c
sleep 0.5
sw $A a --rekey --child c
sleep 1
sw $A a --rekey --ike c
sleep 1
sw $A a --terminate --ike c
sleep 1
kill "$(cat "$work/tcpdump.pid")"
rm "$work/tcpdump.pid"
sleep 0.5
cp "$work/cap.pcap" "$here/$name.pcap"
awk '
	/\] Sk_(ei|er|ai|ar) secret => / { name = $2; n = $5; hex = ""; next }
	name != "" && /\] +[0-9]+: / {
		for (i = 3; i <= NF && length(hex) < 2 * n; i++) {
			if ($i !~ /^[0-9A-F][0-9A-F]$/) break
			hex = hex tolower($i)
		}
		if (length(hex) == 2 * n) { print name, hex; name = "" }
	}
' "$work/a/charon.log" >"$here/$name.keys"
if [ -n "${KEEP_LOGS:-}" ]; then
	cp "$work/a/charon.log" "$KEEP_LOGS/initiator.log"
	cp "$work/b/charon.log" "$KEEP_LOGS/responder.log"
fi
