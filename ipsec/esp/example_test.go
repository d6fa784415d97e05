package esp_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/rampartnet/rampart/ipsec/esp"
)

// Example shows one packet through the pipeline: Seal on the sender,
// Open and Accept on the receiver.
func Example() {
	key := make([]byte, 36) // AES-256 key and 4-octet salt, from IKE in real life
	cfg := esp.Config{SPI: 0xc0ffee, Mode: esp.ModeTunnel, Algorithm: esp.AESGCM16, Key: key}
	out, _ := esp.NewSA(cfg)
	in, _ := esp.NewSA(cfg)

	// An IPv4 packet from TUN (header only, for brevity).
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 20)
	copy(ip[12:], []byte{10, 1, 0, 1, 10, 2, 0, 1})

	buf := make([]byte, 0, len(ip)+out.Overhead())
	udpPayload, err := out.Seal(buf, ip)
	if err != nil {
		panic(err)
	}
	fmt.Println(esp.ClassifyUDP(udpPayload), len(udpPayload)-len(ip), "octets of ESP")

	inner, seq, err := in.Open(nil, udpPayload, netip.Addr{}, netip.Addr{})
	if err != nil {
		panic(err)
	}
	if err := in.Accept(seq, len(inner)); err != nil {
		panic(err)
	}
	src, dst, _ := esp.InnerAddrs(inner)
	fmt.Println(seq, src, dst)
	fmt.Println(in.Accept(seq, len(inner)))
	// Output:
	// esp 36 octets of ESP
	// 1 10.1.0.1 10.2.0.1
	// esp: replayed packet: sequence number seen or below the window (accept)
}
