#!/bin/sh
# Regenerates vectors.txt: runs two strongSwan charons (5.9.8, Debian 12's
# strongswan-charon, strongswan-swanctl, libcharon-extra-plugins,
# libstrongswan-standard-plugins, libstrongswan-extra-plugins) in two
# network namespaces, with charon's debug log at level 4 for IKE, CHD, ENC
# and NET, which prints the nonces, SPIs, g^ir, SKEYSEED, every SK_*, the
# signed octets, the PSK AUTH values, the CHILD_SA keys and every received
# packet. For each scenario it establishes an IKE SA and a CHILD_SA,
# authenticated with a PSK or with certificates (made here with openssl)
# and RFC 7427 signatures, rekeys the CHILD_SA (with PFS), rekeys the IKE
# SA, then stops.
# extract/ turns the two logs of each scenario into one section of
# vectors.txt.
#
# Needs root. Creates namespaces ikecA and ikecB, a veth pair, addresses
# 198.18.0.1/24 and 198.18.0.2/24 (RFC 2544 benchmarking space) and
# 198.19.1.1, 198.19.2.1 on lo for the tunnel selectors; removes them all
# on exit. Kills only the charons it started, by PID.
#
# Usage: sh run.sh [workdir]   (from this directory; default workdir: a mktemp dir)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$(mktemp -d /tmp/ikecrypto-strongswan.XXXXXX)}
pids=""

cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	sleep 1
	ip netns del ikecA 2>/dev/null || true
	ip netns del ikecB 2>/dev/null || true
}
trap cleanup EXIT INT TERM

ip netns add ikecA
ip netns add ikecB
ip link add ikecva netns ikecA type veth peer name ikecvb netns ikecB
ip -n ikecA addr add 198.18.0.1/24 dev ikecva
ip -n ikecB addr add 198.18.0.2/24 dev ikecvb
ip -n ikecA addr add 198.19.1.1/32 dev lo
ip -n ikecB addr add 198.19.2.1/32 dev lo
for ns in ikecA ikecB; do
	ip -n $ns link set lo up
done
ip -n ikecA link set ikecva up
ip -n ikecB link set ikecvb up

# conf SIDE LOCAL REMOTE LOCALID REMOTEID IKE ESP START LOCALTS REMOTETS LOCALAUTH
# LOCALAUTH is psk, or a swanctl auth value (pubkey, rsa/pss-sha256) with
# the certificate and key from pki.
conf() {
	d=$work/$1
	rm -rf "$d"
	mkdir -p "$d/run"
	if [ "${11}" = psk ]; then
		remoteauth=psk
		certs=""
	else
		remoteauth=pubkey
		certs="certs = $1.pem"
		mkdir -p "$d/x509ca" "$d/x509" "$d/pkcs8"
		cp "$work/pki/ca.pem" "$d/x509ca/"
		cp "$work/pki/$1.pem" "$d/x509/"
		cp "$work/pki/$1.key" "$d/pkcs8/"
	fi
	cat > "$d/strongswan.conf" <<EOT
charon {
  load_modular = no
  load = random nonce kdf aesni openssl sha1 sha2 hmac mgf1 pem pkcs1 pkcs8 x509 pubkey curve25519 kernel-libipsec kernel-netlink socket-default vici
  port = 500
  port_nat_t = 4500
  install_routes = no
  plugins { vici { socket = unix://$d/charon.vici } }
  filelog {
    log {
      path = $d/charon.log
      default = 1
      ike = 4
      chd = 4
      net = 4
      enc = 4
      cfg = 2
      append = no
      flush_line = yes
    }
  }
}
EOT
	cat > "$d/swanctl.conf" <<EOT
connections {
  t {
    version = 2
    local_addrs = $2
    remote_addrs = $3
    proposals = $6
    local { auth = ${11}
            id = $4
            $certs }
    remote { auth = $remoteauth
             id = $5 }
    children { c { local_ts = $9
                   remote_ts = ${10}
                   esp_proposals = $7
                   mode = tunnel
                   start_action = $8 } }
  }
}
secrets { ike-x { id-a = a.example
                  id-b = b.example
                  secret = "rampart-test-psk-0123456789" } }
EOT
}

# charon SIDE NS: starts charon in NS with its own /run; prints its PID.
charon() {
	d=$work/$1
	ip netns exec "$2" sh -c "mount --bind $d/run /run && exec env STRONGSWAN_CONF=$d/strongswan.conf /usr/lib/ipsec/charon" >"$d/stdout" 2>&1 &
	echo $!
}

# pki TYPE: a CA and certificates for a.example and b.example with keys of
# TYPE (ecdsa, rsa, ed25519), made with openssl, valid for a century.
pki() {
	d=$work/pki
	rm -rf "$d"
	mkdir -p "$d"
	case $1 in
	ecdsa) alg="-algorithm EC -pkeyopt ec_paramgen_curve:P-256" ;;
	rsa) alg="-algorithm RSA -pkeyopt rsa_keygen_bits:2048" ;;
	ed25519) alg="-algorithm ED25519" ;;
	esac
	openssl genpkey $alg -out "$d/ca.key" 2>/dev/null
	openssl req -x509 -new -key "$d/ca.key" -subj "/C=CH/O=Rampart Test/CN=Test CA $1" -days 36500 \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out "$d/ca.pem"
	serial=2
	for n in a b; do
		openssl genpkey $alg -out "$d/$n.key" 2>/dev/null
		openssl req -new -key "$d/$n.key" -subj "/C=CH/O=Rampart Test/CN=$n.example" -out "$d/$n.csr"
		printf 'subjectAltName=DNS:%s.example\nkeyUsage=critical,digitalSignature\n' $n > "$d/$n.ext"
		openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -set_serial $serial -days 36500 \
			-extfile "$d/$n.ext" -out "$d/$n.pem" 2>/dev/null
		serial=$((serial + 1))
	done
}

