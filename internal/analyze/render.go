package analyze

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// lineWidth is what text output aims to stay within.
const lineWidth = 118

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a person reading it top to bottom: what
// was analyzed, who is isolated, what is wrong and how to fix it, who
// reaches whom, and the blast radius.
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	r.textHeader(bw)
	r.textIsolation(bw)
	r.textFindings(bw)
	r.textReach(bw)
	r.textBlast(bw)
	return bw.Flush()
}

func (r *Report) textHeader(w *bufio.Writer) {
	s := r.Summary
	policies := plural(s.Policies, "policy")
	if s.ClusterPolicies > 0 {
		policies += fmt.Sprintf(" (and %s)", plural(s.ClusterPolicies, "cluster-wide policy"))
	}
	fmt.Fprintf(w, "rampart analyze: %s, %s, %s, %s, %s\n", plural(s.Endpoints, "endpoint"),
		plural(s.Namespaces, "namespace"), policies, plural(s.Classes, "class"),
		plural(len(s.Probes), "probe"))
	writeWrapped(w, "probes: ", "  ", joinLimit(s.Probes, 24))
	if s.ProbesGiven {
		fmt.Fprintln(w, "  (given: a pod counts as reached on them whether or not it declares the port)")
	} else {
		fmt.Fprintln(w, "  (the ports the containers declare: a pod counts as reached only on a port it declares, or on any if it declares none)")
	}
	fmt.Fprintf(w, "findings: %d high, %d medium, %d low, %d info\n",
		s.Findings.High, s.Findings.Medium, s.Findings.Low, s.Findings.Info)
}

func (r *Report) textIsolation(w *bufio.Writer) {
	legend := "\"open\": no policy isolates that direction"
	if r.Summary.ClusterPolicies > 0 {
		legend += "; \"cluster:\": cluster-wide policies select it there"
	}
	fmt.Fprintf(w, "\nISOLATION (%d endpoints; %s)\n", len(r.Workloads), legend)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tKIND\tINGRESS\tEGRESS")
	cell := func(ns string, isolated, host bool, by, cluster []string) string {
		if host {
			return "host network"
		}
		var cells []string
		if isolated {
			names := make([]string, len(by))
			for i, p := range by {
				names[i] = strings.TrimPrefix(p, ns+"/")
			}
			c := "isolated: " + strings.Join(names, ", ")
			if len(c) > 40 {
				c = fmt.Sprintf("isolated: %s +%d", truncate(names[0], 24), len(names)-1)
			}
			cells = append(cells, c)
		}
		if len(cluster) > 0 {
			_, name, _ := strings.Cut(cluster[0], " ")
			c := "cluster: " + truncate(name, 24)
			if len(cluster) > 1 {
				c += fmt.Sprintf(" +%d", len(cluster)-1)
			}
			cells = append(cells, c)
		}
		if len(cells) == 0 {
			return "open"
		}
		return strings.Join(cells, "; ")
	}
	for _, wl := range r.Workloads {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", wl.Ref, truncate(wl.Kind, 11),
			cell(wl.Namespace, wl.IngressIsolated, wl.HostNetwork, wl.IngressPolicies, wl.IngressClusterPolicies),
			cell(wl.Namespace, wl.EgressIsolated, wl.HostNetwork, wl.EgressPolicies, wl.EgressClusterPolicies))
	}
	tw.Flush()
}

// findingGroup is findings printed together: about endpoints of one
// namespace (of one kind and severity), or saying the same thing of
// several namespaces or policies.
type findingGroup struct {
	first *Finding
	byNS  bool
	items []*Finding
}

