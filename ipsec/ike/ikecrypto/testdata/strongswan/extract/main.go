// Command extract turns the charon debug logs that ../run.sh captures into
// the test vectors of ../vectors.txt. It reads DIR/scenarios (lines of
// "NAME IKE-PROPOSAL ESP-PROPOSAL") and DIR/NAME/initiator.log and
// DIR/NAME/responder.log, and writes one section per scenario to standard
// output. It only copies values charon printed; it computes nothing but
// consistency checks between them.
//
// Usage: go run ./testdata/strongswan/extract DIR > testdata/strongswan/vectors.txt
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// event is one value charon printed as "LABEL => N bytes @ ADDR" followed
// by a hex dump.
type event struct {
	label string // "SKEYSEED", or "gen NONCE CHUNK_DATA" for encoder rules
	data  []byte
	want  int
}

var (
	lineRE  = regexp.MustCompile(`^(\d+)\[(\w+)\] (.*)$`)
	valueRE = regexp.MustCompile(`^(.*?)\s*=> (\d+) bytes @ 0x[0-9a-f]+$`)
	hexRE   = regexp.MustCompile(`^\s*(\d+): ((?:[0-9A-F]{2} )+)`)
	genRE   = regexp.MustCompile(`^generating payload of type (\w+)$`)
	parseRE = regexp.MustCompile(`^(?:starting parsing a (\w+) payload|parsing (\w+) payload, \d+ bytes left)$`)
	ruleRE  = regexp.MustCompile(`^\s+(?:generating|parsing) rule \d+ (\w+)$`)
)

// thread is the parser state of one charon thread: lines of threads
// interleave in the log.
type thread struct {
	payload string // "gen NONCE", "parse PROPOSAL_SUBSTRUCTURE"
	rule    string // the last rule name
	cur     *event // the value whose hex dump is being read
}

func parseLog(path string) ([]*event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	threads := map[string]*thread{}
	var evs []*event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		t := threads[m[1]]
		if t == nil {
			t = &thread{}
			threads[m[1]] = t
		}
		text := m[3]
		if t.cur != nil {
			if h := hexRE.FindStringSubmatch(text); h != nil {
				off, _ := strconv.Atoi(h[1])
				b, err := hex.DecodeString(strings.ReplaceAll(h[2], " ", ""))
				if err != nil || off != len(t.cur.data) {
					return nil, fmt.Errorf("%s: bad hex dump line %q", path, sc.Text())
				}
				t.cur.data = append(t.cur.data, b...)
				continue
			}
			t.cur = nil
		}
		if v := valueRE.FindStringSubmatch(text); v != nil {
			n, _ := strconv.Atoi(v[2])
			label := strings.TrimSpace(v[1])
			if label == "" {
				label = t.payload + " " + t.rule
			}
			e := &event{label: label, want: n}
			evs = append(evs, e)
			if n > 0 {
				t.cur = e
			}
			continue
		}
		if g := genRE.FindStringSubmatch(text); g != nil {
			t.payload = "gen " + g[1]
		} else if p := parseRE.FindStringSubmatch(text); p != nil {
			t.payload = "parse " + p[1] + p[2]
		} else if r := ruleRE.FindStringSubmatch(text); r != nil {
			t.rule = r[1]
		}
	}
	for _, e := range evs {
		if len(e.data) != e.want {
			return nil, fmt.Errorf("%s: %q: %d octets dumped, %d announced", path, e.label, len(e.data), e.want)
		}
	}
	return evs, sc.Err()
}

// log is the events of one charon.
type log []*event

// nth returns the data of the n-th (from 0) event with label whose data
// is size octets long (any size if size < 0), or nil.
func (l log) nth(label string, n, size int) []byte {
	for _, e := range l {
		if e.label == label && (size < 0 || len(e.data) == size) {
			if n == 0 {
				return e.data
			}
			n--
		}
	}
	return nil
}

