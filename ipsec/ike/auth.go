package ike

import (
	"crypto/sha1"
	"crypto/x509"
	"fmt"
	"slices"
	"time"

	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
	"github.com/rampartnet/rampart/ipsec/ike/message"
)

// signatureHashes is our SIGNATURE_HASH_ALGORITHMS notification (RFC 7427
// §4): it says we take digital signatures (auth method 14).
func signatureHashes() *message.Notify {
	var hs []message.HashAlgorithm
	for _, h := range ikecrypto.DefaultHashAlgorithms() {
		hs = append(hs, message.HashAlgorithm(h))
	}
	return message.NewSignatureHashAlgorithms(hs...)
}

func peerHashes(m *message.Message) []ikecrypto.HashAlgorithm {
	n := m.Notify(message.NotifySignatureHashAlgorithms)
	if n == nil {
		return nil
	}
	hs, _ := n.HashAlgorithms()
	out := make([]ikecrypto.HashAlgorithm, len(hs))
	for i, h := range hs {
		out[i] = ikecrypto.HashAlgorithm(h)
	}
	return out
}

// authPayload is our AUTH: a pre-shared key MAC (RFC 7296 §2.15) or a
// digital signature with a scheme the peer announced (RFC 7427).
func (d *Daemon) authPayload(sa *ikeSA, signed []byte) (*message.Auth, error) {
	if sa.cfg.Key == nil {
		data, err := ikecrypto.PSKAuth(sa.keys.Suite.PRF, sa.cfg.PSK, signed)
		if err != nil {
			return nil, err
		}
		return &message.Auth{Method: message.AuthPSK, Data: data}, nil
	}
	scheme, ok := ikecrypto.ChooseSignatureScheme(sa.cfg.Key.Public(), sa.peerHashes)
	if !ok {
		return nil, fmt.Errorf("%w: the peer announced no signature hash we can use with our key (SIGNATURE_HASH_ALGORITHMS)", errAuthFailed)
	}
	data, err := ikecrypto.SignatureAuth(scheme, sa.cfg.Key, d.opts.Rand, signed)
	if err != nil {
		return nil, err
	}
	return &message.Auth{Method: message.AuthDigitalSignature, Data: data}, nil
}

// certPayloads are our CERT payloads, leaf first, and a CERTREQ naming the
// CAs we trust (RFC 7296 §3.6, §3.7): strongSwan sends its certificate
// only when asked.
func certPayloads(c *Config) []message.Payload {
	if c.Key == nil {
		return nil
	}
	var out []message.Payload
	for _, cert := range c.Certs {
		out = append(out, &message.Cert{Encoding: message.CertX509Signature, Data: cert.Raw})
	}
	return out
}

// certReq names the CAs by the SHA-1 hash of their public key, as RFC 7296
// §3.7 requires.
func certReq(cas []*x509.Certificate) *message.CertReq {
	var data []byte
	for _, ca := range cas {
		h := sha1.Sum(ca.RawSubjectPublicKeyInfo)
		data = append(data, h[:]...)
	}
	return &message.CertReq{Encoding: message.CertX509Signature, Data: data}
}

func certsOf(m *message.Message) [][]byte {
	var out [][]byte
	for _, p := range m.Payloads {
		if c, ok := p.(*message.Cert); ok && c.Encoding == message.CertX509Signature {
			out = append(out, c.Data)
		}
	}
	return out
}

// verifySignature checks the peer's certificate chain against our CAs, that
// it names the identity the peer claims, and its RFC 7427 signature.
func verifySignature(sa *ikeSA, certs [][]byte, id ikecrypto.Identity, signed []byte, auth *message.Auth) error {
	if len(certs) == 0 {
		return fmt.Errorf("%w: the peer sent no certificate", errAuthFailed)
	}
	leaf, err := ikecrypto.VerifyPeerCertificate(certs, sa.cfg.caPool, time.Now())
	if err != nil {
		return fmt.Errorf("%w: %v", errAuthFailed, err)
	}
	if err := ikecrypto.MatchIdentity(leaf, id); err != nil {
		return fmt.Errorf("%w: %v", errAuthFailed, err)
	}
	scheme, err := ikecrypto.VerifySignatureAuth(leaf.PublicKey, auth.Data, signed)
	if err != nil {
		return fmt.Errorf("%w: the peer's signature does not verify: %v", errAuthFailed, err)
	}
	if !slices.Contains(ikecrypto.DefaultHashAlgorithms(), scheme.Hash()) {
		return fmt.Errorf("%w: the peer signed with %v, which we did not announce", errAuthFailed, scheme)
	}
	return nil
}
