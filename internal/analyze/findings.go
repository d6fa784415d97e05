package analyze

import (
	"fmt"
	"sort"
	"strings"

	"net/netip"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Severity ranks findings: high, medium, low, info.
type Severity string

// Severities, from the most urgent.
const (
	High   Severity = "high"
	Medium Severity = "medium"
	Low    Severity = "low"
	Info   Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case High:
		return 0
	case Medium:
		return 1
	case Low:
		return 2
	}
	return 3
}

// Finding kinds, in the order the report lists them within a severity.
const (
	KindNoDefaultDenyIngress        = "no-default-deny-ingress"
	KindNoDefaultDenyEgress         = "no-default-deny-egress"
	KindReachableFromEveryNamespace = "reachable-from-every-namespace"
	KindEgressOpenToInternet        = "egress-open-to-internet"
	KindEgressBlocksDNS             = "egress-blocks-dns"
	KindPolicySelectsNothing        = "policy-selects-nothing"
	KindPeerMatchesNothing          = "peer-matches-nothing"
	KindBlastRadius                 = "blast-radius"
	// KindOverriddenByAdmin: a NetworkPolicy rule whose every allowed
	// connection an Admin tier Deny decides first.
	KindOverriddenByAdmin = "netpol-rule-overridden-by-admin-deny"
	// KindDomainNamesNotEnforced: a cluster-wide rule with domain names,
	// which Rampart neither resolves nor enforces.
	KindDomainNamesNotEnforced = "domain-names-not-enforced"
)

var kindOrder = map[string]int{
	KindBlastRadius:                 0,
	KindReachableFromEveryNamespace: 1,
	KindEgressBlocksDNS:             2,
	KindNoDefaultDenyIngress:        3,
	KindNoDefaultDenyEgress:         4,
	KindEgressOpenToInternet:        5,
	KindPolicySelectsNothing:        6,
	KindPeerMatchesNothing:          7,
	KindOverriddenByAdmin:           8,
	KindDomainNamesNotEnforced:      9,
}

// Subject kinds.
const (
	SubjectEndpoint  = "endpoint"
	SubjectNamespace = "namespace"
	SubjectPolicy    = "policy"
	// SubjectClusterPolicy is a cluster-wide policy, "Kind name".
	SubjectClusterPolicy = "cluster-policy"
)

// Finding is one problem of the segmentation, with how to fix it.
type Finding struct {
	Kind     string   `json:"kind"`
	Severity Severity `json:"severity"`
	// Subject is what the finding is about: an endpoint or a policy
	// ("namespace/name"), or a namespace; SubjectKind says which.
	Subject     string `json:"subject"`
	SubjectKind string `json:"subjectKind"`
	Namespace   string `json:"namespace"`
	// Message says what is wrong. It does not repeat the subject, so that
	// findings that say the same thing of several subjects print as one.
	Message string `json:"message"`
	// Hint says how to fix it, concretely (often a manifest to apply).
	Hint string `json:"hint,omitempty"`
	// Pos is file:line of what to change (a policy's field, or the
	// endpoint's manifest), and Path the field path in that policy.
	Pos  string `json:"pos,omitempty"`
	Path string `json:"path,omitempty"`

	// hintKind names the template of Hint: hints of one kind differ only
	// in the names they fill in, so text output prints each kind once.
	hintKind string
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		x, y := &fs[i], &fs[j]
		if x.Severity.rank() != y.Severity.rank() {
			return x.Severity.rank() < y.Severity.rank()
		}
		if x.Kind != y.Kind {
			return kindOrder[x.Kind] < kindOrder[y.Kind]
		}
		if x.Subject != y.Subject {
			return x.Subject < y.Subject
		}
		if x.Path != y.Path {
			return x.Path < y.Path
		}
		return x.Message < y.Message
	})
}

func (a *analysis) findings() []Finding {
	var fs []Finding
	fs = append(fs, a.defaultDenyFindings()...)
	fs = append(fs, a.exposureFindings()...)
	fs = append(fs, a.internetFindings()...)
	fs = append(fs, a.dnsFindings()...)
	fs = append(fs, a.selectorFindings()...)
	fs = append(fs, a.overriddenFindings()...)
	fs = append(fs, a.domainNameFindings()...)
	return fs
}

// systemSeverity lowers the severity of findings about kube-system to
// info: its workloads are the platform's, and rarely under the reader's
// control.
func systemSeverity(ns string, s Severity) Severity {
	if ns == metav1NamespaceSystem {
		return Info
	}
	return s
}

const metav1NamespaceSystem = "kube-system"

// endpointFinding expands a class finding to one finding per member.
func endpointFindings(c *policy.Class, f Finding) []Finding {
	out := make([]Finding, 0, len(c.Members))
	for _, e := range c.Members {
		g := f
		g.Subject, g.SubjectKind, g.Namespace = e.Ref(), SubjectEndpoint, e.Namespace
		if g.Pos == "" {
			g.Pos = endpointPos(e)
		}
		out = append(out, g)
	}
	return out
}

