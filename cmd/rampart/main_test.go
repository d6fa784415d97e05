package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// The CLI's contract: exit codes, and the JSON shape of reach that later
// versions may extend but never rename.
func TestCLI(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"version"}, 0, "rampart "},
		{[]string{"reach", "../../examples/netpol-e2e", "--probe", "80/TCP"}, 0, "x/c    X   .   ."},
		{[]string{"reach", "../../examples/wordpress"}, 1, ""},                       // two examples at once: duplicates
		{[]string{"reach", "../../examples/wordpress", "--skip-invalid"}, 0, "web/"}, // duplicates left out
		{[]string{"reach", "/nonexistent"}, 2, ""},
		{[]string{"reach", "../../examples/netpol-e2e", "--probe", "80/ICMP"}, 2, ""},
		{[]string{"explain", "../../examples/wordpress/hardened", "--from", "web/wordpress", "--to", "data/mysql",
			"--probe", "3306/TCP"}, 0, "ALLOWED"},
		{[]string{"explain", "../../examples/wordpress/hardened", "--from", "web/wordpress", "--to", "payments/api",
			"--probe", "8443/TCP"}, 0, "isolated by payments/api and payments/default-deny; no rule matched"},
		{[]string{"explain", "../../examples/wordpress/hardened", "--from", "web/nope", "--to", "data/mysql"}, 2, ""},
		{[]string{"analyze", "../../examples/wordpress/open", "--compromised", "web/wordpress"}, 1, "blast-radius"},
		{[]string{"analyze", "../../examples/wordpress/hardened", "--compromised", "web/wordpress"}, 0, "data/mysql"},
		{[]string{"analyze", "../../examples/wordpress/open", "--fail-on", "none", "-o", "dot"}, 0, "digraph"},
		{[]string{"lint", "../../examples/wordpress/hardened"}, 0, ""},
		{[]string{"lint", "../../examples/wordpress"}, 1, "declared twice"},
	} {
		code, out, errOut := runCLI(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.contains) {
			t.Errorf("rampart %s: exit %d, want %d; stdout %q wants %q\nstderr: %s",
				strings.Join(tc.args, " "), code, tc.code, firstLines(out), tc.contains, errOut)
		}
	}
}

func TestReachJSON(t *testing.T) {
	code, out, errOut := runCLI("reach", "../../examples/netpol-e2e", "--probe", "81/TCP", "--probe", "80/TCP", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 9*9*2 {
		t.Fatalf("%d rows", len(rows))
	}
	first := rows[0]
	if first["from"] != "x/a" || first["to"] != "x/a" || first["port"] != 80.0 || first["protocol"] != "TCP" || first["allowed"] != true {
		t.Errorf("first row = %v", first)
	}
	for _, r := range rows {
		if r["from"] == "z/a" && r["to"] == "y/b" {
			if want := r["port"] == 81.0; r["allowed"] != want {
				t.Errorf("z/a -> y/b = %v", r)
			}
		}
	}
}

func firstLines(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}
