package message_test

import (
	"bytes"
	"fmt"

	"github.com/rampartnet/rampart/ipsec/ike/message"
)

// Example builds an IKE_SA_INIT request, parses it as the responder would,
// and answers INVALID_KE_PAYLOAD (RFC 7296 §1.3).
func Example() {
	pub := bytes.Repeat([]byte{0x42}, 32)   // X25519 public value, from the crypto package
	nonce := bytes.Repeat([]byte{0x07}, 32) // random in real life
	natd := make([]byte, 20)                // SHA-1 digests of SPIs, address and port (RFC 7296 §2.23)

	req := &message.Message{
		Header: message.Header{SPIi: 0x1122334455667788, Exchange: message.IKESAInit, Flags: message.FlagInitiator},
		Payloads: []message.Payload{
			&message.SA{Proposals: []message.Proposal{{Protocol: message.ProtocolIKE, Transforms: []message.Transform{
				message.Encr(message.EncrAESGCM16, 256),
				message.PRF(message.PRFHMACSHA256),
				message.DH(message.DHCurve25519),
			}}}},
			&message.KE{Group: message.DHCurve25519, Data: pub},
			&message.Nonce{Data: nonce},
			message.NewNotify(message.NotifyNATDetectionSourceIP, natd),
			message.NewNotify(message.NotifyNATDetectionDestinationIP, natd),
			message.NewNotify(message.NotifyIKEv2FragmentationSupported, nil),
			message.NewSignatureHashAlgorithms(message.HashSHA256, message.HashSHA384, message.HashSHA512),
		},
	}
	b, err := req.Marshal()
	if err != nil {
		panic(err)
	}
	fmt.Println(len(b), "octets")

	// The responder.
	m, err := message.Parse(b)
	if err != nil {
		fmt.Println(err, message.NotifyFor(err))
		return
	}
	sa, _ := message.First[*message.SA](m)
	ke, _ := message.First[*message.KE](m)
	fmt.Println(m)
	fmt.Println(sa.Proposals[0])
	fmt.Println(ke.Group, m.Notify(message.NotifyIKEv2FragmentationSupported) != nil)

	resp := &message.Message{
		Header:   message.Header{SPIi: m.SPIi, Exchange: message.IKESAInit, Flags: message.FlagResponse},
		Payloads: []message.Payload{message.NewInvalidKEPayload(message.DHECP256)},
	}
	rb, _ := resp.Marshal()
	fmt.Printf("%x\n", rb)
	// Output:
	// 222 octets
	// IKE_SA_INIT request 0 [I] 1122334455667788_i 0000000000000000_r [ SA KE Nonce N(NAT_DETECTION_SOURCE_IP) N(NAT_DETECTION_DESTINATION_IP) N(IKEV2_FRAGMENTATION_SUPPORTED) N(SIGNATURE_HASH_ALGORITHMS) ]
	// #1 IKE ENCR:ENCR_AES_GCM_16/256 PRF:PRF_HMAC_SHA2_256 KE:Curve25519
	// Curve25519 true
	// 112233445566778800000000000000002920222000000000000000260000000a000000110013
}