func endpointPos(e *policy.Endpoint) string { return pos(e.Origin(), "") }

func policyPos(p *policy.Policy, path string) string { return pos(p.Origin(), path) }

// pos is file:line of path in o: just the file when the line is not known
// (an object built in Go rather than read from a file), "" when neither is.
func pos(o *cluster.Origin, path string) string {
	switch {
	case o == nil || o.File == "":
		return ""
	case o.LineOf(path) == 0:
		return o.File
	}
	return o.Pos(path)
}

// no-default-deny-ingress / -egress: a namespace with pods where no policy
// with an empty podSelector (one that selects every pod of the namespace)
// isolates that direction, so that any pod no other policy selects is open.
// Namespaces whose only endpoints use the host network are skipped:
// NetworkPolicy cannot isolate those.
func (a *analysis) defaultDenyFindings() []Finding {
	var fs []Finding
	for ni, ns := range a.nsNames {
		pods := false
		for _, c := range a.nsClasses[ni] {
			pods = pods || !a.classes[c].Rep().HostNetwork
		}
		if !pods {
			continue
		}
		var in, eg bool
		for _, p := range a.m.PoliciesIn(ns) {
			if p.Selector.Empty() {
				in = in || p.Isolates(policy.Ingress)
				eg = eg || p.Isolates(policy.Egress)
			}
		}
		// Cluster-wide policies that select every pod of the namespace
		// decide what no NetworkPolicy does: the claim "from anywhere"
		// would be false, so say what governs instead.
		tiers := func(d policy.Direction) string {
			var refs []string
			for _, cp := range a.m.ClusterPolicies {
				all := true
				for _, c := range a.nsClasses[ni] {
					if e := a.classes[c].Rep(); !e.HostNetwork && !cp.Selects(e) {
						all = false
					}
				}
				if all && len(cp.Rules(d)) > 0 {
					refs = append(refs, cp.Ref())
				}
			}
			return strings.Join(refs, ", ")
		}
		if !in {
			msg, sev := "no default-deny ingress policy (empty podSelector, policyTypes Ingress): "+
				"a pod that no other policy selects accepts connections from anywhere", systemSeverity(ns, Medium)
			if t := tiers(policy.Ingress); t != "" {
				msg, sev = "no default-deny ingress NetworkPolicy (empty podSelector, policyTypes Ingress): "+
					"what no NetworkPolicy allows is decided by the cluster-wide "+t+" (`rampart explain` shows how)", Low
			}
			fs = append(fs, Finding{
				Kind: KindNoDefaultDenyIngress, Severity: sev, hintKind: "default-deny-ingress",
				Subject: ns, SubjectKind: SubjectNamespace, Namespace: ns,
				Message: msg,
				Hint: "apply a default-deny policy, then allow what each workload needs:\n" +
					"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n" +
					"metadata: {name: default-deny-ingress, namespace: " + ns + "}\n" +
					"spec: {podSelector: {}, policyTypes: [Ingress]}",
			})
		}
		if !eg {
			msg, sev := "no default-deny egress policy (empty podSelector, policyTypes Egress): "+
				"a pod that no other policy selects can connect anywhere, the internet included", systemSeverity(ns, Low)
			if t := tiers(policy.Egress); t != "" {
				msg, sev = "no default-deny egress NetworkPolicy (empty podSelector, policyTypes Egress): "+
					"what no NetworkPolicy allows is decided by the cluster-wide "+t+" (`rampart explain` shows how)", Info
			}
			fs = append(fs, Finding{
				Kind: KindNoDefaultDenyEgress, Severity: sev, hintKind: "default-deny-egress",
				Subject: ns, SubjectKind: SubjectNamespace, Namespace: ns,
				Message: msg,
				Hint: "apply a default-deny egress policy that still allows DNS, then allow what each workload needs:\n" +
					"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n" +
					"metadata: {name: default-deny-egress, namespace: " + ns + "}\n" +
					"spec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n" + a.dnsRuleYAML("  "),
			})
		}
	}
	return fs
}

