package ikecrypto

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Suite is one algorithm of each transform type: what an IKE SA or a
// CHILD_SA runs with once negotiation is over (RFC 7296 §2.7, §3.3).
//
// For an IKE SA (Validate): Encr, PRF and DH are required, Integ is
// required unless Encr is an AEAD and must then be IntegNone, ESN is false.
// For an ESP CHILD_SA (ValidateESP): Encr is required, Integ as above, PRF
// is zero, DH is DHNone unless the CHILD_SA uses PFS, and ESN says whether
// it uses extended sequence numbers.
type Suite struct {
	Encr EncrID
	// KeyLen is the cipher key length in bits, the Key Length attribute:
	// 128, 192 or 256 for AES; 0 for ChaCha20-Poly1305, whose key is
	// always 256 bits and which takes no attribute (RFC 7634 §2).
	KeyLen int
	PRF    PRFID
	Integ  IntegID
	DH     DHGroup
	ESN    bool
}

// AEAD reports whether the suite's cipher is a combined-mode algorithm
// that provides integrity itself.
func (s Suite) AEAD() bool { return s.Encr.AEAD() }

// AEAD reports whether e is a combined-mode (AEAD) algorithm.
func (e EncrID) AEAD() bool { return e == EncrAESGCM16 || e == EncrChaCha20Poly1305 }

// Validate reports what makes s unusable for an IKE SA, or nil.
func (s Suite) Validate() error {
	var errs []error
	if err := checkEncr(s.Encr, s.KeyLen); err != nil {
		errs = append(errs, err)
	}
	if s.PRF.Size() == 0 {
		errs = append(errs, fmt.Errorf("ikecrypto: suite: prf: %s is not supported (want PRF_HMAC_SHA2_256, _384 or _512)", s.PRF))
	}
	if err := checkInteg(s.Encr, s.Integ); err != nil {
		errs = append(errs, err)
	}
	if s.DH == DHNone {
		errs = append(errs, errors.New("ikecrypto: suite: dh: an IKE SA needs a Diffie-Hellman group (RFC 7296 §1.2)"))
	} else if err := s.DH.check(); err != nil {
		errs = append(errs, fmt.Errorf("ikecrypto: suite: dh: %w", err))
	}
	if s.ESN {
		errs = append(errs, errors.New("ikecrypto: suite: esn: extended sequence numbers are an ESP transform, not an IKE one"))
	}
	return errors.Join(errs...)
}

// ValidateESP reports what makes s unusable for an ESP CHILD_SA, or nil.
func (s Suite) ValidateESP() error {
	var errs []error
	if err := checkEncr(s.Encr, s.KeyLen); err != nil {
		errs = append(errs, err)
	}
	if s.PRF != 0 {
		errs = append(errs, fmt.Errorf("ikecrypto: suite: prf: ESP has no PRF transform, got %s", s.PRF))
	}
	if err := checkInteg(s.Encr, s.Integ); err != nil {
		errs = append(errs, err)
	}
	if s.DH != DHNone {
		if err := s.DH.check(); err != nil {
			errs = append(errs, fmt.Errorf("ikecrypto: suite: dh (pfs): %w", err))
		}
	}
	return errors.Join(errs...)
}

func checkEncr(e EncrID, keyLen int) error {
	switch e {
	case EncrAESCBC, EncrAESGCM16:
		switch keyLen {
		case 128, 192, 256:
			return nil
		}
		return fmt.Errorf("ikecrypto: suite: encr: %s takes a key length of 128, 192 or 256 bits, got %d", e, keyLen)
	case EncrChaCha20Poly1305:
		if keyLen != 0 {
			return fmt.Errorf("ikecrypto: suite: encr: %s has a fixed 256-bit key and no key length attribute (RFC 7634 §2), got %d", e, keyLen)
		}
		return nil
	}
	return fmt.Errorf("ikecrypto: suite: encr: %s is not supported (want ENCR_AES_GCM_16, ENCR_CHACHA20_POLY1305 or ENCR_AES_CBC)", e)
}

