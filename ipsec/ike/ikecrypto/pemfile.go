package ikecrypto

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
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
	var out []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ikecrypto: certificate file %s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ikecrypto: certificate file %s holds no PEM certificate", path)
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
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("ikecrypto: key file %s holds no PEM private key", path)
	}
	defer clear(block.Bytes)
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		err = fmt.Errorf("a %q block, not a private key", block.Type)
	}
	signer, ok := key.(crypto.Signer)
	if err != nil || !ok {
		return nil, fmt.Errorf("ikecrypto: key file %s: not a usable private key: %v", path, err)
	}
	return signer, nil
}