// reachable-from-every-namespace: a class that some pod of every other
// namespace with endpoints reaches. High when nothing isolates its ingress
// (open by omission), medium when policies isolate it but admit every
// namespace (open by a rule, perhaps on purpose).
func (a *analysis) exposureFindings() []Finding {
	others := len(a.nsNames) - 1
	if others < 1 {
		return nil
	}
	nsr := a.nsReachSets()
	var flagged []int
	for d := range a.n {
		own, n := a.nsOf[d], 0
		for ni, b := range nsr {
			if ni != own && b.has(d) {
				n++
			}
		}
		if n == others {
			flagged = append(flagged, d)
		}
	}
	if len(flagged) == 0 {
		return nil
	}
	// Per probe and namespace, the columns some pod of the namespace
	// reaches: to say on which probes every namespace gets in.
	nsRows := make([][]bitset, len(a.rows))
	for pi, r := range a.rows {
		nsRows[pi] = make([]bitset, len(a.nsNames))
		for ni, cs := range a.nsClasses {
			b := newBitset(len(r.dst))
			for _, s := range cs {
				b.or(r.row(s))
			}
			nsRows[pi][ni] = b
		}
	}
	var fs []Finding
	for _, d := range flagged {
		c, own := a.classes[d], a.nsOf[d]
		var ports []string
		for pi, r := range a.rows {
			col := r.col[d]
			if col < 0 {
				continue
			}
			all := true
			for ni := range a.nsNames {
				if ni != own && !nsRows[pi][ni].has(int(col)) {
					all = false
					break
				}
			}
			if all {
				ports = append(ports, r.probe.String())
			}
		}
		on := "on " + joinLimit(ports, 6)
		if len(ports) == 0 {
			on = "on different ports from different namespaces"
		}
		what := fmt.Sprintf("reachable from pods of every other namespace (%d) %s", others, on)
		f := Finding{Kind: KindReachableFromEveryNamespace, Severity: High}
		switch rep := c.Rep(); {
		case rep.HostNetwork:
			f.Message = what + ": it uses the host network, which NetworkPolicy does not isolate"
			f.hintKind = "host-network"
			f.Hint = "run it without hostNetwork unless it needs the node's network; " +
				"otherwise restrict access with the node's firewall"
		case len(a.isoIngress[d]) == 0 && len(a.cpIngress[d]) > 0:
			f.Severity = Medium
			f.Message = what + ": no NetworkPolicy isolates its ingress, and the cluster-wide policies that select it (" +
				joinLimit(a.cpIngress[d], 3) + ") let every namespace in"
			f.hintKind = "narrow-cluster-ingress"
			f.Hint = "if that is not on purpose, isolate it with a NetworkPolicy that admits only its clients, or ask " +
				"the cluster administrator for a Baseline tier rule that denies the namespaces it does not serve"
		case len(a.isoIngress[d]) == 0:
			f.Message = what + ": no policy isolates its ingress"
			f.hintKind = "isolate-ingress"
			f.Hint = "isolate it (a default-deny ingress policy for namespace " + c.Namespace +
				"), then admit only its clients, e.g.\n" +
				"ingress:\n- from:\n  - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: CLIENT-NAMESPACE}}\n" +
				"    podSelector: {matchLabels: {app: CLIENT}}\n  ports: [{port: PORT, protocol: TCP}]"
		default:
			f.Severity = Medium
			f.Message = what + ": isolated by " + joinLimit(a.isoIngress[d], 3) + ", whose rules admit every namespace"
			f.hintKind = "narrow-ingress"
			f.Hint = "if that is not on purpose, narrow the ingress rules of its policies: a rule without 'from', " +
				"a namespaceSelector {} or an ipBlock over the pod network admits every namespace; name the client " +
				"namespaces instead (namespaceSelector on kubernetes.io/metadata.name)"
		}
		fs = append(fs, endpointFindings(c, f)...)
	}
	return fs
}

// internetOpening is one reason why an endpoint's egress reaches 0.0.0.0/0.
type internetOpening struct {
	p        *policy.Policy
	path     string
	what     string // the peer, in words
	allPorts bool
	ports    []string
}

