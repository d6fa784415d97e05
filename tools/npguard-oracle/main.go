// Command npguard-oracle answers Rampart's differential test with np-guard's
// netpol-analyzer, an independent NetworkPolicy implementation: for each
// case directory, every ordered pair of workloads and every probe, whether
// its workload-level "all allowed connections" analysis allows it. It is a
// module of its own because np-guard pins older Kubernetes libraries.
//
//	npguard-oracle --probes 80/TCP,81/UDP CASE_DIR...
//
// prints one JSON line per case:
// {"case":DIR,"results":[{"from","to","port","protocol","allowed"}],"errors":[...],"warnings":[...]}
//
// errors are np-guard's fatal or severe errors (its answer is then
// incomplete); warnings (e.g. a named port that matches no container port)
// leave the answer whole.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/np-guard/netpol-analyzer/pkg/netpol/connlist"
	v1 "k8s.io/api/core/v1"
)

type probe struct {
	port  int64
	proto string
}

type row struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Port     int64  `json:"port"`
	Protocol string `json:"protocol"`
	Allowed  bool   `json:"allowed"`
}

type line struct {
	Case     string   `json:"case"`
	Results  []row    `json:"results"`
	Errors   []string `json:"errors"`
	Warnings []string `json:"warnings"`
}

func main() {
	probesFlag := flag.String("probes", "80/TCP", "comma-separated PORT/PROTOCOL list")
	flag.Parse()
	probes, err := parseProbes(*probesFlag)
	if err != nil || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: npguard-oracle --probes 80/TCP,81/UDP CASE_DIR...", err)
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, dir := range flag.Args() {
		if err := enc.Encode(analyze(dir, probes)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func parseProbes(s string) ([]probe, error) {
	var out []probe
	for _, p := range strings.Split(s, ",") {
		port, proto, ok := strings.Cut(p, "/")
		n, err := strconv.ParseInt(port, 10, 32)
		if !ok || err != nil {
			return nil, fmt.Errorf("bad probe %q", p)
		}
		out = append(out, probe{n, strings.ToUpper(proto)})
	}
	return out, nil
}

func analyze(dir string, probes []probe) line {
	l := line{Case: dir, Results: []row{}, Errors: []string{}, Warnings: []string{}}
	ca := connlist.NewConnlistAnalyzer(connlist.WithMuteErrsAndWarns())
	conns, peers, err := ca.ConnlistFromDirPath(dir)
	if err != nil {
		l.Errors = append(l.Errors, err.Error())
	}
	for _, e := range ca.Errors() {
		if !e.IsFatal() && !e.IsSevere() {
			l.Warnings = append(l.Warnings, e.Error().Error())
			continue
		}
		l.Errors = append(l.Errors, e.Error().Error())
	}
	type key struct{ from, to string }
	allowed := map[key]func(probe) bool{}
	for _, c := range conns {
		if c.Src().IsPeerIPType() || c.Dst().IsPeerIPType() {
			continue
		}
		k := key{ref(c.Src().Namespace(), c.Src().Name()), ref(c.Dst().Namespace(), c.Dst().Name())}
		if c.AllProtocolsAndPorts() {
			allowed[k] = func(probe) bool { return true }
			continue
		}
		// The ranges cover the whole port space: for its explanations
		// np-guard also lists the ranges that are denied, marked by
		// InSet() == false, so only the ranges in the set allow.
		byProto := c.ProtocolsAndPorts()
		allowed[k] = func(p probe) bool {
			for _, r := range byProto[v1.Protocol(p.proto)] {
				if p.port >= r.Start() && p.port <= r.End() {
					return inSet(r)
				}
			}
			return false
		}
	}
	var refs []string
	for _, p := range peers {
		if !p.IsPeerIPType() {
			refs = append(refs, ref(p.Namespace(), p.Name()))
		}
	}
	sort.Strings(refs)
	for _, from := range refs {
		for _, to := range refs {
			if from == to {
				continue
			}
			for _, p := range probes {
				f := allowed[key{from, to}]
				l.Results = append(l.Results, row{from, to, p.port, p.proto, f != nil && f(p)})
			}
		}
	}
	sort.SliceStable(l.Results, func(i, j int) bool {
		a, b := l.Results[i], l.Results[j]
		if a.From != b.From {
			return a.From < b.From
		}
		if a.To != b.To {
			return a.To < b.To
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.Protocol < b.Protocol
	})
	return l
}

// inSet reports whether np-guard's range is allowed. Ranges without the
// method (none in v1.4.4) count as allowed, as the interface documents.
func inSet(r interface{ Start() int64 }) bool {
	if s, ok := r.(interface{ InSet() bool }); ok {
		return s.InSet()
	}
	return true
}

func ref(ns, name string) string { return ns + "/" + name }