func checkInteg(e EncrID, i IntegID) error {
	if e.AEAD() {
		if i != IntegNone {
			return fmt.Errorf("ikecrypto: suite: integ: %s is an AEAD and takes no integrity algorithm, got %s (RFC 5282 §8)", e, i)
		}
		return nil
	}
	if i.KeyLen() == 0 {
		if i == IntegNone {
			return fmt.Errorf("ikecrypto: suite: integ: %s needs an integrity algorithm (AUTH_HMAC_SHA2_256_128, _384_192 or _512_256)", e)
		}
		return fmt.Errorf("ikecrypto: suite: integ: %s is not supported (want AUTH_HMAC_SHA2_256_128, _384_192 or _512_256)", i)
	}
	return nil
}

// EncrKeyLen is the length in octets of the keying material one direction
// of the cipher takes from prf+: SK_ei or SK_er for IKE, or an encryption
// key of a CHILD_SA's KEYMAT. For the AEADs it includes the 4-octet salt
// (RFC 5282 §7.1 for AES-GCM in IKE, RFC 4106 §8.1 in ESP, RFC 7634 §4 for
// ChaCha20-Poly1305 in both). 0 for an unsupported cipher.
func (s Suite) EncrKeyLen() int {
	switch s.Encr {
	case EncrAESCBC:
		return s.KeyLen / 8
	case EncrAESGCM16:
		return s.KeyLen/8 + saltLen
	case EncrChaCha20Poly1305:
		return chachaKeyLen + saltLen
	}
	return 0
}

// IntegKeyLen is the length in octets of SK_ai / SK_ar or of a CHILD_SA
// integrity key: 0 with an AEAD.
func (s Suite) IntegKeyLen() int {
	if s.AEAD() {
		return 0
	}
	return s.Integ.KeyLen()
}

// KeyLen is the key length in octets of the integrity algorithm: the
// length of the HMAC's hash output (RFC 4868 §2.1.1). 0 if unsupported.
func (i IntegID) KeyLen() int {
	switch i {
	case IntegHMACSHA256128:
		return 32
	case IntegHMACSHA384192:
		return 48
	case IntegHMACSHA512256:
		return 64
	}
	return 0
}

// ICVLen is the length in octets of the truncated HMAC the algorithm puts
// on the wire (RFC 4868 §2.3): half the hash output.
func (i IntegID) ICVLen() int { return i.KeyLen() / 2 }

// String renders the suite in strongSwan's proposal syntax, for example
// "aes256gcm16-prfsha256-x25519" or "aes128-sha256-ecp256-esn". A PRF that
// equals the integrity algorithm's hash is written as its own "prf" token
// all the same, so the string always parses back to the same suite.
func (s Suite) String() string {
	var tok []string
	tok = append(tok, encrToken(s.Encr, s.KeyLen))
	if s.Integ != IntegNone {
		tok = append(tok, integToken(s.Integ))
	}
	if s.PRF != 0 {
		tok = append(tok, prfToken(s.PRF))
	}
	if s.DH != DHNone {
		tok = append(tok, dhToken(s.DH))
	}
	if s.ESN {
		tok = append(tok, "esn")
	}
	return strings.Join(tok, "-")
}

// EncrAlg is an encryption transform with its key length attribute (in
// bits; 0 when the algorithm takes none).
type EncrAlg struct {
	ID     EncrID
	KeyLen int
}

// Proposal is one IKEv2 proposal (RFC 7296 §3.3.1): for each transform
// type, the algorithms acceptable in it, most preferred first. Any one
// algorithm of each type may be combined with any of the others. An empty
// list means the proposal has no transform of that type. Which protocol
// (IKE or ESP) the proposal is for, its number and its SPI belong to the
// SA payload, not to this type.
type Proposal struct {
	Encr  []EncrAlg
	PRF   []PRFID
	Integ []IntegID
	DH    []DHGroup
	ESN   []ESNID
}

// Transform is one transform substructure of a proposal, in the form an
// SA payload codec reads and writes (RFC 7296 §3.3.2, §3.3.5).
type Transform struct {
	Type TransformType
	ID   uint16
	// KeyLen is the Key Length attribute in bits, 0 when absent.
	KeyLen int
}

// Transforms lists p's transforms in the order RFC 7296 §3.3.2 uses:
// ENCR, PRF, INTEG, DH, ESN.
func (p Proposal) Transforms() []Transform {
	var ts []Transform
	for _, e := range p.Encr {
		ts = append(ts, Transform{Type: TransformENCR, ID: uint16(e.ID), KeyLen: e.KeyLen})
	}
	for _, f := range p.PRF {
		ts = append(ts, Transform{Type: TransformPRF, ID: uint16(f)})
	}
	for _, i := range p.Integ {
		ts = append(ts, Transform{Type: TransformINTEG, ID: uint16(i)})
	}
	for _, g := range p.DH {
		ts = append(ts, Transform{Type: TransformDH, ID: uint16(g)})
	}
	for _, n := range p.ESN {
		ts = append(ts, Transform{Type: TransformESN, ID: uint16(n)})
	}
	return ts
}