// egress-open-to-internet: a class whose egress reaches 0.0.0.0/0 or ::/0:
// it is not egress-isolated, or a rule of a policy isolating it allows
// every destination (no 'to'), or an ipBlock with a /0 CIDR (its 'except'
// entries do not close the rest of the internet). Medium when every port is
// open, low when only some are.
func (a *analysis) internetFindings() []Finding {
	var fs []Finding
	internet, internetOK := a.internetAddr()
	for d, c := range a.classes {
		rep := c.Rep()
		f := Finding{Kind: KindEgressOpenToInternet}
		if len(a.cpEgress[d]) > 0 {
			// Cluster-wide rules decide before and after NetworkPolicy,
			// by priority and with Deny and Pass: ask the verdict engine.
			if internetOK {
				fs = append(fs, a.internetByVerdict(c, internet)...)
			}
			continue
		}
		if len(a.isoEgress[d]) == 0 {
			f.Severity = Medium
			if rep.HostNetwork {
				f.Message = "egress to any address on all ports: it uses the host network, which NetworkPolicy does not isolate"
				f.hintKind = "host-network-egress"
				f.Hint = "run it without hostNetwork unless it needs the node's network; " +
					"otherwise restrict its egress with the node's firewall"
			} else {
				f.Message = "egress to any address on all ports: no policy isolates its egress"
				f.hintKind = "isolate-egress"
				f.Hint = "isolate its egress (a default-deny egress policy for namespace " + c.Namespace +
					") and allow only the destinations it needs, e.g. for an external API:\n" +
					"egress:\n- to: [{ipBlock: {cidr: 203.0.113.0/24}}]\n  ports: [{port: 443, protocol: TCP}]"
			}
			fs = append(fs, endpointFindings(c, f)...)
			continue
		}
		var opens []internetOpening
		for _, p := range a.m.PoliciesIn(c.Namespace) {
			if !p.Isolates(policy.Egress) || !p.Selects(rep) {
				continue
			}
			for _, r := range p.EgressRules {
				o := internetOpening{p: p, allPorts: r.AllPorts}
				for _, po := range r.Ports {
					o.ports = append(o.ports, po.String())
				}
				if r.AllPeers {
					o.path = fmt.Sprintf("spec.egress[%d]", r.Index)
					o.what = "a rule without 'to' (any destination)"
					opens = append(opens, o)
					continue
				}
				for _, pe := range r.Peers {
					if pe.IPBlock == nil || pe.IPBlock.CIDR.Bits() != 0 {
						continue
					}
					o.path = fmt.Sprintf("spec.egress[%d].to[%d]", r.Index, pe.Index)
					o.what = "ipBlock " + pe.IPBlock.String()
					opens = append(opens, o)
				}
			}
		}
		if len(opens) == 0 {
			continue
		}
		f.Severity = Low
		parts := make([]string, 0, len(opens))
		for _, o := range opens {
			on := "all ports"
			if o.allPorts {
				f.Severity = Medium
			} else {
				on = strings.Join(o.ports, ", ")
			}
			parts = append(parts, fmt.Sprintf("%s %s allows %s on %s", o.p.Ref(), o.path, o.what, on))
		}
		if len(parts) > 3 {
			parts = append(parts[:3], fmt.Sprintf("%d more", len(parts)-3))
		}
		f.Message = "egress to the internet: " + strings.Join(parts, "; ")
		f.Pos, f.Path = policyPos(opens[0].p, opens[0].path), opens[0].path
		f.hintKind = "narrow-egress"
		f.Hint = "in place of the open peer, name the destinations it needs (a namespaceSelector and podSelector " +
			"for pods of the cluster), e.g. for an external API:\nto: [{ipBlock: {cidr: 203.0.113.0/24}}]"
		fs = append(fs, endpointFindings(c, f)...)
	}
	return fs
}

// internetProbes are what internetByVerdict asks about, with the
// analysis's probes.
var internetProbes = []policy.Probe{
	{Port: 443, Protocol: corev1.ProtocolTCP}, {Port: 80, Protocol: corev1.ProtocolTCP}, {Port: 53, Protocol: corev1.ProtocolUDP},
}

// internetAddr is an address that stands for the internet: one that no
// ipBlock or network of the model narrower than /0 contains, so that only
// rules open to every address reach it. There is none when the model's
// blocks cover all the candidates.
func (a *analysis) internetAddr() (policy.Party, bool) {
	var prefixes []netip.Prefix
	for _, p := range a.m.Policies {
		for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
			for _, r := range p.Rules(d) {
				for _, pe := range r.Peers {
					if pe.IPBlock != nil && pe.IPBlock.CIDR.Bits() > 0 {
						prefixes = append(prefixes, pe.IPBlock.CIDR)
					}
				}
			}
		}
	}
	for _, p := range a.m.ClusterPolicies {
		for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
			for _, r := range p.Rules(d) {
				for _, pe := range r.Peers {
					for _, n := range pe.Networks {
						if n.Bits() > 0 {
							prefixes = append(prefixes, n)
						}
					}
				}
			}
		}
	}
next:
	for _, cand := range []string{"203.0.113.77", "198.51.100.77", "192.0.2.77", "100.64.0.77", "8.8.8.8"} {
		addr := netip.MustParseAddr(cand)
		for _, p := range prefixes {
			if p.Contains(addr) {
				continue next
			}
		}
		if pa, err := a.m.Party(cand); err == nil && pa.Endpoint == nil && pa.Node == nil {
			return pa, true
		}
	}
	return policy.Party{}, false
}

// internetByVerdict is the internet finding of a class that cluster-wide
// policies govern: the verdict engine decides its egress to an address of
// the internet on the analysis's probes and a few common ones.
func (a *analysis) internetByVerdict(c *policy.Class, internet policy.Party) []Finding {
	rep := c.Rep()
	seen := map[policy.Probe]bool{}
	var open, closed []string
	var last policy.Decision
	for _, pr := range append(append([]policy.Probe(nil), internetProbes...), a.probes...) {
		if pr.Name != "" || seen[pr] {
			continue
		}
		seen[pr] = true
		v := a.m.Verdict(pr.Query(policy.Party{Endpoint: rep}, internet))
		if v.Egress.Allowed {
			open = append(open, pr.String())
			last = v.Egress
		} else {
			closed = append(closed, pr.String())
		}
	}
	if len(open) == 0 {
		return nil
	}
	f := Finding{Kind: KindEgressOpenToInternet, Severity: Low, hintKind: "narrow-cluster-egress"}
	on := "on " + joinLimit(open, 6)
	if len(closed) == 0 {
		f.Severity = Medium
		on = "on every port probed (" + joinLimit(open, 6) + ")"
	}
	f.Message = fmt.Sprintf("egress to the internet (%s) %s: %s", internet, on, last.Reason)
	if r := last.ClusterRule; r != nil {
		f.Pos, f.Path = r.Pos, r.Path
	}
	f.Hint = "end the egress rules of the cluster-wide policies that select it with a Deny of the networks it " +
		"must not reach (a Pass for pod traffic first, if pods must stay reachable), or isolate its egress with a " +
		"NetworkPolicy where the tiers pass it on"
	return endpointFindings(c, f)
}

