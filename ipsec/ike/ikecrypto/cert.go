package ikecrypto

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Certificate check failures. Each error VerifyPeerCertificate and
// MatchIdentity return wraps exactly one of them, with the detail.
var (
	// ErrCertUntrusted: the chain does not lead to a configured CA.
	ErrCertUntrusted = errors.New("ikecrypto: certificate not issued by a trusted CA")
	// ErrCertExpired: a certificate of the chain is outside its validity
	// period.
	ErrCertExpired = errors.New("ikecrypto: certificate expired or not yet valid")
	// ErrCertUsage: the end-entity certificate's Key Usage does not allow
	// signatures.
	ErrCertUsage = errors.New("ikecrypto: certificate not usable for signing")
	// ErrCertInvalid: a certificate does not parse, or the chain breaks a
	// constraint (basic constraints, name constraints, path length).
	ErrCertInvalid = errors.New("ikecrypto: invalid certificate")
	// ErrIdentityMismatch: the peer's IKE identity is not one the
	// certificate names.
	ErrIdentityMismatch = errors.New("ikecrypto: identity does not match certificate")
)

// VerifyPeerCertificate parses the certificates of the peer's CERT payloads
// (encoding 4, "X.509 Certificate - Signature": DER), the first being the
// end-entity certificate whose key signed the AUTH payload (RFC 7296
// §3.6), the rest intermediates in any order, and verifies the chain
// against roots, the configured CAs, at time now. It returns the
// end-entity certificate.
//
// Like strongSwan, it asks for no particular Extended Key Usage (RFC 4945
// §5.1.3.12: IKE peers should not require one); it does check that a Key
// Usage extension, if present, allows digitalSignature or nonRepudiation
// (RFC 4945 §5.1.3.2). roots must be given: the system's CAs are never used.
// Revocation (CRL, OCSP) is not checked.
func VerifyPeerCertificate(ders [][]byte, roots *x509.CertPool, now time.Time) (*x509.Certificate, error) {
	if roots == nil {
		return nil, fmt.Errorf("%w: no CA configured to verify against", ErrCertUntrusted)
	}
	if len(ders) == 0 {
		return nil, fmt.Errorf("%w: no certificate received", ErrCertInvalid)
	}
	var leaf *x509.Certificate
	inter := x509.NewCertPool()
	for i, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: CERT payload %d: %v", ErrCertInvalid, i+1, err)
		}
		if i == 0 {
			leaf = c
		} else {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, classifyVerifyError(leaf, err)
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return nil, fmt.Errorf("%w: %q: Key Usage has neither digitalSignature nor nonRepudiation", ErrCertUsage, leaf.Subject.String())
	}
	return leaf, nil
}

func classifyVerifyError(leaf *x509.Certificate, err error) error {
	subject := leaf.Subject.String()
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return fmt.Errorf("%w: %q: %v", ErrCertUntrusted, subject, err)
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return fmt.Errorf("%w: %q: %v", ErrCertExpired, subject, err)
	}
	return fmt.Errorf("%w: %q: %v", ErrCertInvalid, subject, err)
}

// Identity is the content of an IDi or IDr payload (RFC 7296 §3.5): its ID
// Type and Identification Data (four octets for ID_IPV4_ADDR, sixteen for
// ID_IPV6_ADDR, the name without terminator for ID_FQDN and
// ID_RFC822_ADDR, DER for ID_DER_ASN1_DN, opaque for ID_KEY_ID).
type Identity struct {
	Type IDType
	Data []byte
}

// PayloadBody is the ID payload after its generic header: ID Type, three
// reserved zero octets, Identification Data. It is RestOfInitIDPayload (or
// RestOfRespIDPayload) of RFC 7296 §2.15 for an ID we send; for a received
// ID, use the octets as received.
func (id Identity) PayloadBody() []byte {
	out := make([]byte, 4, 4+len(id.Data))
	out[0] = byte(id.Type)
	return append(out, id.Data...)
}

// Equal reports whether two identities are the same type and data (DNs
// compared as parsed names, FQDNs and e-mail addresses without regard to
// case).
func (id Identity) Equal(o Identity) bool {
	if id.Type != o.Type {
		return false
	}
	switch id.Type {
	case IDFQDN, IDRFC822Addr:
		return strings.EqualFold(strings.TrimSuffix(string(id.Data), "."), strings.TrimSuffix(string(o.Data), "."))
	case IDDERASN1DN:
		return dnEqual(id.Data, o.Data)
	}
	return bytes.Equal(id.Data, o.Data)
}