// ProposalFromTransforms collects received transforms into a Proposal.
// Algorithms this package does not implement are kept (they simply never
// match in SelectIKE or SelectESP). A transform type it does not know makes
// the whole proposal unacceptable, as RFC 7296 §3.3.6 requires, and is
// reported as an error; the caller goes on with the peer's next proposal.
func ProposalFromTransforms(ts []Transform) (Proposal, error) {
	var p Proposal
	for _, t := range ts {
		switch t.Type {
		case TransformENCR:
			kl := t.KeyLen
			if EncrID(t.ID) == EncrChaCha20Poly1305 && kl == 256 {
				// RFC 7634 §2 forbids sending the attribute; a peer that
				// sends the only possible value anyway means no harm.
				kl = 0
			}
			p.Encr = append(p.Encr, EncrAlg{ID: EncrID(t.ID), KeyLen: kl})
		case TransformPRF:
			p.PRF = append(p.PRF, PRFID(t.ID))
		case TransformINTEG:
			p.Integ = append(p.Integ, IntegID(t.ID))
		case TransformDH:
			p.DH = append(p.DH, DHGroup(t.ID))
		case TransformESN:
			p.ESN = append(p.ESN, ESNID(t.ID))
		default:
			return Proposal{}, fmt.Errorf("ikecrypto: proposal: unknown transform type %d (RFC 7296 §3.3.6: the proposal must be rejected)", t.Type)
		}
	}
	return p, nil
}

// IKEProposal is the single-choice proposal that carries s in an IKE SA
// payload: what a responder sends back, or an initiator offers for one
// suite.
func (s Suite) IKEProposal() Proposal {
	p := Proposal{Encr: []EncrAlg{{s.Encr, s.KeyLen}}, PRF: []PRFID{s.PRF}, DH: []DHGroup{s.DH}}
	if s.Integ != IntegNone {
		p.Integ = []IntegID{s.Integ}
	}
	return p
}

// ESPProposal is the single-choice proposal that carries s in an ESP SA
// payload. It always has an ESN transform (RFC 7296 §3.3.3 makes it
// mandatory for ESP) and a DH transform only for PFS.
func (s Suite) ESPProposal() Proposal {
	p := Proposal{Encr: []EncrAlg{{s.Encr, s.KeyLen}}, ESN: []ESNID{ESNNo}}
	if s.ESN {
		p.ESN = []ESNID{ESNYes}
	}
	if s.Integ != IntegNone {
		p.Integ = []IntegID{s.Integ}
	}
	if s.DH != DHNone {
		p.DH = []DHGroup{s.DH}
	}
	return p
}

// String renders p in strongSwan's proposal syntax: all algorithms of
// each type joined with "-".
func (p Proposal) String() string {
	var tok []string
	for _, e := range p.Encr {
		tok = append(tok, encrToken(e.ID, e.KeyLen))
	}
	for _, i := range p.Integ {
		tok = append(tok, integToken(i))
	}
	for _, f := range p.PRF {
		tok = append(tok, prfToken(f))
	}
	for _, g := range p.DH {
		tok = append(tok, dhToken(g))
	}
	for _, n := range p.ESN {
		if n == ESNYes {
			tok = append(tok, "esn")
		} else {
			tok = append(tok, "noesn")
		}
	}
	return strings.Join(tok, "-")
}

// ErrNoProposalChosen means no offered proposal was acceptable; the
// responder answers with the NO_PROPOSAL_CHOSEN notification (RFC 7296
// §3.10.1).
var ErrNoProposalChosen = errors.New("ikecrypto: no proposal chosen")

