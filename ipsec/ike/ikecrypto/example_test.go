package ikecrypto_test

import (
	"crypto/rand"
	"fmt"

	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// Example walks one IKE SA through this package, both sides in one
// function: proposals, Diffie-Hellman, key derivation, an SK payload, PSK
// authentication and the first CHILD_SA's keys.
func Example() {
	// IKE_SA_INIT: the responder picks from the initiator's proposals.
	offered := ikecrypto.DefaultIKEProposals()
	local, _ := ikecrypto.ParseIKEProposals("aes256gcm16-prfsha256-x25519, aes256-sha256-ecp256")
	suite, num, _ := ikecrypto.SelectIKE(local, offered)
	fmt.Println("suite:", suite, "from proposal", num+1)

	iKey, iPub, _ := ikecrypto.GenerateKey(suite.DH, rand.Reader)
	rKey, rPub, _ := ikecrypto.GenerateKey(suite.DH, rand.Reader)
	ni, nr := make([]byte, 32), make([]byte, 32)
	rand.Read(ni)
	rand.Read(nr)
	const spiI, spiR = 0x1111111111111111, 0x2222222222222222

	giI, _ := ikecrypto.SharedSecret(iKey, rPub)
	giR, _ := ikecrypto.SharedSecret(rKey, iPub)
	ik, _ := ikecrypto.DeriveIKEKeys(suite, giI, ni, nr, spiI, spiR)
	rk, _ := ikecrypto.DeriveIKEKeys(suite, giR, ni, nr, spiI, spiR)
	defer ik.Zero()
	defer rk.Zero()
	fmt.Println(ik, "SK_ei is", len(ik.SKei), "octets (key and salt)")

	// IKE_AUTH: the initiator seals; the responder opens.
	iOut, _, _ := ik.SKCiphers(true)
	_, rIn, _ := rk.SKCiphers(false)
	prefix := make([]byte, 32) // IKE header and SK payload header, lengths final
	inner := []byte("IDi | AUTH | SA | TSi | TSr")
	body := make([]byte, iOut.BodyLen(len(inner)))
	_ = iOut.Seal(body, prefix, inner)
	pt, err := rIn.Open(prefix, body)
	fmt.Printf("opened %q %v\n", pt, err)

	// PSK AUTH of the initiator, checked by the responder.
	idi := ikecrypto.Identity{Type: ikecrypto.IDFQDN, Data: []byte("a.example")}
	msg1 := []byte("the IKE_SA_INIT request as sent")
	octets, _ := ik.InitiatorSignedOctets(msg1, nr, idi.PayloadBody())
	auth, _ := ikecrypto.PSKAuth(suite.PRF, []byte("a pre-shared key"), octets)
	check, _ := rk.InitiatorSignedOctets(msg1, nr, idi.PayloadBody())
	fmt.Println("AUTH:", ikecrypto.VerifyPSKAuth(suite.PRF, []byte("a pre-shared key"), check, auth))

	// The first CHILD_SA, keyed from the IKE_SA_INIT nonces.
	esp, _ := ikecrypto.ParseESPProposals("aes256gcm16")
	childSuite, _, _ := ikecrypto.SelectESP(esp, esp, false)
	ck, _ := ik.ChildKeys(childSuite, nil, ni, nr)
	defer ck.Zero()
	fmt.Println(ck, "initiator->responder key:", len(ck.EncrI), "octets")
	// Output:
	// suite: aes256gcm16-prfsha256-x25519 from proposal 1
	// ikecrypto.Keys(aes256gcm16-prfsha256-x25519) SK_ei is 36 octets (key and salt)
	// opened "IDi | AUTH | SA | TSi | TSr" <nil>
	// AUTH: <nil>
	// ikecrypto.ChildKeys(aes256gcm16) initiator->responder key: 36 octets
}