func (r *Report) textFindings(w *bufio.Writer) {
	fmt.Fprintf(w, "\nFINDINGS (%d)\n", len(r.Findings))
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	var groups []*findingGroup
	byKey := map[string]*findingGroup{}
	for i := range r.Findings {
		f := &r.Findings[i]
		byNS := f.SubjectKind == SubjectEndpoint && f.Kind != KindBlastRadius
		k := string(f.Severity) + "\x00" + f.Kind + "\x00" + f.Message
		if byNS {
			k = string(f.Severity) + "\x00" + f.Kind + "\x00\x00" + f.Namespace
		}
		g := byKey[k]
		if g == nil {
			g = &findingGroup{first: f, byNS: byNS}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.items = append(g.items, f)
	}
	// Findings are sorted by severity, kind and subject; keep that order
	// of groups, but list the largest groups of a kind first.
	sort.SliceStable(groups, func(i, j int) bool {
		x, y := groups[i].first, groups[j].first
		if x.Severity.rank() != y.Severity.rank() {
			return x.Severity.rank() < y.Severity.rank()
		}
		if x.Kind != y.Kind {
			return kindOrder[x.Kind] < kindOrder[y.Kind]
		}
		return len(groups[i].items) > len(groups[j].items)
	})
	hinted := map[string]bool{} // hint kinds already printed in full
	for _, g := range groups {
		f := g.first
		switch {
		case g.byNS:
			fmt.Fprintf(w, "\n[%s] %s: %s in %s\n", f.Severity, f.Kind, plural(len(g.items), "endpoint"), f.Namespace)
			r.textMessages(w, g.items)
		default:
			n := ""
			if len(g.items) > 1 {
				n = " (" + plural(len(g.items), f.SubjectKind) + ")"
			}
			fmt.Fprintf(w, "\n[%s] %s%s\n", f.Severity, f.Kind, n)
			writeWrapped(w, "  ", "    ", subjectList(g.items))
			writeWrapped(w, "  ", "    ", f.Message)
			if pos := groupPos(g.items); pos != "" {
				writeWrapped(w, "  at: ", "      ", pos)
			}
		}
		// One hint per kind of hint in the group, in full the first time.
		seen := map[string]bool{}
		for _, it := range g.items {
			if it.Hint == "" || seen[it.hintKind] {
				continue
			}
			seen[it.hintKind] = true
			if hinted[it.hintKind] && it.hintKind != "" {
				if g.byNS {
					fmt.Fprintf(w, "  fix: as above, in namespace %s\n", it.Namespace)
				} else {
					writeWrapped(w, "  fix: ", "    ", "as above, for "+it.Subject)
				}
				continue
			}
			hinted[it.hintKind] = true
			lines := strings.Split(it.Hint, "\n")
			label := "  fix: "
			if len(g.items) > 1 {
				label = "  fix (for " + it.Subject + ", likewise for the others): "
			}
			writeWrapped(w, label, "    ", lines[0])
			for _, l := range lines[1:] {
				fmt.Fprintf(w, "      %s\n", l)
			}
		}
	}
}

// textMessages prints the findings of one namespace's group: each distinct
// message with the endpoints it is about, and where.
func (r *Report) textMessages(w *bufio.Writer, fs []*Finding) {
	var order []string
	by := map[string][]*Finding{}
	for _, f := range fs {
		if _, ok := by[f.Message]; !ok {
			order = append(order, f.Message)
		}
		by[f.Message] = append(by[f.Message], f)
	}
	for _, msg := range order {
		items := by[msg]
		writeWrapped(w, "  - ", "    ", subjectNames(items)+": "+msg)
		if pos := groupPos(items); pos != "" {
			writeWrapped(w, "    at: ", "      ", pos)
		}
	}
}

// subjectNames names endpoints of one namespace without it, at most 12.
func subjectNames(fs []*Finding) string {
	const limit = 12
	names := make([]string, 0, min(len(fs), limit))
	for _, f := range fs[:min(len(fs), limit)] {
		names = append(names, strings.TrimPrefix(f.Subject, f.Namespace+"/"))
	}
	s := strings.Join(names, ", ")
	if len(fs) > limit {
		s += fmt.Sprintf(" and %d more", len(fs)-limit)
	}
	return s
}

// subjectList names the subjects of a group, at most 12 of them.
func subjectList(fs []*Finding) string {
	const limit = 12
	var b strings.Builder
	shown := min(len(fs), limit)
	for i := range shown {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(fs[i].Subject)
	}
	if len(fs) > shown {
		fmt.Fprintf(&b, " and %d more (see -o json)", len(fs)-shown)
	}
	return b.String()
}

// groupPos is the file:line to print for a group: the one they share, or
// a few, in file and line order.
func groupPos(fs []*Finding) string {
	var ps []string
	seen := map[string]bool{}
	for _, f := range fs {
		if f.Pos != "" && !seen[f.Pos] {
			seen[f.Pos] = true
			ps = append(ps, f.Pos)
		}
	}
	sort.Slice(ps, func(i, j int) bool {
		fi, li := splitPos(ps[i])
		fj, lj := splitPos(ps[j])
		if fi != fj {
			return fi < fj
		}
		return li < lj
	})
	if len(ps) > 4 {
		return joinLimit(ps, 3) + " (see -o json)"
	}
	return strings.Join(ps, ", ")
}

// splitPos splits "file:line".
func splitPos(p string) (string, int) {
	i := strings.LastIndexByte(p, ':')
	if i < 0 {
		return p, 0
	}
	n, _ := strconv.Atoi(p[i+1:])
	return p[:i], n
}

// writeWrapped writes s after first, wrapped at lineWidth on spaces, with
// continuation lines after rest.
func writeWrapped(w *bufio.Writer, first, rest, s string) {
	prefix := first
	for {
		room := lineWidth - len(prefix)
		if len(s) <= room || room < 20 {
			fmt.Fprintf(w, "%s%s\n", prefix, s)
			return
		}
		cut := strings.LastIndexByte(s[:room], ' ')
		if cut <= 0 {
			cut = strings.IndexByte(s, ' ')
			if cut < 0 {
				fmt.Fprintf(w, "%s%s\n", prefix, s)
				return
			}
		}
		fmt.Fprintf(w, "%s%s\n", prefix, s[:cut])
		s = strings.TrimLeft(s[cut:], " ")
		prefix = rest
	}
}

// plural says "1 policy", "2 policies".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	switch {
	case strings.HasSuffix(noun, "y"):
		noun = noun[:len(noun)-1] + "ie"
	case strings.HasSuffix(noun, "s"):
		noun += "e"
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func (r *Report) textReach(w *bufio.Writer) {
	fmt.Fprintf(w, "\nREACHABILITY (%d classes: endpoints that every policy treats alike; most reached first)\n",
		len(r.Classes))
	fmt.Fprintln(w, "REACHES: other endpoints one member can connect to; REACHED BY: endpoints that can connect to one member")
	namespaces := map[string]bool{}
	for _, wl := range r.Workloads {
		namespaces[wl.Namespace] = true
	}
	nsCount := len(namespaces)
	order := make([]int, len(r.Classes))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return r.Classes[order[i]].ReachedBy > r.Classes[order[j]].ReachedBy })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLASS\tREACHES\tREACHED BY\tFROM NAMESPACES\tMEMBERS")
	for _, i := range order {
		c := r.Classes[i]
		from := joinLimit(c.FromNamespaces, 3)
		if len(from) > 36 {
			from = joinLimit(c.FromNamespaces, 1)
		}
		switch {
		case len(c.FromNamespaces) == 0:
			from = "none"
		case len(c.FromNamespaces) == nsCount && nsCount > 1:
			from = fmt.Sprintf("all %d", nsCount)
		}
		members := c.Members[0]
		if len(c.Members) > 1 {
			members = fmt.Sprintf("%s and %d more", truncate(joinLimit(c.Members, 2), 60), len(c.Members)-1)
			if len(c.Members) == 2 {
				members = truncate(strings.Join(c.Members, ", "), 60)
			}
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\n", c.ID, c.Reaches, c.ReachedBy, truncate(from, 36), members)
	}
	tw.Flush()
}