// SelectIKE chooses the IKE SA suite as a responder: the first of our
// proposals (local, in our order of preference) that one of the peer's
// proposals (offered, as received) allows, taking within each transform
// type our most preferred algorithm that the peer also lists. It returns
// the suite and the index in offered of the proposal it came from, whose
// Proposal Num the reply must carry (RFC 7296 §3.3.1). Preferring our own
// order is what strongSwan does by default; the peer cannot downgrade us
// below what we configured. An initiator checks the responder's reply with
// AcceptIKEReply.
func SelectIKE(local, offered []Proposal) (Suite, int, error) {
	for _, l := range local {
		for j, o := range offered {
			if s, ok := chooseIKE(l, o); ok {
				return s, j, nil
			}
		}
	}
	return Suite{}, -1, ErrNoProposalChosen
}

// SelectESP chooses a CHILD_SA suite like SelectIKE. pfs says whether the
// exchange carries a KE payload: false in IKE_AUTH, where DH transforms
// are ignored and the suite's DH is DHNone (RFC 7296 §1.2: the SA offer
// there cannot have a DH group other than NONE), true in CREATE_CHILD_SA,
// where the groups must match, a proposal without a DH transform meaning
// "NONE" (no PFS).
func SelectESP(local, offered []Proposal, pfs bool) (Suite, int, error) {
	for _, l := range local {
		for j, o := range offered {
			if s, ok := chooseESP(l, o, pfs); ok {
				return s, j, nil
			}
		}
	}
	return Suite{}, -1, ErrNoProposalChosen
}

// AcceptIKEReply checks the responder's SA payload as the initiator: it
// must hold a single proposal (the caller checks that) with exactly one
// transform of each type (RFC 7296 §3.3.6: "the responder MUST select a
// single transform of each type"), forming a suite one of the proposals we
// offered allows. The error is ErrNoProposalChosen wrapped with the reason.
func AcceptIKEReply(offered []Proposal, reply Proposal) (Suite, error) {
	if err := reply.singleChoice(); err != nil {
		return Suite{}, err
	}
	s, _, err := SelectIKE(offered, []Proposal{reply})
	if err != nil {
		return Suite{}, fmt.Errorf("%w: the responder chose %s, which we did not offer", ErrNoProposalChosen, reply)
	}
	return s, nil
}

// AcceptESPReply is AcceptIKEReply for a CHILD_SA's SA payload; pfs is as
// for SelectESP.
func AcceptESPReply(offered []Proposal, reply Proposal, pfs bool) (Suite, error) {
	if err := reply.singleChoice(); err != nil {
		return Suite{}, err
	}
	s, _, err := SelectESP(offered, []Proposal{reply}, pfs)
	if err != nil {
		return Suite{}, fmt.Errorf("%w: the responder chose %s, which we did not offer", ErrNoProposalChosen, reply)
	}
	return s, nil
}

func (p Proposal) singleChoice() error {
	if len(p.Encr) != 1 || len(p.PRF) > 1 || len(p.Integ) > 1 || len(p.DH) > 1 || len(p.ESN) > 1 {
		return fmt.Errorf("%w: the responder's proposal %s does not have exactly one transform of each type (RFC 7296 §3.3.6)", ErrNoProposalChosen, p)
	}
	return nil
}

func chooseIKE(l, o Proposal) (Suite, bool) {
	for _, e := range l.Encr {
		if !slices.Contains(o.Encr, e) {
			continue
		}
		s := Suite{Encr: e.ID, KeyLen: e.KeyLen}
		var ok bool
		if s.PRF, ok = first(l.PRF, o.PRF); !ok {
			return Suite{}, false
		}
		if s.DH, ok = first(l.DH, o.DH); !ok {
			return Suite{}, false
		}
		if !e.ID.AEAD() {
			if s.Integ, ok = first(l.Integ, o.Integ); !ok {
				continue
			}
		} else if !noneOnly(o.Integ) {
			// RFC 5282 §8: a proposal pairing an AEAD with an integrity
			// algorithm other than NONE is malformed.
			continue
		}
		if s.Validate() == nil {
			return s, true
		}
	}
	return Suite{}, false
}

func chooseESP(l, o Proposal, pfs bool) (Suite, bool) {
	for _, e := range l.Encr {
		if !slices.Contains(o.Encr, e) {
			continue
		}
		s := Suite{Encr: e.ID, KeyLen: e.KeyLen}
		var ok bool
		if !e.ID.AEAD() {
			if s.Integ, ok = first(l.Integ, o.Integ); !ok {
				continue
			}
		} else if !noneOnly(o.Integ) {
			continue
		}
		if pfs {
			if s.DH, ok = first(orNone(l.DH, DHNone), orNone(o.DH, DHNone)); !ok {
				return Suite{}, false
			}
		}
		esn, ok := first(orNone(l.ESN, ESNNo), orNone(o.ESN, ESNNo))
		if !ok {
			return Suite{}, false
		}
		s.ESN = esn == ESNYes
		if s.ValidateESP() == nil {
			return s, true
		}
	}
	return Suite{}, false
}

