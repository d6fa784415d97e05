package analyze

import (
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"text/tabwriter"

	"github.com/rampartnet/rampart/internal/policy"
)

// ReachRow is one verdict of `rampart reach`. The JSON names are an
// interface: later versions may add fields, never rename these.
type ReachRow struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Port     int32  `json:"port"`
	PortName string `json:"portName,omitempty"`
	Protocol string `json:"protocol"`
	Allowed  bool   `json:"allowed"`
}

// ReachTable is the answer of `rampart reach`: for every probe, every
// ordered pair of the selected endpoints (self included).
type ReachTable struct {
	Probes []policy.Probe
	From   []*policy.Endpoint
	To     []*policy.Endpoint
	// Notes say what the table cannot show: rules about domain names,
	// which apply to traffic to those names rather than between pods.
	Notes []string
	// allowed[probe][from][to]
	allowed [][][]bool
}

// Reach computes the table. fromGlob and toGlob select endpoints by
// "namespace/name" with shell wildcards ("x/*", "*/db"); empty means all.
func Reach(m *policy.Model, probes []policy.Probe, fromGlob, toGlob string) (*ReachTable, error) {
	from, err := selectEndpoints(m, fromGlob)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	to, err := selectEndpoints(m, toGlob)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	t := &ReachTable{Probes: probes, From: from, To: to}
	for _, p := range m.ClusterPolicies {
		for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
			for _, r := range p.Rules(d) {
				if names := r.DomainNames(); len(names) > 0 {
					t.Notes = append(t.Notes, fmt.Sprintf("%s %s rule %d (%s) applies to traffic to %s, which is "+
						"not between pods and not in this table; Rampart does not resolve the names, and takes the "+
						"rule to match no address", p.Ref(), d, r.Index+1, fmt.Sprintf("spec.%s[%d]", d, r.Index), strings.Join(names, ", ")))
				}
			}
		}
	}
	for _, pr := range probes {
		mx := m.Matrix(pr)
		grid := make([][]bool, len(from))
		for i, s := range from {
			grid[i] = make([]bool, len(to))
			for j, d := range to {
				grid[i][j] = mx.Allowed(s, d)
			}
		}
		t.allowed = append(t.allowed, grid)
	}
	return t, nil
}

func selectEndpoints(m *policy.Model, glob string) ([]*policy.Endpoint, error) {
	if glob == "" {
		return m.Endpoints, nil
	}
	if _, err := path.Match(glob, ""); err != nil {
		return nil, fmt.Errorf("bad pattern %q: %w", glob, err)
	}
	if !strings.Contains(glob, "/") {
		glob += "/*" // a bare namespace pattern
	}
	var out []*policy.Endpoint
	for _, e := range m.Endpoints {
		if ok, _ := path.Match(glob, e.Ref()); ok {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q matches no pod or workload", glob)
	}
	return out, nil
}

// Refine keeps allowed only the cells that decide also allows: a layer
// above L3/L4 (the L7 authorization of `reach --http`), asked only about
// what L3/L4 allow.
func (t *ReachTable) Refine(decide func(pr policy.Probe, from, to *policy.Endpoint) bool) {
	for k, pr := range t.Probes {
		for i, s := range t.From {
			for j, d := range t.To {
				if t.allowed[k][i][j] && !decide(pr, s, d) {
					t.allowed[k][i][j] = false
				}
			}
		}
	}
}

// Rows returns the verdicts sorted by from, to, port, protocol.
func (t *ReachTable) Rows() []ReachRow {
	var rows []ReachRow
	for i, s := range t.From {
		for j, d := range t.To {
			for k, pr := range t.Probes {
				rows = append(rows, ReachRow{From: s.Ref(), To: d.Ref(), Port: pr.Port, PortName: pr.Name,
					Protocol: string(pr.Protocol), Allowed: t.allowed[k][i][j]})
			}
		}
	}
	// From and To are already sorted by ref; order the probes within a pair.
	sortRows(rows)
	return rows
}

func sortRows(rows []ReachRow) {
	less := func(a, b ReachRow) bool {
		if a.From != b.From {
			return a.From < b.From
		}
		if a.To != b.To {
			return a.To < b.To
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		if a.PortName != b.PortName {
			return a.PortName < b.PortName
		}
		return a.Protocol < b.Protocol
	}
	// Insertion sort within each (from, to) block is enough: blocks are
	// already in order and hold one row per probe.
	for i := 1; i < len(rows); i++ {
		for j := i; j > 0 && less(rows[j], rows[j-1]); j-- {
			rows[j], rows[j-1] = rows[j-1], rows[j]
		}
	}
}

// WriteJSON writes the rows as one JSON array.
func (t *ReachTable) WriteJSON(w io.Writer) error {
	rows := t.Rows()
	if rows == nil {
		rows = []ReachRow{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

// WriteTable writes one matrix per probe, sources down and destinations
// across, "." for allowed and "X" for blocked, as the Kubernetes e2e suite
// prints its reachability tables.
func (t *ReachTable) WriteTable(w io.Writer) error {
	for k, pr := range t.Probes {
		if k > 0 {
			fmt.Fprintln(w)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
		fmt.Fprintf(tw, "%s", pr)
		for _, d := range t.To {
			fmt.Fprintf(tw, "\t%s", d.Ref())
		}
		fmt.Fprintln(tw)
		for i, s := range t.From {
			fmt.Fprintf(tw, "%s", s.Ref())
			for j := range t.To {
				mark := "X"
				if t.allowed[k][i][j] {
					mark = "."
				}
				fmt.Fprintf(tw, "\t%s", mark)
			}
			fmt.Fprintln(tw)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