// String renders the identity as ParseIdentity reads it.
func (id Identity) String() string {
	switch id.Type {
	case IDIPv4Addr, IDIPv6Addr:
		if a, ok := netip.AddrFromSlice(id.Data); ok && (len(id.Data) == 4) == (id.Type == IDIPv4Addr) {
			return a.String()
		}
	case IDFQDN, IDRFC822Addr:
		s := string(id.Data)
		if p, err := ParseIdentity(s); err == nil && p.Equal(id) {
			return s
		}
		if p, err := ParseIdentity("@" + s); id.Type == IDFQDN && err == nil && p.Equal(id) {
			return "@" + s // a name that would read as an address or a DN
		}
	case IDDERASN1DN:
		if s, err := dnString(id.Data); err == nil {
			return s
		}
	case IDKeyID:
		return "@#" + hex.EncodeToString(id.Data)
	}
	return fmt.Sprintf("%s:%x", id.Type, id.Data)
}

// ParseIdentity reads an identity written as in strongSwan's swanctl.conf
// "id": an IPv4 or IPv6 address gives ID_IPV4_ADDR or ID_IPV6_ADDR;
// "@#" followed by hex gives ID_KEY_ID; a leading "@" forces ID_FQDN
// ("@vpn.example.org"); a string with "=" is a distinguished name in the
// order written ("C=CH, O=Example, CN=vpn.example.org"), giving
// ID_DER_ASN1_DN; a string with "@" is ID_RFC822_ADDR; anything else is
// ID_FQDN.
func ParseIdentity(s string) (Identity, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Identity{}, errors.New("ikecrypto: identity: empty")
	case !utf8.ValidString(s):
		return Identity{}, fmt.Errorf("ikecrypto: identity %q: not valid UTF-8", s)
	case strings.HasPrefix(s, "@#"):
		b, err := hex.DecodeString(s[2:])
		if err != nil || len(b) == 0 {
			return Identity{}, fmt.Errorf("ikecrypto: identity %q: key id must be hex after @#", s)
		}
		return Identity{Type: IDKeyID, Data: b}, nil
	case strings.HasPrefix(s, "@"):
		if len(s) == 1 {
			return Identity{}, fmt.Errorf("ikecrypto: identity %q: empty FQDN", s)
		}
		return Identity{Type: IDFQDN, Data: []byte(s[1:])}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		if a.Is4() || a.Is4In6() {
			b := a.Unmap().As4()
			return Identity{Type: IDIPv4Addr, Data: b[:]}, nil
		}
		b := a.As16()
		return Identity{Type: IDIPv6Addr, Data: b[:]}, nil
	}
	if strings.Contains(s, "=") {
		der, err := parseDN(s)
		if err != nil {
			return Identity{}, fmt.Errorf("ikecrypto: identity %q: %w", s, err)
		}
		return Identity{Type: IDDERASN1DN, Data: der}, nil
	}
	if strings.Contains(s, "@") {
		return Identity{Type: IDRFC822Addr, Data: []byte(s)}, nil
	}
	return Identity{Type: IDFQDN, Data: []byte(s)}, nil
}

// MatchIdentity checks that cert names the identity the peer claimed in
// its ID payload: an FQDN among its DNS subject alternative names
// (without regard to case, no wildcard expansion), an IPv4 or IPv6
// address among its IP address SANs, an e-mail address among its e-mail
// SANs, a DN equal to its subject (as DER, or as a parsed name). A KEY_ID
// names no certificate. Failures wrap ErrIdentityMismatch.
func MatchIdentity(cert *x509.Certificate, id Identity) error {
	switch id.Type {
	case IDFQDN:
		name := strings.TrimSuffix(string(id.Data), ".")
		for _, d := range cert.DNSNames {
			if strings.EqualFold(strings.TrimSuffix(d, "."), name) {
				return nil
			}
		}
		return fmt.Errorf("%w: FQDN %q is not among the certificate's DNS names %q", ErrIdentityMismatch, name, cert.DNSNames)
	case IDIPv4Addr, IDIPv6Addr:
		want, ok := netip.AddrFromSlice(id.Data)
		if !ok || (id.Type == IDIPv4Addr) != (len(id.Data) == 4) {
			return fmt.Errorf("%w: %s of %d octets is not an address", ErrIdentityMismatch, id.Type, len(id.Data))
		}
		for _, ip := range cert.IPAddresses {
			if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap() == want.Unmap() {
				return nil
			}
		}
		return fmt.Errorf("%w: address %s is not among the certificate's IP addresses %v", ErrIdentityMismatch, want, cert.IPAddresses)
	case IDRFC822Addr:
		for _, e := range cert.EmailAddresses {
			if strings.EqualFold(e, string(id.Data)) {
				return nil
			}
		}
		return fmt.Errorf("%w: e-mail address %q is not among the certificate's %q", ErrIdentityMismatch, id.Data, cert.EmailAddresses)
	case IDDERASN1DN:
		if bytes.Equal(id.Data, cert.RawSubject) || dnEqual(id.Data, cert.RawSubject) {
			return nil
		}
		return fmt.Errorf("%w: DN %q is not the certificate's subject %q", ErrIdentityMismatch, id.String(), cert.Subject.String())
	case IDKeyID:
		return fmt.Errorf("%w: an %s cannot be matched against a certificate", ErrIdentityMismatch, id.Type)
	}
	return fmt.Errorf("%w: unsupported ID type %s", ErrIdentityMismatch, id.Type)
}