// first returns the first element of ours that theirs also holds.
func first[T comparable](ours, theirs []T) (T, bool) {
	for _, x := range ours {
		if slices.Contains(theirs, x) {
			return x, true
		}
	}
	var zero T
	return zero, false
}

// orNone treats a missing transform type as the single value none.
func orNone[T comparable](l []T, none T) []T {
	if len(l) == 0 {
		return []T{none}
	}
	return l
}

func noneOnly(l []IntegID) bool {
	for _, i := range l {
		if i != IntegNone {
			return false
		}
	}
	return true
}

// defaultIKE is what an IKE SA offers and accepts when the
// configuration names no proposals, strongest first, in strongSwan's
// syntax: AES-256-GCM with X25519, then with the NIST curves, then
// ChaCha20-Poly1305, then AES-CBC with HMAC for peers without AEAD support
// in IKE. It follows RFC 8247 §2-§3 (AES-GCM and ChaCha20-Poly1305 as
// the AEADs, SHA-2 PRFs, groups 19/20/21/31) and leaves out everything
// RFC 8247 discourages (3DES, SHA-1, MD5, MODP below 3072 bits) and MODP
// altogether.
var defaultIKE = []string{
	"aes256gcm16-prfsha256-x25519",
	"aes256gcm16-prfsha256-ecp256",
	"aes256gcm16-prfsha384-ecp384",
	"aes256gcm16-prfsha512-ecp521",
	"aes128gcm16-prfsha256-x25519",
	"aes128gcm16-prfsha256-ecp256",
	"chacha20poly1305-prfsha256-x25519",
	"aes256-sha256-x25519",
	"aes256-sha256-ecp256",
	"aes256-sha384-ecp384",
}

// defaultESP is the ESP counterpart of defaultIKE, limited to what
// ipsec/esp implements (AES-CBC only with HMAC-SHA-256-128).
var defaultESP = []string{
	"aes256gcm16",
	"aes128gcm16",
	"chacha20poly1305",
	"aes256-sha256",
	"aes128-sha256",
}

// DefaultIKEProposals returns a fresh copy of the default IKE proposals
// (see defaultIKE): "aes256gcm16-prfsha256-x25519" first.
func DefaultIKEProposals() []Proposal {
	return mustParse(defaultIKE, ParseIKEProposals)
}

// DefaultESPProposals returns a fresh copy of the default ESP proposals:
// "aes256gcm16", "aes128gcm16", "chacha20poly1305", "aes256-sha256",
// "aes128-sha256", all without PFS and without ESN.
func DefaultESPProposals() []Proposal {
	return mustParse(defaultESP, ParseESPProposals)
}

func mustParse(l []string, parse func(string) ([]Proposal, error)) []Proposal {
	ps, err := parse(strings.Join(l, ","))
	if err != nil {
		panic(err) // the defaults are constants; the tests parse them
	}
	return ps
}

// ParseIKEProposals parses an IKE proposal list in strongSwan's syntax
// (swanctl.conf "proposals"): comma-separated proposals, each a
// "-"-separated list of algorithm tokens, for example
// "aes256gcm16-prfsha256-x25519, aes256-sha256-ecp256". The word
// "default" stands for DefaultIKEProposals.
//
// As in strongSwan, an integrity token (sha256, sha384, sha512) in a
// proposal without a prf token also proposes the matching PRF, and a
// proposal mixing AEAD and non-AEAD ciphers becomes two proposals (the
// AEAD one first), because an AEAD cannot be combined with an integrity
// algorithm; in the AEAD half, integrity tokens only give PRFs.
//
// Tokens: aes128 aes192 aes256 (AES-CBC), aes128gcm16 aes192gcm16
// aes256gcm16 (also ...gcm128), chacha20poly1305, sha256 sha384 sha512
// (also sha2_256 ...), prfsha256 prfsha384 prfsha512, ecp256 ecp384
// ecp521 x25519 (also curve25519). MODP groups and legacy algorithms
// (3des, sha1, md5, ...) are refused by name.
func ParseIKEProposals(s string) ([]Proposal, error) {
	return parseProposals(s, true)
}

