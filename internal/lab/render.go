package lab

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rampartnet/rampart/internal/policy"
)

// Cells of the matrices, as `rampart reach` prints them, and the marks
// the lab adds.
const (
	markAllowed  = "."
	markBlocked  = "X"
	markSkipped  = "-" // a named port the destination does not have
	markError    = "?" // the probe failed locally
	markDiffers  = "!"
	maxWideWidth = 150 // beyond this, expected goes under observed
	maxDiffLines = 20
)

// WriteJSON writes the rows: `rampart reach -o json`'s objects, each with
// "observed".
func (r *ProbeResult) WriteJSON(w io.Writer) error {
	rows := r.Rows
	if rows == nil {
		rows = []ProbeRow{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

// WriteTable writes, for each probe, the observed matrix beside the
// expected one (under it when both would not fit in a line), sources down
// and destinations across, "!" on every observed cell that differs, then
// the differences with what the verdict engine decided. With one source
// and several probes (--from one pod: what it reaches), one matrix has a
// line per probe instead.
func (r *ProbeResult) WriteTable(w io.Writer) error {
	at := map[string]int{}
	for i, row := range r.Rows {
		at[row.From+"\x00"+row.To+"\x00"+probeKey(row.Port, row.PortName, row.Protocol)] = i
	}
	find := func(from, to string, pr policy.Probe) (*ProbeRow, int) {
		i, ok := at[from+"\x00"+to+"\x00"+probeKey(pr.Port, pr.Name, string(pr.Protocol))]
		if !ok {
			return nil, -1
		}
		return &r.Rows[i], i
	}
	if len(r.From) == 1 && len(r.Probes) > 1 {
		src := r.From[0]
		var lines []string
		byName := map[string]policy.Probe{}
		for _, pr := range r.Probes {
			lines = append(lines, pr.String())
			byName[pr.String()] = pr
		}
		r.writePair(w, "from "+src, lines, func(line, to string) (*ProbeRow, int) { return find(src, to, byName[line]) })
		r.writeDiffs(w, "from "+src, func(yield func(from, to string, row *ProbeRow, i int)) {
			for _, pr := range r.Probes {
				for _, to := range r.To {
					if row, i := find(src, to, pr); row != nil {
						yield(src, to+" on "+pr.String(), row, i)
					}
				}
			}
		})
	} else {
		for k, pr := range r.Probes {
			if k > 0 {
				fmt.Fprintln(w)
			}
			r.writePair(w, pr.String(), r.From, func(from, to string) (*ProbeRow, int) { return find(from, to, pr) })
			r.writeDiffs(w, pr.String(), func(yield func(from, to string, row *ProbeRow, i int)) {
				for _, from := range r.From {
					for _, to := range r.To {
						if row, i := find(from, to, pr); row != nil {
							yield(from, to, row, i)
						}
					}
				}
			})
		}
	}
	if d := r.Differences(); d > 0 {
		fmt.Fprintf(w, "\n%d of %d probes differ from the verdict engine (%v)\n", d, len(r.Rows), r.Took.Round(time.Millisecond))
	} else {
		fmt.Fprintf(w, "\nall %d probes as expected (%v)\n", len(r.Rows), r.Took.Round(time.Millisecond))
	}
	return nil
}

// writePair writes the observed and the expected matrix of the given
// lines (sources, or probes) and the destinations, side by side when they
// fit in maxWideWidth, else one under the other.
func (r *ProbeResult) writePair(w io.Writer, corner string, lines []string, cell func(line, to string) (*ProbeRow, int)) {
	observedCell := func(line, to string) string {
		row, _ := cell(line, to)
		switch {
		case row == nil:
			return ""
		case row.Error != "":
			return markError + markDiffers
		case row.Observed == nil:
			return markSkipped
		}
		m := mark(*row.Observed)
		if row.Differs() {
			m += markDiffers
		}
		return m
	}
	expectedCell := func(line, to string) string {
		if row, _ := cell(line, to); row != nil {
			return mark(row.Allowed)
		}
		return ""
	}
	observed := matrix(corner, lines, r.To, true, observedCell)
	expected := matrix(corner, lines, r.To, false, expectedCell)
	title := "observed (" + markDiffers + ": differs)"
	width := len(title)
	for _, l := range observed {
		width = max(width, len(l))
	}
	if width+3+len(expected[0]) <= maxWideWidth {
		fmt.Fprintf(w, "%-*s   %s\n", width, title, "expected")
		for i := range observed {
			fmt.Fprintf(w, "%-*s | %s\n", width, observed[i], expected[i])
		}
		return
	}
	fmt.Fprintf(w, "observed (%s: differs from expected)\n%s\n", markDiffers, strings.Join(observed, "\n"))
	fmt.Fprintf(w, "expected\n%s\n", strings.Join(matrix(corner, lines, r.To, true, expectedCell), "\n"))
}

// writeDiffs counts the probes of one matrix and lists those that differ,
// with what the verdict engine decided.
func (r *ProbeResult) writeDiffs(w io.Writer, what string, each func(yield func(from, to string, row *ProbeRow, i int))) {
	var diffs []string
	n := 0
	each(func(from, to string, row *ProbeRow, i int) {
		n++
		if !row.Differs() {
			return
		}
		var d string
		if row.Error != "" {
			d = "probe failed: " + row.Error
		} else {
			d = fmt.Sprintf("observed %s, expected %s (%s)", word(*row.Observed), word(row.Allowed), r.Why[i])
		}
		diffs = append(diffs, fmt.Sprintf("  %s -> %s: %s", from, to, d))
	})
	fmt.Fprintf(w, "%s: %d probes, %d differ\n", what, n, len(diffs))
	if len(diffs) > maxDiffLines {
		diffs = append(diffs[:maxDiffLines], fmt.Sprintf("  and %d more (see -o json)", len(diffs)-maxDiffLines))
	}
	for _, d := range diffs {
		fmt.Fprintln(w, d)
	}
}

// matrix lays out one matrix as lines: a header of destinations, then a
// line for each of lines (sources, or probes); with labels, the corner
// and the line names head the lines.
func matrix(corner string, lines, to []string, labels bool, cell func(line, to string) string) []string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 1, ' ', 0)
	if labels {
		fmt.Fprintf(tw, "%s\t", corner)
	}
	fmt.Fprintf(tw, "%s\t\n", strings.Join(to, "\t"))
	for _, f := range lines {
		if labels {
			fmt.Fprintf(tw, "%s\t", f)
		}
		for _, t := range to {
			fmt.Fprintf(tw, "%s\t", cell(f, t))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	out := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	for i := range out {
		out[i] = strings.TrimRight(out[i], " ")
	}
	return out
}

func mark(allowed bool) string {
	if allowed {
		return markAllowed
	}
	return markBlocked
}

func word(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "blocked"
}
