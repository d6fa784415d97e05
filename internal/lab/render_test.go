package lab

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rampartnet/rampart/internal/analyze"
	"github.com/rampartnet/rampart/internal/policy"
)

func row(from, to string, port int32, proto string, allowed bool, observed *bool) ProbeRow {
	return ProbeRow{ReachRow: analyze.ReachRow{From: from, To: to, Port: port, Protocol: proto, Allowed: allowed}, Observed: observed}
}

func ptr(b bool) *bool { return &b }

func sampleResult() *ProbeResult {
	return &ProbeResult{
		Probes: []policy.Probe{{Port: 80, Protocol: "TCP"}},
		From:   []string{"x/a", "x/b"},
		To:     []string{"x/a", "x/b"},
		Rows: []ProbeRow{
			row("x/a", "x/a", 80, "TCP", true, ptr(true)),
			row("x/a", "x/b", 80, "TCP", false, ptr(false)),
			row("x/b", "x/a", 80, "TCP", true, ptr(false)),
			row("x/b", "x/b", 80, "TCP", true, nil),
		},
		Why:  map[int]string{2: "egress: e; ingress: i"},
		Took: 1234 * time.Millisecond,
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := sampleResult().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	want := `observed (!: differs)   expected
80/TCP x/a x/b        | x/a x/b
x/a    .   X          | .   X
x/b    X!  -          | .   .
80/TCP: 4 probes, 1 differ
  x/b -> x/a: observed blocked, expected allowed (egress: e; ingress: i)

1 of 4 probes differ from the verdict engine (1.234s)
`
	if b.String() != want {
		t.Errorf("table\n%s\nwant\n%s", b.String(), want)
	}
}

// Matrices too wide for one line go one under the other.
func TestWriteTableStacked(t *testing.T) {
	r := sampleResult()
	long := strings.Repeat("n", 60) + "/pod"
	for i := range r.Rows {
		r.Rows[i].To = strings.Replace(r.Rows[i].To, "x/b", long, 1)
		r.Rows[i].From = strings.Replace(r.Rows[i].From, "x/b", long, 1)
	}
	r.From[1], r.To[1] = long, long
	r.Rows[2].Observed = ptr(true)
	var b bytes.Buffer
	r.WriteTable(&b)
	out := b.String()
	if !strings.Contains(out, "observed (!: differs from expected)\n") || !strings.Contains(out, "\nexpected\n80/TCP") ||
		!strings.Contains(out, "all 4 probes as expected") {
		t.Errorf("stacked table:\n%s", out)
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := sampleResult().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(b.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	// reach's objects, and "observed": null where nothing was probed.
	if len(rows) != 4 || rows[2]["from"] != "x/b" || rows[2]["allowed"] != true || rows[2]["observed"] != false ||
		rows[3]["observed"] != nil || rows[0]["port"] != 80.0 || rows[0]["protocol"] != "TCP" {
		t.Errorf("rows %v", rows)
	}
	if _, ok := rows[3]["observed"]; !ok {
		t.Error("observed left out instead of null")
	}
}

// One source, several probes: a line per probe.
func TestWriteTableOneSource(t *testing.T) {
	r := &ProbeResult{
		Probes: []policy.Probe{{Port: 80, Protocol: "TCP"}, {Port: 53, Protocol: "UDP"}},
		From:   []string{"web/wp"},
		To:     []string{"data/db", "web/wp"},
		Rows: []ProbeRow{
			row("web/wp", "data/db", 53, "UDP", false, ptr(false)),
			row("web/wp", "data/db", 80, "TCP", true, ptr(false)),
			row("web/wp", "web/wp", 53, "UDP", true, ptr(true)),
			row("web/wp", "web/wp", 80, "TCP", true, ptr(true)),
		},
		Why: map[int]string{1: "why"},
	}
	var b bytes.Buffer
	r.WriteTable(&b)
	want := `observed (!: differs)        expected
from web/wp data/db web/wp | data/db web/wp
80/TCP      X!      .      | .       .
53/UDP      X       .      | X       .
from web/wp: 4 probes, 1 differ
  web/wp -> data/db on 80/TCP: observed blocked, expected allowed (why)

1 of 4 probes differ from the verdict engine (0s)
`
	if b.String() != want {
		t.Errorf("table\n%s\nwant\n%s", b.String(), want)
	}
}