// ParseESPProposals parses an ESP proposal list in strongSwan's syntax
// (swanctl.conf "esp_proposals"), for example "aes256gcm16",
// "aes128gcm16-x25519" (with a PFS group) or "aes256-sha256". Tokens are
// those of ParseIKEProposals without the prf ones, plus "esn" and "noesn"
// (without either, the proposal offers no ESN). "default" stands for
// DefaultESPProposals.
func ParseESPProposals(s string) ([]Proposal, error) {
	return parseProposals(s, false)
}

func parseProposals(s string, ike bool) ([]Proposal, error) {
	var out []Proposal
	for i, item := range strings.Split(s, ",") {
		item = strings.ToLower(strings.TrimSpace(item))
		if item == "" {
			return nil, fmt.Errorf("ikecrypto: proposal %d of %q: empty", i+1, s)
		}
		if item == "default" {
			if ike {
				out = append(out, DefaultIKEProposals()...)
			} else {
				out = append(out, DefaultESPProposals()...)
			}
			continue
		}
		ps, err := parseProposal(item, ike)
		if err != nil {
			return nil, fmt.Errorf("ikecrypto: proposal %q: %w", item, err)
		}
		out = append(out, ps...)
	}
	return out, nil
}

func parseProposal(item string, ike bool) ([]Proposal, error) {
	var aead, classic Proposal
	var integ []IntegID
	var prf []PRFID
	var dh []DHGroup
	var esn []ESNID
	for _, tok := range strings.Split(item, "-") {
		if e, ok := encrTokens[tok]; ok {
			if e.ID.AEAD() {
				aead.Encr = appendNew(aead.Encr, e)
			} else {
				classic.Encr = appendNew(classic.Encr, e)
			}
			continue
		}
		if i, ok := integTokens[tok]; ok {
			integ = appendNew(integ, i)
			continue
		}
		if f, ok := prfTokens[tok]; ok {
			if !ike {
				return nil, fmt.Errorf("%q: ESP has no PRF", tok)
			}
			prf = appendNew(prf, f)
			continue
		}
		if g, ok := dhTokens[tok]; ok {
			dh = appendNew(dh, g)
			continue
		}
		if tok == "esn" || tok == "noesn" {
			if ike {
				return nil, fmt.Errorf("%q: ESN is an ESP transform", tok)
			}
			n := ESNNo
			if tok == "esn" {
				n = ESNYes
			}
			esn = appendNew(esn, n)
			continue
		}
		if why, ok := refusedTokens(tok); ok {
			return nil, fmt.Errorf("%q: %s", tok, why)
		}
		return nil, fmt.Errorf("unknown algorithm %q", tok)
	}
	if len(aead.Encr)+len(classic.Encr) == 0 {
		return nil, errors.New("no encryption algorithm")
	}
	if ike {
		if len(prf) == 0 {
			// strongSwan: "if no PRF is configured, the algorithms
			// defined for integrity are proposed as PRF".
			for _, i := range integ {
				prf = appendNew(prf, integPRF[i])
			}
		}
		if len(prf) == 0 {
			return nil, errors.New("no PRF (add prfsha256, prfsha384 or prfsha512)")
		}
		if len(dh) == 0 {
			return nil, errors.New("no Diffie-Hellman group (add x25519, ecp256, ecp384 or ecp521)")
		}
	}
	var out []Proposal
	if len(aead.Encr) > 0 {
		aead.PRF, aead.DH, aead.ESN = prf, dh, esn
		out = append(out, aead)
	}
	if len(classic.Encr) > 0 {
		if len(integ) == 0 {
			return nil, fmt.Errorf("%s needs an integrity algorithm (add sha256, sha384 or sha512)", encrToken(classic.Encr[0].ID, classic.Encr[0].KeyLen))
		}
		classic.PRF, classic.Integ, classic.DH, classic.ESN = prf, integ, dh, esn
		out = append(out, classic)
	}
	return out, nil
}

func appendNew[T comparable](l []T, x T) []T {
	if slices.Contains(l, x) {
		return l
	}
	return append(l, x)
}

