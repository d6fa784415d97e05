package certs

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestCSRName(t *testing.T) {
	k1, k2 := newKey(t, "p256"), newKey(t, "ed25519")
	a, err := CSRName("node-1", k1.Public())
	if err != nil {
		t.Fatal(err)
	}
	again, _ := CSRName("node-1", k1.Public())
	other, _ := CSRName("node-1", k2.Public())
	if a != again || a == other || !strings.HasPrefix(a, "rampart-ipsec-node-1-") || len(a) != len("rampart-ipsec-node-1-")+16 {
		t.Errorf("names %q %q %q: want stable per key, different per key", a, again, other)
	}
	long := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("d", 60)
	n, _ := CSRName(long, k1.Public())
	if msgs := validation.IsDNS1123Subdomain(n); len(msgs) > 0 {
		t.Errorf("name for a 243-character node %q: %v", n, msgs)
	}
}

// TestRequestRefusesEarly: bad arguments fail before any API call (the
// nil client would panic otherwise).
func TestRequestRefusesEarly(t *testing.T) {
	key := newKey(t, "p256")
	for _, c := range []struct {
		node     string
		lifetime time.Duration
		want     string
	}{
		{"Node_1", 0, "node name"},
		{"node-1", time.Minute, "at least 10m"},
	} {
		_, err := Request(context.Background(), nil, c.node, key, c.lifetime)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Request(%q, %v): %v, want %q", c.node, c.lifetime, err, c.want)
		}
	}
}

func TestLabelValue(t *testing.T) {
	long := strings.Repeat("n", 62) + "-x"
	if got := labelValue(long); len(got) > 63 || len(validation.IsValidLabelValue(got)) > 0 {
		t.Errorf("labelValue(%q) = %q: not a label value", long, got)
	}
}
