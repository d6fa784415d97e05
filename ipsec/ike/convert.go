package ike

import (
	"crypto/sha1"
	"encoding/binary"
	"net/netip"

	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
	"github.com/rampartnet/rampart/ipsec/ike/message"
)

// wireProposals turns our proposals into SA payload proposals.
func wireProposals(ps []ikecrypto.Proposal, proto message.ProtocolID, spi []byte) []message.Proposal {
	out := make([]message.Proposal, len(ps))
	for i, p := range ps {
		if proto == message.ProtocolESP && len(p.ESN) == 0 {
			// An ESP proposal must say whether it takes extended sequence
			// numbers (RFC 7296 §3.3.2); strongSwan refuses one that does not.
			p.ESN = []ikecrypto.ESNID{ikecrypto.ESNNo}
		}
		out[i] = message.Proposal{Number: uint8(i + 1), Protocol: proto, SPI: spi, Transforms: wireTransforms(p)}
	}
	return out
}

func wireTransforms(p ikecrypto.Proposal) []message.Transform {
	var out []message.Transform
	for _, t := range p.Transforms() {
		mt := message.Transform{Type: message.TransformType(t.Type), ID: t.ID}
		if t.KeyLen != 0 {
			mt.Attributes = []message.Attribute{message.KeyLength(t.KeyLen)}
		}
		out = append(out, mt)
	}
	return out
}

// cryptoProposals reads received proposals. A proposal with a transform
// type we do not know is unusable (RFC 7296 §3.3.6); it becomes an empty
// proposal so the indexes still match the payload's.
func cryptoProposals(ps []message.Proposal) []ikecrypto.Proposal {
	out := make([]ikecrypto.Proposal, len(ps))
	for i, p := range ps {
		var ts []ikecrypto.Transform
		for _, t := range p.Transforms {
			kl, _ := t.KeyLength()
			ts = append(ts, ikecrypto.Transform{Type: ikecrypto.TransformType(t.Type), ID: t.ID, KeyLen: kl})
		}
		cp, err := ikecrypto.ProposalFromTransforms(ts)
		if err != nil {
			continue
		}
		out[i] = cp
	}
	return out
}

// natHash is a NAT_DETECTION hash: SHA-1(SPIi | SPIr | IP | Port) (RFC
// 7296 §2.23, which mandates SHA-1 here).
func natHash(spiI, spiR uint64, ap netip.AddrPort) []byte {
	h := sha1.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], spiI)
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], spiR)
	h.Write(b[:])
	h.Write(ap.Addr().AsSlice())
	binary.BigEndian.PutUint16(b[:2], ap.Port())
	h.Write(b[:2])
	return h.Sum(nil)
}