var encrTokens = map[string]EncrAlg{
	"aes":              {EncrAESCBC, 128},
	"aes128":           {EncrAESCBC, 128},
	"aes192":           {EncrAESCBC, 192},
	"aes256":           {EncrAESCBC, 256},
	"aes128gcm16":      {EncrAESGCM16, 128},
	"aes192gcm16":      {EncrAESGCM16, 192},
	"aes256gcm16":      {EncrAESGCM16, 256},
	"aes128gcm128":     {EncrAESGCM16, 128},
	"aes192gcm128":     {EncrAESGCM16, 192},
	"aes256gcm128":     {EncrAESGCM16, 256},
	"chacha20poly1305": {EncrChaCha20Poly1305, 0},
}

var integTokens = map[string]IntegID{
	"sha256": IntegHMACSHA256128, "sha2_256": IntegHMACSHA256128,
	"sha384": IntegHMACSHA384192, "sha2_384": IntegHMACSHA384192,
	"sha512": IntegHMACSHA512256, "sha2_512": IntegHMACSHA512256,
}

// integPRF is the PRF with the integrity algorithm's hash.
var integPRF = map[IntegID]PRFID{
	IntegHMACSHA256128: PRFHMACSHA256,
	IntegHMACSHA384192: PRFHMACSHA384,
	IntegHMACSHA512256: PRFHMACSHA512,
}

var prfTokens = map[string]PRFID{
	"prfsha256": PRFHMACSHA256, "prfsha2_256": PRFHMACSHA256,
	"prfsha384": PRFHMACSHA384, "prfsha2_384": PRFHMACSHA384,
	"prfsha512": PRFHMACSHA512, "prfsha2_512": PRFHMACSHA512,
}

var dhTokens = map[string]DHGroup{
	"ecp256": DHECP256, "ecp384": DHECP384, "ecp521": DHECP521,
	"x25519": DHCurve25519, "curve25519": DHCurve25519,
}

// refusedTokens explains tokens of strongSwan's proposal syntax that we
// recognize and refuse, so that the error says why rather than "unknown".
func refusedTokens(tok string) (string, bool) {
	has := func(prefixes ...string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(tok, p) {
				return true
			}
		}
		return false
	}
	switch {
	case has("modp"):
		return "MODP groups are not supported (Go has no constant-time modular exponentiation); use x25519 or ecp256", true
	case has("ecp", "brainpool", "x448", "curve448", "ntru", "newhope", "mlkem", "ke"):
		return "key exchange method not supported; use x25519, ecp256, ecp384 or ecp521", true
	case has("aes", "chacha", "3des", "des", "blowfish", "cast", "null", "camellia", "serpent", "twofish"):
		return "cipher not supported; use aes256gcm16, aes128gcm16, chacha20poly1305, or aes256 with sha256", true
	case has("sha", "md5", "aesxcbc", "aescmac", "camelliaxcbc", "prf"):
		return "integrity or PRF algorithm not supported; use sha256, sha384 or sha512 (prfsha256, prfsha384, prfsha512)", true
	}
	return "", false
}

func encrToken(e EncrID, keyLen int) string {
	switch e {
	case EncrAESCBC:
		return fmt.Sprintf("aes%d", keyLen)
	case EncrAESGCM16:
		return fmt.Sprintf("aes%dgcm16", keyLen)
	case EncrChaCha20Poly1305:
		return "chacha20poly1305"
	}
	return fmt.Sprintf("encr%d", uint16(e))
}

func integToken(i IntegID) string {
	switch i {
	case IntegHMACSHA256128:
		return "sha256"
	case IntegHMACSHA384192:
		return "sha384"
	case IntegHMACSHA512256:
		return "sha512"
	}
	return fmt.Sprintf("integ%d", uint16(i))
}

func prfToken(p PRFID) string {
	switch p {
	case PRFHMACSHA256:
		return "prfsha256"
	case PRFHMACSHA384:
		return "prfsha384"
	case PRFHMACSHA512:
		return "prfsha512"
	}
	return fmt.Sprintf("prf%d", uint16(p))
}

func dhToken(g DHGroup) string {
	switch g {
	case DHECP256:
		return "ecp256"
	case DHECP384:
		return "ecp384"
	case DHECP521:
		return "ecp521"
	case DHCurve25519:
		return "x25519"
	}
	if name, ok := modpGroups[g]; ok {
		return name
	}
	return fmt.Sprintf("dh%d", uint16(g))
}
