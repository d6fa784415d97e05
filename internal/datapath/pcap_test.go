//go:build e2e

package datapath

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
)

// A small reader of classic pcap files (what tcpdump -w writes), enough
// for the end-to-end tests to look at every frame on the underlay.

type frame struct {
	data []byte // from the Ethernet header
}

func readPcap(path string) ([]frame, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 24 {
		return nil, fmt.Errorf("%s: %d bytes, too short for a pcap header", path, len(b))
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		order = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		order = binary.BigEndian
	default:
		return nil, fmt.Errorf("%s: not a pcap file", path)
	}
	if lt := order.Uint32(b[20:]); lt != 1 {
		return nil, fmt.Errorf("%s: link type %d, want Ethernet (1)", path, lt)
	}
	var out []frame
	for off := 24; off+16 <= len(b); {
		incl := int(order.Uint32(b[off+8:]))
		off += 16
		if off+incl > len(b) {
			break // the capture was cut while writing
		}
		out = append(out, frame{b[off : off+incl]})
		off += incl
	}
	return out, nil
}

// udpPort returns the frame's IPv4/IPv6 protocol and, for UDP, the ports.
// ok is false for frames that are not IP (ARP, say).
func (f frame) ip() (proto byte, src, dst uint16, payload []byte, ok bool) {
	if len(f.data) < 14 {
		return 0, 0, 0, nil, false
	}
	eth := binary.BigEndian.Uint16(f.data[12:])
	p := f.data[14:]
	switch {
	case eth == 0x0800 && len(p) >= 20:
		ihl := int(p[0]&0x0f) * 4
		proto, p = p[9], p[ihl:]
	case eth == 0x86dd && len(p) >= 40:
		proto, p = p[6], p[40:]
		// A hop-by-hop options header (MLD reports carry one).
		if proto == 0 && len(p) >= 8 && len(p) >= 8+int(p[1])*8 {
			proto, p = p[0], p[8+int(p[1])*8:]
		}
	default:
		return 0, 0, 0, nil, false
	}
	if proto == 17 && len(p) >= 8 {
		return proto, binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:]), p[8:], true
	}
	return proto, 0, 0, p, true
}

// src is the frame's IP source address, if it is an IP frame.
func (f frame) src() netip.Addr {
	if len(f.data) < 14+40 {
		return netip.Addr{}
	}
	switch binary.BigEndian.Uint16(f.data[12:]) {
	case 0x0800:
		return netip.AddrFrom4([4]byte(f.data[14+12:]))
	case 0x86dd:
		return netip.AddrFrom16([16]byte(f.data[14+8:]))
	}
	return netip.Addr{}
}