# scenario NAME IKEPROPOSAL ESPPROPOSAL [AUTH KEYTYPE]
scenario() {
	auth=${4:-psk}
	if [ "$auth" != psk ]; then
		pki "$5"
	fi
	conf a 198.18.0.1 198.18.0.2 a.example b.example "$2" "$3" start 198.19.1.0/24 198.19.2.0/24 "$auth"
	conf b 198.18.0.2 198.18.0.1 b.example a.example "$2" "$3" none 198.19.2.0/24 198.19.1.0/24 "$auth"
	pb=$(charon b ikecB)
	pa=$(charon a ikecA)
	pids="$pa $pb"
	sleep 2
	swanctl --load-all --file "$work/b/swanctl.conf" --uri "unix://$work/b/charon.vici" >/dev/null 2>&1
	swanctl --load-all --file "$work/a/swanctl.conf" --uri "unix://$work/a/charon.vici" >/dev/null 2>&1
	sleep 3
	swanctl --rekey --child c --uri "unix://$work/a/charon.vici"
	sleep 2
	swanctl --rekey --ike t --uri "unix://$work/a/charon.vici"
	sleep 2
	kill $pa $pb
	sleep 2
	pids=""
	mkdir -p "$work/out/$1"
	cp "$work/a/charon.log" "$work/out/$1/initiator.log"
	cp "$work/b/charon.log" "$work/out/$1/responder.log"
	if [ "$auth" = psk ]; then
		echo "$1 $2 $3 psk" >> "$work/out/scenarios"
	else
		cp "$work/pki/ca.pem" "$work/out/$1/ca.pem"
		echo "$1 $2 $3 $auth" >> "$work/out/scenarios"
	fi
}

rm -f "$work/out/scenarios"
scenario gcm256-x25519 aes256gcm16-prfsha256-x25519 aes256gcm16-x25519
scenario cbc256-ecp256 aes256-sha256-ecp256 aes128-sha256-ecp256
scenario chacha-ecp384 chacha20poly1305-prfsha512-ecp384 chacha20poly1305-ecp384
scenario gcm192-ecp521 aes192gcm16-prfsha384-ecp521 aes192gcm16-ecp521
scenario cbc128-sha512-x25519 aes128-sha512-prfsha384-x25519 aes256-sha384-x25519
scenario sig-ecdsa aes256gcm16-prfsha256-x25519 aes256gcm16-x25519 pubkey ecdsa
scenario sig-rsa-pss aes256gcm16-prfsha256-ecp256 aes256gcm16-ecp256 rsa/pss-sha256 rsa
scenario sig-rsa-pkcs1 aes128gcm16-prfsha384-ecp384 aes128gcm16-ecp384 pubkey-sha384 rsa
scenario sig-ed25519 chacha20poly1305-prfsha256-x25519 chacha20poly1305-x25519 pubkey ed25519

cd "$here/../.." && go run ./testdata/strongswan/extract "$work/out" > "$here/vectors.txt"
echo "wrote $here/vectors.txt from $work/out"