func (r *Report) textBlast(w *bufio.Writer) {
	br := r.BlastRadius
	if br == nil {
		return
	}
	fmt.Fprintf(w, "\nBLAST RADIUS of %s: %s reachable (depth: hops from it; the shortest path shown)\n",
		br.Compromised, plural(len(br.Reachable), "endpoint"))
	if len(br.Reachable) == 0 {
		fmt.Fprintln(w, "  none: it reaches no other endpoint")
		return
	}
	for _, re := range br.Reachable {
		parts := make([]string, 0, len(re.Path)+1)
		parts = append(parts, re.Path[0].From)
		for _, h := range re.Path {
			parts = append(parts, fmt.Sprintf("-> %s (%s)", h.To, joinLimit(h.Ports, 4)))
		}
		writeWrapped(w, fmt.Sprintf("  %d  ", re.Depth), "       ", strings.Join(parts, " "))
	}
}

// WriteDOT writes a Graphviz digraph: one node per endpoint, grouped in a
// cluster per namespace, and an edge per pair of endpoints where one
// reaches the other, labelled with the probes. With a blast radius, the
// compromised endpoint is filled red, what it reaches is red, edges from
// it or from what it reaches are red, and the paths are drawn thick.
// Edges are per pair of endpoints: a large model makes a large graph.
func (r *Report) WriteDOT(w io.Writer) error {
	a := r.a
	if a == nil {
		return errors.New("analyze: DOT needs a report made by Analyze (the pairs are not in the JSON form)")
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "digraph rampart {")
	fmt.Fprintln(bw, "  rankdir=LR;")
	fmt.Fprintln(bw, `  node [shape=box, style=rounded, fontname="Helvetica"];`)
	fmt.Fprintln(bw, `  edge [fontname="Helvetica", fontsize=10];`)

	inRadius := map[string]bool{}
	onPath := map[[2]string]bool{}
	comp := ""
	if br := r.BlastRadius; br != nil {
		comp = br.Compromised
		inRadius[comp] = true
		for _, re := range br.Reachable {
			inRadius[re.Endpoint] = true
			for _, h := range re.Path {
				onPath[[2]string{h.From, h.To}] = true
			}
		}
	}
	ns := ""
	for _, wl := range r.Workloads {
		if wl.Namespace != ns {
			if ns != "" {
				fmt.Fprintln(bw, "  }")
			}
			ns = wl.Namespace
			fmt.Fprintf(bw, "  subgraph %s {\n    label=%s;\n", dotID("cluster_"+ns), dotID(ns))
		}
		attrs := fmt.Sprintf("label=%s", dotID(wl.Name+"\n"+wl.Kind))
		switch {
		case wl.Ref == comp:
			attrs += `, style="rounded,filled", fillcolor=red, fontcolor=white`
		case inRadius[wl.Ref]:
			attrs += ", color=red, fontcolor=red"
		}
		fmt.Fprintf(bw, "    %s [%s];\n", dotID(wl.Ref), attrs)
	}
	if ns != "" {
		fmt.Fprintln(bw, "  }")
	}
	for s, cs := range a.classes {
		for d := range a.reach[s].each {
			label := dotID(strings.Join(a.pairProbes(s, d), ","))
			for _, x := range cs.Members {
				red := inRadius[x.Ref()]
				for _, y := range a.classes[d].Members {
					if x == y {
						continue
					}
					attrs := "label=" + label
					if red {
						attrs += ", color=red, fontcolor=red"
						if onPath[[2]string{x.Ref(), y.Ref()}] {
							attrs += ", penwidth=2"
						}
					}
					fmt.Fprintf(bw, "  %s -> %s [%s];\n", dotID(x.Ref()), dotID(y.Ref()), attrs)
				}
			}
		}
	}
	fmt.Fprintln(bw, "}")
	return bw.Flush()
}

// dotID quotes s as a DOT identifier.
func dotID(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