type section struct {
	name string
	out  bytes.Buffer
	errs []string
}

func (s *section) put(key string, v []byte) {
	if v == nil {
		s.errs = append(s.errs, "missing "+key)
		return
	}
	fmt.Fprintf(&s.out, "%s = %s\n", key, hex.EncodeToString(v))
}

func (s *section) putList(key string, vs [][]byte) {
	if len(vs) == 0 {
		s.errs = append(s.errs, "missing "+key)
		return
	}
	h := make([]string, len(vs))
	for i, v := range vs {
		h[i] = hex.EncodeToString(v)
	}
	fmt.Fprintf(&s.out, "%s = %s\n", key, strings.Join(h, ","))
}

// RFC 7296 §3.1: the exchange type octet of the IKE header, and the
// IKE_AUTH exchange.
const (
	offExchange = 18
	exchIKEAuth = 35
)

// ikeAuth returns the IKE_AUTH messages the charon received: one, or the
// fragments of one (RFC 7383), without the non-ESP marker.
func ikeAuth(l log) [][]byte {
	var out [][]byte
	for i := 0; ; i++ {
		p := l.nth("received packet", i, -1)
		if p == nil {
			return out
		}
		p = stripMarker(p)
		if len(p) > offExchange && p[offExchange] == exchIKEAuth {
			out = append(out, p)
		}
	}
}

func (s *section) check(ok bool, what string) {
	if !ok {
		s.errs = append(s.errs, "inconsistent: "+what)
	}
}

