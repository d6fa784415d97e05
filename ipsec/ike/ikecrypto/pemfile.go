package ikecrypto

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// ReadCertificates reads the PEM certificates of a file, in order (a
// chain: leaf first). A file with none is an error.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ikecrypto: certificate file: %w", err)
	}
	out, err := ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("ikecrypto: certificate file %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ikecrypto: certificate file %s holds no PEM certificate", path)
	}
	return out, nil
}

// ParseCertificates parses the PEM CERTIFICATE blocks of data, in order,
// skipping blocks of other types; none is not an error here.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// ReadPrivateKey reads a PEM private key (PKCS#8, SEC 1 EC or PKCS#1 RSA)
// from a file only its owner may read (ReadSecretFile's rules). The PEM
// text is wiped once parsed.
func ReadPrivateKey(path string) (crypto.Signer, error) {
	data, err := ReadSecretFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	key, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("ikecrypto: key file %s: %w", path, err)
	}
	return key, nil
}

// ParsePrivateKey parses the first PEM block of data as a private key
// (PKCS#8, SEC 1 EC or PKCS#1 RSA) that can sign, and wipes the block's
// decoded bytes (the caller wipes data). Errors name the block's type,
// never its content.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key")
	}
	defer clear(block.Bytes)
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("a %q PEM block, not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("not a usable private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign", key)
	}
	return signer, nil
}

// EncodeCertificates writes certificates as PEM CERTIFICATE blocks, in
// order: what ParseCertificates reads back.
func EncodeCertificates(list []*x509.Certificate) []byte {
	var b []byte
	for _, c := range list {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// PublicKeysEqual reports whether a and b are the same public key (the
// standard library's keys have an Equal method; a key without one is
// never equal).
func PublicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