// Addresses that stand for the outside world in checks (RFC 5737).
const externalResolver = "198.51.100.53" // TEST-NET-2: a resolver outside the cluster

// dnsTargets returns the cluster's DNS servers: endpoints labelled
// k8s-app=kube-dns (the convention of kube-dns and CoreDNS), or named
// kube-system/coredns or kube-system/kube-dns.
func (a *analysis) dnsTargets() []*policy.Endpoint {
	if a.dns == nil {
		a.dns = []*policy.Endpoint{}
		for _, c := range a.classes {
			for _, e := range c.Members {
				if e.Labels["k8s-app"] == "kube-dns" || (e.Namespace == "kube-system" &&
					(e.Name == "coredns" || e.Name == "kube-dns")) {
					a.dns = append(a.dns, e)
				}
			}
		}
		sort.Slice(a.dns, func(i, j int) bool { return a.dns[i].Ref() < a.dns[j].Ref() })
	}
	return a.dns
}

// dnsRuleYAML is an egress rule (a list element) allowing DNS to the
// model's DNS server, or to kube-dns by convention, indented by indent.
func (a *analysis) dnsRuleYAML(indent string) string {
	ns, sel := "kube-system", "{k8s-app: kube-dns}"
	if ts := a.dnsTargets(); len(ts) > 0 {
		t := ts[0]
		ns = t.Namespace
		if t.Labels["k8s-app"] != "kube-dns" && len(t.Labels) > 0 {
			sel = "{" + strings.ReplaceAll(labels.Set(t.Labels).String(), "=", ": ") + "}"
		}
	}
	return indent + "- to:\n" +
		indent + "  - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: " + ns + "}}\n" +
		indent + "    podSelector: {matchLabels: " + sel + "}\n" +
		indent + "  ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]"
}

// egress-blocks-dns: an egress-isolated class that cannot query DNS on
// 53/UDP: to the cluster's DNS server when the model has one (to any of
// them, when several), else to an external resolver (198.51.100.53). The
// verdict engine decides, on the class's first member.
func (a *analysis) dnsFindings() []Finding {
	dns := policy.Probe{Port: 53, Protocol: corev1.ProtocolUDP}
	targets := a.dnsTargets()
	var parties []policy.Party
	for _, t := range targets {
		parties = append(parties, policy.Party{Endpoint: t})
	}
	if len(parties) == 0 {
		p, err := a.m.Party(externalResolver)
		if err != nil {
			return nil // cannot happen: an address always parses
		}
		parties = append(parties, p)
	}
	var fs []Finding
	for d, c := range a.classes {
		if len(a.isoEgress[d]) == 0 && len(a.cpEgress[d]) == 0 {
			continue
		}
		rep := c.Rep()
		var denied *policy.Result
		var to policy.Party
		ok := false
		for _, t := range parties {
			if t.Endpoint == rep {
				ok = len(parties) == 1 // the DNS server itself
				continue
			}
			v := a.m.Verdict(dns.Query(policy.Party{Endpoint: rep}, t))
			if v.Allowed {
				ok = true
				break
			}
			if denied == nil {
				denied, to = &v, t
			}
		}
		if ok || denied == nil {
			continue
		}
		f := Finding{Kind: KindEgressBlocksDNS, Severity: High}
		switch {
		case !denied.Egress.Allowed && denied.Egress.ClusterRule != nil:
			r := denied.Egress.ClusterRule
			f.Message = fmt.Sprintf("the %s denies DNS (53/UDP) to %s: name lookups fail", r, to)
			f.Pos, f.Path = r.Pos, r.Path
			f.hintKind = "dns-cluster-egress"
			f.Hint = "put a rule that accepts DNS before it in " + r.Policy + ", e.g.\n" +
				"- name: allow-dns\n  action: Accept\n  to:\n  - pods:\n" +
				"      namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}\n" +
				"      podSelector: {matchLabels: {k8s-app: kube-dns}}\n" +
				"  protocols: [{udp: {destinationPort: {number: 53}}}, {tcp: {destinationPort: {number: 53}}}]"
		case !denied.Egress.Allowed:
			f.Message = fmt.Sprintf("egress-isolated, and no egress rule of its policies allows DNS (53/UDP) to %s: "+
				"name lookups fail", to)
			f.hintKind = "dns-egress"
			f.Hint = "add an egress rule for DNS to a policy that selects it, or apply this one:\n" +
				"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n" +
				"metadata: {name: allow-dns, namespace: " + c.Namespace + "}\n" +
				"spec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n" + a.dnsRuleYAML("  ")
		case denied.Ingress.ClusterRule != nil:
			r := denied.Ingress.ClusterRule
			f.Message = fmt.Sprintf("the ingress of %s denies it DNS (53/UDP), by the %s: name lookups fail", to, r)
			f.Pos, f.Path = r.Pos, r.Path
			f.hintKind = "dns-cluster-ingress"
			f.Hint = "accept DNS from every namespace before that rule in " + r.Policy
		default:
			prefix := "egress-isolated, and the"
			if len(a.isoEgress[d]) == 0 {
				prefix = "the"
			}
			f.Message = fmt.Sprintf("%s ingress of %s (isolated by %s) does not admit it "+
				"on DNS (53/UDP): name lookups fail", prefix, to, joinLimit(denied.Ingress.IsolatedBy, 3))
			f.hintKind = "dns-ingress"
			f.Hint = fmt.Sprintf("admit DNS from every namespace in the ingress policies of %s:\n"+
				"ingress:\n- from: [{namespaceSelector: {}}]\n  ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]", to)
		}
		fs = append(fs, endpointFindings(c, f)...)
	}
	return fs
}

