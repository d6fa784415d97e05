package nft

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
)

// Keys are laid out as the kernel compares them: a concatenation pads every
// field to a 4-byte register; addresses and ports in network order, the
// profile (nft's mark) in host order, as the map's value it is compared with.
func TestEncodeKey(t *testing.T) {
	allow := []Type{TypeProfile, TypeIPv4, TypeProto, TypePort}
	key := []Datum{Num(0x01020304), AddrRange(netip.MustParseAddr("198.19.0.0"), netip.MustParseAddr("198.19.0.255")), Num(6), Range(8000, 8080)}
	prof := binaryutil.NativeEndian.PutUint32(0x01020304)
	for _, tc := range []struct {
		name  string
		types []Type
		key   []Datum
		hi    bool
		want  []byte
	}{
		{"allow start", allow, key, false, cat(prof, []byte{198, 19, 0, 0}, []byte{6, 0, 0, 0}, []byte{0x1f, 0x40, 0, 0})},
		{"allow end", allow, key, true, cat(prof, []byte{198, 19, 0, 255}, []byte{6, 0, 0, 0}, []byte{0x1f, 0x90, 0, 0})},
		{"veth . address", []Type{TypeIfname, TypeIPv4}, []Datum{Ifname("rmp0"), Addr(netip.MustParseAddr("198.19.0.2"))}, false,
			cat([]byte("rmp0"), make([]byte, 12), []byte{198, 19, 0, 2})},
		{"one address", []Type{TypeIPv4}, []Datum{Addr(netip.MustParseAddr("198.19.0.2"))}, false, []byte{198, 19, 0, 2}},
		{"map value", []Type{TypeProfile}, []Datum{Num(0x01020304)}, false, prof},
	} {
		if got := encodeKey(tc.types, tc.key, tc.hi); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: got % x, want % x", tc.name, got, tc.want)
		}
	}
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// The allow lookup of the ingress chain: the destination's profile and the
// source's class come from their maps (looked up from a scratch register
// after the key) into the key's first two registers, the packet fields
// follow.
func TestRuleExprsRegisters(t *testing.T) {
	rs, err := Compile(loadModel(t, "testdata/default-deny.yaml"), Node{Name: "node1", Pods: []Pod{{Ref: "alpha/web-1", Veth: "rmp0"}}})
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string]set{}
	for _, s := range rs.Sets {
		sets[s.Name] = set{ir: s, nft: &nftables.Set{Name: s.Name, IsMap: s.IsMap()}}
	}
	exprs, err := ruleExprs(rs.Chain(ChainIngress).Rules[0], sets)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Payload:
			got = append(got, "payload", itoa(e.DestRegister))
		case *expr.Meta:
			got = append(got, "meta", itoa(e.Register))
		case *expr.Lookup:
			if e.IsDestRegSet {
				got = append(got, "map "+e.SetName, itoa(e.SourceRegister)+">"+itoa(e.DestRegister))
			} else {
				got = append(got, "lookup "+e.SetName, itoa(e.SourceRegister))
			}
		case *expr.Verdict:
			got = append(got, "verdict")
		}
	}
	want := "payload 12 map ingress_profile 12>8 payload 12 map pod_class 12>9 meta 10 payload 11 lookup ingress_from_pods 8 verdict"
	if g := strings.Join(got, " "); g != want {
		t.Errorf("got  %s\nwant %s", g, want)
	}
}

func itoa(v uint32) string { return strconv.Itoa(int(v)) }

func TestCheck(t *testing.T) {
	good, err := Compile(loadModel(t, "testdata/named-ports.yaml"), Node{Name: "node1", Pods: []Pod{{Ref: "alpha/web-1", Veth: "rmp0"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := check(good); err != nil {
		t.Fatalf("a compiled ruleset fails the check: %v", err)
	}
	for _, tc := range []struct {
		name string
		set  *Set
		want string
	}{
		{"arity", &Set{Name: "s", Key: []Type{TypeIPv4, TypePort}, Interval: true, Elements: []Element{{Key: []Datum{Num(1)}}}}, "key fields"},
		{"range without interval", &Set{Name: "s", Key: []Type{TypeIPv4}, Elements: []Element{{Key: []Datum{Range(1, 2)}}}}, "without intervals"},
		{"port too big", &Set{Name: "s", Key: []Type{TypeIPv4, TypePort}, Interval: true, Elements: []Element{{Key: []Datum{Num(1), Num(70000)}}}}, "not a range"},
		{"single interval", &Set{Name: "s", Key: []Type{TypeIPv4}, Interval: true}, "concatenation"},
		{"long ifname", &Set{Name: "s", Key: []Type{TypeIfname}, Elements: []Element{{Key: []Datum{Ifname("a-very-long-name")}}}}, "longer than"},
	} {
		rs := &Ruleset{Table: TableName, Sets: []*Set{tc.set}}
		if err := check(rs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