// stripMarker removes the non-ESP marker of a packet received on port 4500
// (RFC 3948 §2.2).
func stripMarker(p []byte) []byte {
	if len(p) >= 4 && bytes.Equal(p[:4], []byte{0, 0, 0, 0}) {
		return p[4:]
	}
	return p
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func extract(dir, name, ike, esp, auth string) (*section, error) {
	ini, err := parseLog(filepath.Join(dir, name, "initiator.log"))
	if err != nil {
		return nil, err
	}
	res, err := parseLog(filepath.Join(dir, name, "responder.log"))
	if err != nil {
		return nil, err
	}
	I, R := log(ini), log(res)
	s := &section{name: name}
	fmt.Fprintf(&s.out, "[%s]\nike_proposal = %s\nesp_proposal = %s\nauth = %s\n", name, ike, esp, auth)

	// IKE_SA_INIT: the initiator's own nonce is the first one it
	// generates, the responder's the first it parses.
	msg1 := R.nth("received packet", 0, -1)
	msg2 := I.nth("received packet", 0, -1)
	ni := I.nth("gen NONCE CHUNK_DATA", 0, -1)
	nr := I.nth("parse NONCE CHUNK_DATA", 0, -1)
	s.put("msg1", msg1)
	s.put("msg2", msg2)
	s.put("ni", ni)
	s.put("nr", nr)
	if len(msg2) >= 16 {
		s.put("spii", msg2[0:8])
		s.put("spir", msg2[8:16])
	}
	s.check(bytes.Equal(R.nth("parse NONCE CHUNK_DATA", 0, -1), ni), "responder parsed a different Ni")
	s.put("gir", I.nth("shared Diffie Hellman secret", 0, -1))
	s.check(bytes.Equal(I.nth("shared Diffie Hellman secret", 0, -1), R.nth("shared Diffie Hellman secret", 0, -1)), "g^ir differs")
	s.put("skeyseed", I.nth("SKEYSEED", 0, -1))
	for _, k := range []string{"d", "ai", "ar", "ei", "er", "pi", "pr"} {
		v := I.nth("Sk_"+k+" secret", 0, -1)
		if v == nil && (k == "ai" || k == "ar") {
			continue // AEAD: no SK_a
		}
		s.put("sk_"+k, v)
		s.check(bytes.Equal(v, R.nth("Sk_"+k+" secret", 0, -1)), "SK_"+k+" differs")
	}

	// IKE_AUTH: the initiator builds its AUTH first, then verifies the
	// responder's; the responder verifies first, then builds.
	octets := "octets = message + nonce + prf(Sk_px, IDx')"
	s.put("idi", I.nth("IDx'", 0, -1))
	s.put("octets_i", I.nth(octets, 0, -1))
	s.put("idr", I.nth("IDx'", 1, -1))
	s.put("octets_r", I.nth(octets, 1, -1))
	s.check(bytes.HasPrefix(I.nth(octets, 0, -1), msg1), "octets_i does not start with msg1")
	s.check(bytes.HasPrefix(I.nth(octets, 1, -1), msg2), "octets_r does not start with msg2")
	s.check(bytes.Equal(I.nth(octets, 0, -1), R.nth(octets, 0, -1)), "responder verified other octets_i")
	if auth == "psk" {
		authL := "AUTH = prf(prf(secret, keypad), octets)"
		s.put("psk", I.nth("secret", 0, -1))
		s.put("psk_keypad", I.nth("prf(secret, keypad)", 0, -1))
		s.put("auth_i", I.nth(authL, 0, -1))
		s.put("auth_r", I.nth(authL, 1, -1))
		s.check(bytes.Equal(I.nth(authL, 0, -1), R.nth(authL, 0, -1)), "responder verified a different AUTH_i")
		s.check(bytes.Equal(I.nth(authL, 1, -1), R.nth(authL, 1, -1)), "initiator verified a different AUTH_r")
	} else {
		// RFC 7427 signatures: the Authentication Data of the AUTH
		// payloads and the certificates of the CERT payloads, as sent.
		pemCA, err := os.ReadFile(filepath.Join(dir, name, "ca.pem"))
		if err != nil {
			return nil, err
		}
		blk, _ := pem.Decode(pemCA)
		if blk == nil {
			return nil, fmt.Errorf("%s: ca.pem: no PEM block", name)
		}
		s.put("ca", blk.Bytes)
		s.put("cert_i", I.nth("gen CERTIFICATE CHUNK_DATA", 0, -1))
		s.put("cert_r", I.nth("parse CERTIFICATE CHUNK_DATA", 0, -1))
		s.put("auth_i", I.nth("gen AUTH CHUNK_DATA", 0, -1))
		s.put("auth_r", I.nth("parse AUTH CHUNK_DATA", 0, -1))
		s.check(bytes.Equal(I.nth("gen AUTH CHUNK_DATA", 0, -1), R.nth("parse AUTH CHUNK_DATA", 0, -1)), "responder parsed a different AUTH_i")
		s.check(bytes.Equal(I.nth("gen CERTIFICATE CHUNK_DATA", 0, -1), R.nth("parse CERTIFICATE CHUNK_DATA", 0, -1)), "responder parsed a different CERT_i")
	}
	s.putList("ike_auth_req", ikeAuth(R))
	s.putList("ike_auth_resp", ikeAuth(I))

	// First CHILD_SA, keyed from the IKE_SA_INIT nonces.
	s.check(bytes.Equal(I.nth("seed", 0, -1), cat(ni, nr)), "first CHILD_SA seed is not Ni | Nr")
	childKeys(s, I, "child", 0)

	// CHILD_SA rekey with PFS: seed = g^ir | Ni | Nr.
	gir2 := I.nth("DH secret", 0, -1)
	ni2 := I.nth("gen NONCE CHUNK_DATA", 1, -1)
	nr2 := I.nth("parse NONCE CHUNK_DATA", 1, -1)
	s.put("child2_gir", gir2)
	s.put("child2_ni", ni2)
	s.put("child2_nr", nr2)
	s.check(bytes.Equal(I.nth("seed", 1, -1), cat(gir2, ni2, nr2)), "rekeyed CHILD_SA seed is not g^ir | Ni | Nr")
	childKeys(s, I, "child2", 1)

	// IKE SA rekey: new nonces, new SPIs from the proposals' 8-octet SPI
	// fields, new g^ir; SKEYSEED from the old SK_d.
	s.put("rekey_ni", I.nth("gen NONCE CHUNK_DATA", 2, -1))
	s.put("rekey_nr", I.nth("parse NONCE CHUNK_DATA", 2, -1))
	s.put("rekey_spii", I.nth("gen PROPOSAL_SUBSTRUCTURE SPI", 0, 8))
	s.put("rekey_spir", I.nth("parse PROPOSAL_SUBSTRUCTURE SPI", 0, 8))
	s.put("rekey_gir", I.nth("shared Diffie Hellman secret", 1, -1))
	s.put("rekey_skeyseed", I.nth("SKEYSEED", 1, -1))
	for _, k := range []string{"d", "ai", "ar", "ei", "er", "pi", "pr"} {
		v := I.nth("Sk_"+k+" secret", 1, -1)
		if v == nil && (k == "ai" || k == "ar") {
			continue
		}
		s.put("rekey_sk_"+k, v)
		s.check(bytes.Equal(v, R.nth("Sk_"+k+" secret", 1, -1)), "rekeyed SK_"+k+" differs")
	}
	return s, nil
}

func childKeys(s *section, I log, prefix string, n int) {
	s.put(prefix+"_encr_i", I.nth("encryption initiator key", n, -1))
	s.put(prefix+"_encr_r", I.nth("encryption responder key", n, -1))
	if v := I.nth("integrity initiator key", n, -1); v != nil {
		s.put(prefix+"_integ_i", v)
		s.put(prefix+"_integ_r", I.nth("integrity responder key", n, -1))
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: extract DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	list, err := os.ReadFile(filepath.Join(dir, "scenarios"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Print(header)
	failed := false
	for _, line := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			fmt.Fprintf(os.Stderr, "bad scenario line %q\n", line)
			os.Exit(1)
		}
		s, err := extract(dir, f[0], f[1], f[2], f[3])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if len(s.errs) > 0 {
			fmt.Fprintf(os.Stderr, "%s: %s\n", s.name, strings.Join(s.errs, "; "))
			failed = true
		}
		fmt.Println()
		os.Stdout.Write(s.out.Bytes())
	}
	if failed {
		os.Exit(1)
	}
}

const header = `# IKEv2 key derivation and authentication vectors captured from
# strongSwan 5.9.8 (Debian 12) talking to itself: two charons in network
# namespaces, debug log level 4. Made by run.sh and extract/ in this
# directory; see run.sh for how. Every value is what charon printed; the
# initiator ("a.example", 198.18.0.1) started the IKE SA, the CHILD_SA
# rekey (with PFS) and the IKE SA rekey; the responder is "b.example".
#
# Per section: the proposals both sides were configured with and the
# authentication (psk, or the swanctl auth value of an RFC 7427 signature
# scenario); msg1/msg2 the IKE_SA_INIT request/response; ni, nr, spii,
# spir, gir; skeyseed and the SK_* keys (prf+ output, sk_ai/sk_ar only for
# non-AEAD suites); idi/idr the RestOfInitIDPayload/RestOfRespIDPayload;
# octets_i/octets_r the signed octets; auth_i/auth_r the Authentication
# Data of the AUTH payloads (for psk: the PSK MACs, with psk and
# psk_keypad = prf(psk, "Key Pad for IKEv2"); for signatures: length,
# AlgorithmIdentifier and signature, with ca, cert_i and cert_r the DER of
# the CA and of the CERT payloads); ike_auth_req/ike_auth_resp the
# IKE_AUTH messages as received (without the non-ESP marker; the RFC 7383
# fragments, comma-separated, if strongSwan fragmented them); child_* the
# first CHILD_SA's KEYMAT (encr with salt for AEADs); child2_* the rekeyed
# CHILD_SA's (with g^ir, its nonces); rekey_* the rekeyed IKE SA's.
`