// netpol-rule-overridden-by-admin-deny: a NetworkPolicy rule whose every
// connection, on the probes analyzed, the Admin tier denies before
// NetworkPolicy is asked: the namespace owner's allow is dead. Only rules
// whose peers are all selectors are judged (an ipBlock or a rule without
// peers also allows addresses outside the cluster, which the classes do
// not enumerate), and only rules that allow something at all (the others
// are peer-matches-nothing). The verdict engine decides each connection.
func (a *analysis) overriddenFindings() []Finding {
	deny := false
	for _, p := range a.m.AdminPolicies() {
		for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
			for _, r := range p.Rules(d) {
				deny = deny || r.Action == policy.ActionDeny
			}
		}
	}
	if !deny {
		return nil
	}
	var fs []Finding
	for _, p := range a.m.Policies {
		var subjects []int
		for c, cl := range a.classes {
			if !cl.Rep().HostNetwork && p.Selects(cl.Rep()) {
				subjects = append(subjects, c)
			}
		}
		for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
			if !p.Isolates(d) {
				continue
			}
			for _, r := range p.Rules(d) {
				if f, ok := a.overridden(p, d, &r, subjects); ok {
					fs = append(fs, f)
				}
			}
		}
	}
	return fs
}

// overridden judges one rule; see overriddenFindings.
func (a *analysis) overridden(p *policy.Policy, d policy.Direction, r *policy.Rule, subjects []int) (Finding, bool) {
	if r.AllPeers || len(subjects) == 0 {
		return Finding{}, false
	}
	for _, pe := range r.Peers {
		if pe.IPBlock != nil {
			return Finding{}, false
		}
	}
	var peers []int
	for c, cl := range a.classes {
		for i := range r.Peers {
			if r.Peers[i].MatchesEndpoint(p.Namespace, cl.Rep()) {
				peers = append(peers, c)
				break
			}
		}
	}
	by := map[string]*policy.ClusterRuleRef{}
	var order []string
	allowed := 0
	for _, s := range subjects {
		for _, x := range peers {
			if s == x && len(a.classes[s].Members) < 2 {
				continue // a pod and itself: loopback, not policy
			}
			subject, peer := a.classes[s].Rep(), a.classes[x].Rep()
			src, dst := subject, peer
			if d == policy.Ingress {
				src, dst = peer, subject
			}
			for _, pr := range a.probes {
				num, ok := resolveProbe(pr, dst)
				if !ok || !ruleAllowsPort(r, dst, num, pr.Protocol) {
					continue
				}
				allowed++
				v := a.m.Verdict(pr.Query(policy.Party{Endpoint: src}, policy.Party{Endpoint: dst}))
				dec := v.Egress
				if d == policy.Ingress {
					dec = v.Ingress
				}
				if dec.By != "admin" || dec.Allowed {
					return Finding{}, false
				}
				if k := dec.ClusterRule.String(); by[k] == nil {
					by[k] = dec.ClusterRule
					order = append(order, k)
				}
			}
		}
	}
	if allowed == 0 {
		return Finding{}, false
	}
	path := fmt.Sprintf("spec.%s[%d]", d, r.Index)
	var rules []string
	for _, k := range order {
		ref := by[k]
		rules = append(rules, fmt.Sprintf("%s (%s)", ref, ref.Pos))
	}
	return Finding{
		Kind: KindOverriddenByAdmin, Severity: Low, hintKind: "overridden-by-admin",
		Subject: p.Ref(), SubjectKind: SubjectPolicy, Namespace: p.Namespace,
		Path: path, Pos: policyPos(p, path),
		Message: fmt.Sprintf("%s: every connection this rule allows (on the probes analyzed) is denied first by the %s: "+
			"the rule has no effect", path, joinLimit(rules, 2)),
		Hint: "remove the rule, or ask the cluster administrator for an Accept or a Pass before that Deny in the Admin " +
			"tier: the Admin tier decides before any NetworkPolicy",
	}, true
}