var (
	oidEmailAddress    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidDomainComponent = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
)

// dnAttrs maps the attribute names strongSwan writes to their OIDs.
var dnAttrs = []struct {
	name string
	oid  asn1.ObjectIdentifier
}{
	{"C", asn1.ObjectIdentifier{2, 5, 4, 6}},
	{"ST", asn1.ObjectIdentifier{2, 5, 4, 8}},
	{"L", asn1.ObjectIdentifier{2, 5, 4, 7}},
	{"O", asn1.ObjectIdentifier{2, 5, 4, 10}},
	{"OU", asn1.ObjectIdentifier{2, 5, 4, 11}},
	{"CN", asn1.ObjectIdentifier{2, 5, 4, 3}},
	{"SN", asn1.ObjectIdentifier{2, 5, 4, 5}}, // serialNumber, as in strongSwan
	{"serialNumber", asn1.ObjectIdentifier{2, 5, 4, 5}},
	{"street", asn1.ObjectIdentifier{2, 5, 4, 9}},
	{"postalCode", asn1.ObjectIdentifier{2, 5, 4, 17}},
	{"DC", oidDomainComponent},
	{"UID", asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}},
	{"E", oidEmailAddress},
}

// parseDN turns "C=CH, O=Example, CN=host" into the DER of a Name with one
// attribute per RDN, in the order written. "\," escapes a comma.
func parseDN(s string) ([]byte, error) {
	var seq pkix.RDNSequence
	for _, part := range splitDN(s) {
		name, value, ok := strings.Cut(part, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || value == "" {
			return nil, fmt.Errorf("distinguished name part %q is not TYPE=value", part)
		}
		var oid asn1.ObjectIdentifier
		for _, a := range dnAttrs {
			if strings.EqualFold(a.name, name) || (a.name == "E" && strings.EqualFold(name, "emailAddress")) {
				oid = a.oid
				break
			}
		}
		if oid == nil {
			return nil, fmt.Errorf("unknown attribute type %q in distinguished name (known: C, ST, L, O, OU, CN, SN, serialNumber, street, postalCode, DC, UID, E)", name)
		}
		var v any = value
		if oid.Equal(oidEmailAddress) || oid.Equal(oidDomainComponent) {
			for _, r := range value {
				if r > unicode.MaxASCII {
					return nil, fmt.Errorf("%s=%q: an IA5String takes ASCII only", name, value)
				}
			}
			// RFC 5280 §4.1.2.6 and RFC 4519 §2.4: IA5String.
			v = asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte(value)}
		}
		seq = append(seq, pkix.RelativeDistinguishedNameSET{{Type: oid, Value: v}})
	}
	return asn1.Marshal(seq)
}

func splitDN(s string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case s[i] == ',':
			if strings.TrimSpace(cur.String()) != "" {
				parts = append(parts, cur.String())
			}
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		parts = append(parts, cur.String())
	}
	return parts
}

// dnEqual compares two DER names attribute by attribute, values as text
// without regard to case (RFC 5280 §7.1 asks for more, caseIgnoreMatch with
// whitespace folding; this is what strongSwan's DN comparison does too).
func dnEqual(a, b []byte) bool {
	var ra, rb pkix.RDNSequence
	if rest, err := asn1.Unmarshal(a, &ra); err != nil || len(rest) != 0 {
		return false
	}
	if rest, err := asn1.Unmarshal(b, &rb); err != nil || len(rest) != 0 {
		return false
	}
	if len(ra) != len(rb) {
		return false
	}
	for i := range ra {
		if len(ra[i]) != len(rb[i]) {
			return false
		}
		for j := range ra[i] {
			if !ra[i][j].Type.Equal(rb[i][j].Type) ||
				!strings.EqualFold(fmt.Sprint(ra[i][j].Value), fmt.Sprint(rb[i][j].Value)) {
				return false
			}
		}
	}
	return true
}

// dnString renders a DER name in order, as strongSwan prints it.
func dnString(der []byte) (string, error) {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(der, &seq); err != nil || len(rest) != 0 {
		return "", errors.New("malformed name")
	}
	var parts []string
	for _, rdn := range seq {
		for _, atv := range rdn {
			name := atv.Type.String()
			for _, a := range dnAttrs {
				if a.oid.Equal(atv.Type) {
					name = a.name
					break
				}
			}
			v := strings.ReplaceAll(fmt.Sprint(atv.Value), ",", `\,`)
			parts = append(parts, name+"="+v)
		}
	}
	return strings.Join(parts, ", "), nil
}