// resolveProbe is the port number a probe means at destination e.
func resolveProbe(pr policy.Probe, e *policy.Endpoint) (int32, bool) {
	if pr.Name == "" {
		return pr.Port, true
	}
	for _, cp := range e.Ports {
		if cp.Name == pr.Name && cp.Protocol == pr.Protocol {
			return cp.Port, true
		}
	}
	return 0, false
}

func ruleAllowsPort(r *policy.Rule, dst *policy.Endpoint, num int32, proto corev1.Protocol) bool {
	if r.AllPorts {
		return true
	}
	for i := range r.Ports {
		if r.Ports[i].Matches(dst, num, proto) {
			return true
		}
	}
	return false
}

// domain-names-not-enforced: a rule of a cluster-wide policy with domain
// names. Nothing in Rampart resolves names: the analysis, the verdict
// engine and the node agents take such a peer to match no address, which
// never allows more than the policy says (upstream allows domain names in
// Accept rules only), but denies that traffic where a later rule denies.
func (a *analysis) domainNameFindings() []Finding {
	var fs []Finding
	for _, p := range a.m.ClusterPolicies {
		for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
			for _, r := range p.Rules(d) {
				for _, pe := range r.Peers {
					if len(pe.DomainNames) == 0 {
						continue
					}
					path := p.PeerPath(d, r.Index, pe.Index)
					fs = append(fs, Finding{
						Kind: KindDomainNamesNotEnforced, Severity: Info, hintKind: "domain-names",
						Subject: p.Ref(), SubjectKind: SubjectClusterPolicy, Path: path, Pos: pos(p.Origin(), path),
						Message: fmt.Sprintf("%s: %s rule %d accepts traffic to %s: Rampart does not resolve domain names, "+
							"so it takes this peer to match no address, here and on the nodes: that traffic is decided by "+
							"the rules after it", path, d, r.Index+1, strings.Join(pe.DomainNames, ", ")),
						Hint: "if the names' addresses are stable, add them as a networks peer of the same rule",
					})
				}
			}
		}
	}
	return fs
}

// policy-selects-nothing and peer-matches-nothing: selectors that match no
// endpoint of the input. With manifests, the workloads may simply be
// missing from the input; the hint says so.
func (a *analysis) selectorFindings() []Finding {
	var fs []Finding
	peerMatch := map[string]string{} // peer key → "" when it matches, else why not
	nsMatches := map[string]nsMatch{}
	for _, p := range a.m.Policies {
		var any, pods bool
		if ni, ok := a.nsIndex[p.Namespace]; ok {
			for _, c := range a.nsClasses[ni] {
				rep := a.classes[c].Rep()
				if p.Selector.Matches(rep.Labels) {
					any = true
					if !rep.HostNetwork {
						pods = true
						break
					}
				}
			}
		}
		if !pods {
			f := Finding{
				Kind: KindPolicySelectsNothing, Severity: Low, hintKind: "selects-nothing",
				Subject: p.Ref(), SubjectKind: SubjectPolicy, Namespace: p.Namespace,
				Path: "spec.podSelector", Pos: policyPos(p, "spec.podSelector"),
				Message: fmt.Sprintf("spec.podSelector %s matches no pod of namespace %s in the input: "+
					"the policy has no effect", selectorString(p.Selector), p.Namespace),
				Hint: "fix spec.podSelector to match the labels of the pods it is meant for (kubectl get pods -n " +
					p.Namespace + " --show-labels), or delete the policy; if those workloads are not in the " +
					"input, add their manifests",
			}
			if any {
				f.Message = fmt.Sprintf("spec.podSelector %s matches only hostNetwork pods, which NetworkPolicy "+
					"does not isolate: the policy has no effect", selectorString(p.Selector))
			}
			fs = append(fs, f)
		}
		for _, dir := range []policy.Direction{policy.Ingress, policy.Egress} {
			field := "from"
			if dir == policy.Egress {
				field = "to"
			}
			for _, r := range p.Rules(dir) {
				for i := range r.Peers {
					pe := &r.Peers[i]
					if pe.IPBlock != nil {
						continue
					}
					why := a.peerMatches(p.Namespace, pe, peerMatch, nsMatches)
					if why == "" {
						continue
					}
					path := fmt.Sprintf("spec.%s[%d].%s[%d]", dir, r.Index, field, pe.Index)
					fs = append(fs, Finding{
						Kind: KindPeerMatchesNothing, Severity: Low, hintKind: "peer-matches-nothing",
						Subject: p.Ref(), SubjectKind: SubjectPolicy, Namespace: p.Namespace,
						Path: path, Pos: policyPos(p, path),
						Message: path + ": " + why + ": the peer admits nothing",
						Hint: "fix the selector to match the intended pods' labels (every namespace also has the " +
							"label kubernetes.io/metadata.name=<name>), or remove the peer; if those workloads are " +
							"not in the input, add their manifests",
					})
				}
			}
		}
	}
	return fs
}

// peerMatches returns "" when a selector peer of a policy in namespace
// policyNS matches some (non-hostNetwork) endpoint, else why not. It works
// on class representatives, and caches by the selectors' canonical strings.
func (a *analysis) peerMatches(policyNS string, pe *policy.Peer, cache map[string]string, nsCache map[string]nsMatch) string {
	nsKey := "in:" + policyNS
	if pe.Namespaces != nil {
		nsKey = "ns:" + pe.Namespaces.String()
	}
	podKey := "*"
	if pe.Pods != nil {
		podKey = "pod:" + pe.Pods.String()
	}
	key := nsKey + "|" + podKey
	if why, ok := cache[key]; ok {
		return why
	}
	nm, ok := nsCache[nsKey]
	if !ok {
		if pe.Namespaces == nil {
			nm.any = true
			if ni, ok := a.nsIndex[policyNS]; ok {
				nm.idx = []int{ni}
			}
		} else {
			for _, ns := range a.m.Namespaces {
				if pe.Namespaces.Matches(ns.Labels) {
					nm.any = true
					if ni, ok := a.nsIndex[ns.Name]; ok {
						nm.idx = append(nm.idx, ni)
					}
				}
			}
		}
		nsCache[nsKey] = nm
	}
	why := ""
	if !nm.any {
		why = fmt.Sprintf("namespaceSelector %s matches no namespace", selectorString(pe.Namespaces))
	} else if !a.anyPod(nm.idx, pe.Pods) {
		where := "namespace " + policyNS
		if pe.Namespaces != nil {
			where = "the namespaces matching " + selectorString(pe.Namespaces)
		}
		sel := "no pod"
		if pe.Pods != nil {
			sel = "no pod matching " + selectorString(pe.Pods)
		}
		why = fmt.Sprintf("%s in %s", sel, where)
	}
	cache[key] = why
	return why
}

// nsMatch is what a peer's namespace part matches: whether any namespace
// of the model, and which of those with endpoints.
type nsMatch struct {
	any bool
	idx []int
}

// anyPod reports whether a (non-hostNetwork) endpoint of the namespaces
// matches pods (nil: any pod).
func (a *analysis) anyPod(nsIdx []int, pods labels.Selector) bool {
	for _, ni := range nsIdx {
		for _, c := range a.nsClasses[ni] {
			rep := a.classes[c].Rep()
			if !rep.HostNetwork && (pods == nil || pods.Matches(rep.Labels)) {
				return true
			}
		}
	}
	return false
}

// selectorString renders a selector as the user wrote it, "{}" when it
// selects everything.
func selectorString(s labels.Selector) string {
	if s.Empty() {
		return "{}"
	}
	return "\"" + s.String() + "\""
}

// blastFinding summarizes a blast radius.
func blastFinding(comp *policy.Endpoint, br *BlastRadius) Finding {
	f := Finding{
		Kind: KindBlastRadius, Severity: Info,
		Subject: comp.Ref(), SubjectKind: SubjectEndpoint, Namespace: comp.Namespace, Pos: endpointPos(comp),
	}
	namespaces := map[string]bool{}
	direct, maxDepth, foreign := 0, 0, false
	for _, r := range br.Reachable {
		ns, _, _ := strings.Cut(r.Endpoint, "/")
		namespaces[ns] = true
		foreign = foreign || ns != comp.Namespace
		if r.Depth == 1 {
			direct++
		}
		maxDepth = max(maxDepth, r.Depth)
	}
	if len(br.Reachable) == 0 {
		f.Message = "if compromised, it reaches no other endpoint"
		return f
	}
	f.Severity = Medium
	if foreign {
		f.Severity = High
	}
	f.Message = fmt.Sprintf("if compromised, it reaches %s in %s (%d directly, up to %s away)",
		plural(len(br.Reachable), "endpoint"), plural(len(namespaces), "namespace"), direct, plural(maxDepth, "hop"))
	f.hintKind = "blast-radius"
	f.Hint = "cut the first hops of the paths in the blast radius: isolate this endpoint's egress to what it needs, " +
		"and the ingress of the endpoints it reaches directly to their real clients"
	return f
}

// joinLimit joins at most n strings, and says how many more there are.
func joinLimit(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(" and %d more", len(s)-n)
}
