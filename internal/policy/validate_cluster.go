package policy

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"github.com/rampartnet/rampart/internal/cluster"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	npav1alpha1 "sigs.k8s.io/network-policy-api/apis/v1alpha1"
	npav1alpha2 "sigs.k8s.io/network-policy-api/apis/v1alpha2"
)

// Validation of the cluster-wide policies, as their CRDs define it
// (config/crd of sigs.k8s.io/network-policy-api v0.2.0: the OpenAPI
// schema's enums, bounds, MinItems/MaxItems and MinProperties/MaxProperties,
// and the CEL rules), plus what the API documentation states without the
// CRD checking it (domainNames only in Accept rules, a range's start below
// its end in v1alpha1), and Rampart's warnings: same-priority ties,
// subjects that select nothing, and domain names, which Rampart does not
// enforce.

// Limits of the API.
const (
	maxRulesV1alpha2 = 25  // spec.ingress, spec.egress of a ClusterNetworkPolicy
	maxRulesV1alpha1 = 100 // the same in v1alpha1
	maxPeersV1alpha2 = 25  // from, to and protocols in v1alpha2
	maxPeersV1alpha1 = 100 // from, to and ports in v1alpha1
	maxNetworks      = 25  // networks and domainNames, both versions
	maxRuleName      = 100
	maxCIDRLength    = 43
)

// domainNamePattern is the CRD's pattern for a DomainName, as written there
// (its "A-z" admits a few punctuation characters too; so does the API server).
var domainNamePattern = regexp.MustCompile(`^(\*\.)?([a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.)+[a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?$`)

// cpv validates one cluster-wide policy: the object, its origin, and the
// words of its API version.
type cpv struct {
	v      *validator
	o      *cluster.Origin
	obj    string
	v1     bool // v1alpha1: Allow for Accept, ports for protocols, 100 for 25
	accept string
}

func (c *cpv) errorf(path, format string, args ...any) { c.v.errorf(c.o, c.obj, path, format, args...) }

func (c *cpv) warnf(path, hint, format string, args ...any) {
	d := cluster.At(cluster.Warning, c.o, c.obj, path, format, args...)
	if hint != "" {
		d = d.WithHint("%s", hint)
	}
	c.v.diags = append(c.v.diags, d)
}

// required reports a field the API requires that the manifest leaves out.
func (c *cpv) required(path string) bool {
	if c.o.Has(path) {
		return true
	}
	c.errorf(path, "Required value")
	return false
}

func (c *cpv) selector(path string, s *metav1.LabelSelector) {
	c.v.fieldErrors(c.o, c.obj, metav1validation.ValidateLabelSelector(s, selectorOpts, field.NewPath(path)))
}

func (c *cpv) meta(meta *metav1.ObjectMeta) {
	for _, msg := range validation.IsDNS1123Subdomain(meta.Name) {
		c.errorf("metadata.name", "%s", msg)
	}
	if meta.Namespace != "" {
		c.warnf("metadata.namespace", "remove metadata.namespace",
			"is ignored: %s is cluster-scoped", strings.SplitN(c.obj, " ", 2)[0])
	}
}

func (c *cpv) count(path string, n, min, max int) {
	switch {
	case n < min:
		c.errorf(path, "should have at least %d items", min)
	case n > max:
		c.errorf(path, "must have at most %d items", max)
	}
}

func (c *cpv) subject(ns *metav1.LabelSelector, pods *namespacedPod) {
	if !c.required("spec.subject") {
		return
	}
	switch {
	case ns != nil && pods != nil:
		c.errorf("spec.subject", "must have at most 1 properties: set namespaces or pods, not both")
	case ns != nil:
		c.selector("spec.subject.namespaces", ns)
	case pods != nil:
		c.selector("spec.subject.pods.namespaceSelector", &pods.namespaces)
		c.selector("spec.subject.pods.podSelector", &pods.pods)
	default:
		c.errorf("spec.subject", "should have at least 1 properties: set namespaces or pods")
	}
}

// rule checks what both versions' rules share: the name, the action, and
// the peers. It returns whether the rule has a peer of the kinds that have
// no named ports (networks, nodes, domainNames).
func (c *cpv) rule(d Direction, i int, name, action string, actions []string, peers []peerSpec) (addressPeer bool) {
	path := fmt.Sprintf("spec.%s[%d]", d, i)
	if len(name) > maxRuleName {
		c.errorf(path+".name", "may not be longer than %d", maxRuleName)
	}
	if c.required(path + ".action") {
		ok := false
		for _, a := range actions {
			ok = ok || a == action
		}
		if !ok {
			quoted := make([]string, len(actions))
			for k, a := range actions {
				quoted[k] = fmt.Sprintf("%q", a)
			}
			c.errorf(path+".action", "Unsupported value: %q: supported values: %s", action, strings.Join(quoted, ", "))
		}
	}
	field := "from"
	if d == Egress {
		field = "to"
	}
	max := maxPeersV1alpha2
	if c.v1 {
		max = maxPeersV1alpha1
	}
	if c.required(path + "." + field) {
		c.count(path+"."+field, len(peers), 1, max)
	}
	for j, pe := range peers {
		ppath := fmt.Sprintf("%s.%s[%d]", path, field, j)
		switch n := pe.fields(); {
		case n == 0:
			c.v.diags = append(c.v.diags, cluster.At(cluster.Error, c.o, c.obj, ppath,
				"should have at least 1 properties: a peer sets exactly one of its fields").
				WithHint("an empty peer is refused; upstream asks implementations that meet one anyway to fail closed"))
			continue
		case n > 1:
			c.errorf(ppath, "must have at most 1 properties: a peer sets exactly one of its fields; write one peer per field")
			continue
		}
		switch {
		case pe.namespaces != nil:
			c.selector(ppath+".namespaces", pe.namespaces)
		case pe.pods != nil:
			c.selector(ppath+".pods.namespaceSelector", &pe.pods.namespaces)
			c.selector(ppath+".pods.podSelector", &pe.pods.pods)
		case pe.nodes != nil:
			addressPeer = true
			c.selector(ppath+".nodes", pe.nodes)
		case pe.networks != nil:
			addressPeer = true
			c.networks(ppath+".networks", pe.networks)
		case pe.domainNames != nil:
			addressPeer = true
			c.domainNames(ppath+".domainNames", pe.domainNames, action)
		}
	}
	return addressPeer
}

func (c *cpv) networks(path string, nets []string) {
	c.count(path, len(nets), 1, maxNetworks)
	seen := map[string]bool{}
	for k, n := range nets {
		npath := fmt.Sprintf("%s[%d]", path, k)
		if seen[n] {
			c.errorf(npath, "Duplicate value: %q", n)
		}
		seen[n] = true
		if len(n) > maxCIDRLength {
			c.errorf(npath, "may not be longer than %d", maxCIDRLength)
			continue
		}
		// The CRD's isCIDR(self): what netip.ParsePrefix reads.
		pfx, err := netip.ParsePrefix(n)
		if err != nil {
			c.errorf(npath, "Invalid CIDR format provided: %q (e.g. 10.0.0.0/8 or fd00::/8)", n)
			continue
		}
		if pfx.Masked() != pfx {
			c.warnf(npath, "write "+pfx.Masked().String(), "%s has host bits set; it means %s", n, pfx.Masked())
		}
	}
}

func (c *cpv) domainNames(path string, names []string, action string) {
	c.count(path, len(names), 1, maxNetworks)
	seen := map[string]bool{}
	bad := false
	for k, n := range names {
		npath := fmt.Sprintf("%s[%d]", path, k)
		if seen[n] {
			c.errorf(npath, "Duplicate value: %q", n)
		}
		seen[n] = true
		if !domainNamePattern.MatchString(n) {
			bad = true
			c.errorf(npath, "%q is not a domain name: want a name such as example.com, or *.example.com for its subdomains", n)
		}
	}
	if action != c.accept {
		c.v.diags = append(c.v.diags, cluster.At(cluster.Error, c.o, c.obj, path,
			"domainNames is only supported for %s rules, not %s", c.accept, action).
			WithHint("keep domain names in an %s rule, and put the %s rule that closes the rest after it", c.accept, action))
		return
	}
	if bad {
		return // the errors say enough until the names are fixed
	}
	c.warnf(path, "if the names' addresses are stable, add them as a networks peer of the same rule",
		"not enforced: Rampart does not resolve domain names, so it takes this peer to match no address; traffic to %s "+
			"is decided by the rules after this one: never allowed more than the policy says, but denied where a later "+
			"rule denies", strings.Join(names, ", "))
}

// namedPortWithAddresses is the CEL rule of egress rules: a named port
// resolves against a pod's container ports, which networks, nodes and
// domain names do not have.
func (c *cpv) namedPortWithAddresses(path string, addressPeer, named bool) {
	if addressPeer && named {
		c.errorf(path, "networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for networks/nodes/domainNames")
	}
}

func (c *cpv) port(path string, n int32) {
	for _, msg := range validation.IsValidPortNum(int(n)) {
		c.errorf(path, "%s", msg)
	}
}

func (c *cpv) portRange(path string, start, end int32) {
	c.port(path+".start", start)
	c.port(path+".end", end)
	if start >= end {
		c.errorf(path, "Start port must be less than End port (%d is not below %d)", start, end)
	}
}

// namedPort warns about a name that no container port can have: the CRD
// does not check it, and it would match nothing.
func (c *cpv) namedPort(path, name string) {
	if msgs := validation.IsValidPortName(name); len(msgs) > 0 {
		c.warnf(path, "use the name of a containerPort of the destination pods",
			"%q can name no container port (%s): it matches nothing", name, strings.Join(msgs, "; "))
	}
}

func (v *validator) clusterNetworkPolicy(p *cluster.ClusterNetworkPolicy) {
	c := &cpv{v: v, o: p.Origin, obj: cluster.ObjectName(KindClusterNetworkPolicy, "", p.Name), accept: "Accept"}
	c.meta(&p.ObjectMeta)
	spec := &p.Spec
	if c.required("spec.tier") && spec.Tier != npav1alpha2.AdminTier && spec.Tier != npav1alpha2.BaselineTier {
		c.errorf("spec.tier", "Unsupported value: %q: supported values: \"Admin\", \"Baseline\"", spec.Tier)
	}
	if c.required("spec.priority") && (spec.Priority < 0 || spec.Priority > MaxPriority) {
		c.errorf("spec.priority", "must be between 0 and %d, inclusive (got %d)", MaxPriority, spec.Priority)
	}
	c.subject(spec.Subject.Namespaces, namespacedPod2(spec.Subject.Pods))
	if len(spec.Ingress) > maxRulesV1alpha2 {
		c.errorf("spec.ingress", "must have at most %d items", maxRulesV1alpha2)
	}
	if len(spec.Egress) > maxRulesV1alpha2 {
		c.errorf("spec.egress", "must have at most %d items", maxRulesV1alpha2)
	}
	actions := []string{"Accept", "Deny", "Pass"}
	for i, r := range spec.Ingress {
		peers := make([]peerSpec, len(r.From))
		for j, pe := range r.From {
			peers[j] = peerSpec{namespaces: pe.Namespaces, pods: namespacedPod2(pe.Pods)}
		}
		c.rule(Ingress, i, r.Name, string(r.Action), actions, peers)
		c.protocols(fmt.Sprintf("spec.ingress[%d].protocols", i), r.Protocols)
	}
	for i, r := range spec.Egress {
		peers := make([]peerSpec, len(r.To))
		for j, pe := range r.To {
			peers[j] = peerSpec{namespaces: pe.Namespaces, pods: namespacedPod2(pe.Pods), nodes: pe.Nodes,
				networks: strs(pe.Networks), domainNames: strs(pe.DomainNames)}
		}
		addr := c.rule(Egress, i, r.Name, string(r.Action), actions, peers)
		named := c.protocols(fmt.Sprintf("spec.egress[%d].protocols", i), r.Protocols)
		c.namedPortWithAddresses(fmt.Sprintf("spec.egress[%d]", i), addr, named)
	}
}

// protocols checks v1alpha2 protocols, and says whether one is a named port.
func (c *cpv) protocols(path string, ps []npav1alpha2.ClusterNetworkPolicyProtocol) (named bool) {
	if ps == nil {
		return false
	}
	c.count(path, len(ps), 1, maxPeersV1alpha2)
	for k, pr := range ps {
		ppath := fmt.Sprintf("%s[%d]", path, k)
		n := 0
		check := func(proto string, d *npav1alpha2.Port) {
			n++
			dpath := ppath + "." + proto + ".destinationPort"
			if d == nil {
				c.errorf(ppath+"."+proto, "should have at least 1 properties: set destinationPort")
				return
			}
			switch {
			case d.Number != 0 && d.Range != nil:
				c.errorf(dpath, "must have at most 1 properties: set number or range, not both")
			case d.Number != 0:
				c.port(dpath+".number", d.Number)
			case d.Range != nil:
				c.portRange(dpath+".range", d.Range.Start, d.Range.End)
			default:
				c.errorf(dpath, "should have at least 1 properties: set number or range")
			}
		}
		if pr.TCP != nil {
			check("tcp", pr.TCP.DestinationPort)
		}
		if pr.UDP != nil {
			check("udp", pr.UDP.DestinationPort)
		}
		if pr.SCTP != nil {
			check("sctp", pr.SCTP.DestinationPort)
		}
		if pr.DestinationNamedPort != "" {
			n++
			named = true
			c.namedPort(ppath+".destinationNamedPort", pr.DestinationNamedPort)
		}
		switch {
		case n == 0:
			c.errorf(ppath, "should have at least 1 properties: set one of tcp, udp, sctp and destinationNamedPort")
		case n > 1:
			c.errorf(ppath, "must have at most 1 properties: set one of tcp, udp, sctp and destinationNamedPort per entry")
		}
	}
	return named
}

// ports checks v1alpha1 ports, and says whether one is a named port.
func (c *cpv) ports(path string, ps *[]npav1alpha1.AdminNetworkPolicyPort) (named bool) {
	if ps == nil {
		return false
	}
	c.count(path, len(*ps), 1, maxPeersV1alpha1)
	for k, pr := range *ps {
		ppath := fmt.Sprintf("%s[%d]", path, k)
		n := 0
		proto := func(path string, p corev1.Protocol) {
			if p != "" && !validProtocol(p, false) {
				c.errorf(path, "Unsupported value: %q: supported values: \"SCTP\", \"TCP\", \"UDP\"", p)
			}
		}
		if pr.PortNumber != nil {
			n++
			proto(ppath+".portNumber.protocol", pr.PortNumber.Protocol)
			c.port(ppath+".portNumber.port", pr.PortNumber.Port)
		}
		if pr.NamedPort != nil {
			n++
			named = true
			c.namedPort(ppath+".namedPort", *pr.NamedPort)
		}
		if pr.PortRange != nil {
			n++
			proto(ppath+".portRange.protocol", pr.PortRange.Protocol)
			c.portRange(ppath+".portRange", pr.PortRange.Start, pr.PortRange.End)
		}
		switch {
		case n == 0:
			c.errorf(ppath, "should have at least 1 properties: set one of portNumber, namedPort and portRange")
		case n > 1:
			c.errorf(ppath, "must have at most 1 properties: set one of portNumber, namedPort and portRange per entry")
		}
	}
	return named
}

func (v *validator) adminNetworkPolicy(p *cluster.AdminNetworkPolicy) {
	c := &cpv{v: v, o: p.Origin, obj: cluster.ObjectName(KindAdminNetworkPolicy, "", p.Name), v1: true, accept: "Allow"}
	c.meta(&p.ObjectMeta)
	spec := &p.Spec
	if c.required("spec.priority") && (spec.Priority < 0 || spec.Priority > MaxPriority) {
		c.errorf("spec.priority", "must be between 0 and %d, inclusive (got %d)", MaxPriority, spec.Priority)
	}
	c.subject(spec.Subject.Namespaces, namespacedPod1(spec.Subject.Pods))
	if len(spec.Ingress) > maxRulesV1alpha1 {
		c.errorf("spec.ingress", "must have at most %d items", maxRulesV1alpha1)
	}
	if len(spec.Egress) > maxRulesV1alpha1 {
		c.errorf("spec.egress", "must have at most %d items", maxRulesV1alpha1)
	}
	actions := []string{"Allow", "Deny", "Pass"}
	for i, r := range spec.Ingress {
		c.rule(Ingress, i, r.Name, string(r.Action), actions, ingressPeers1(r.From))
		c.ports(fmt.Sprintf("spec.ingress[%d].ports", i), r.Ports)
	}
	for i, r := range spec.Egress {
		peers := make([]peerSpec, len(r.To))
		for j, pe := range r.To {
			peers[j] = peerSpec{namespaces: pe.Namespaces, pods: namespacedPod1(pe.Pods), nodes: pe.Nodes,
				networks: strs(pe.Networks), domainNames: strs(pe.DomainNames)}
		}
		addr := c.rule(Egress, i, r.Name, string(r.Action), actions, peers)
		named := c.ports(fmt.Sprintf("spec.egress[%d].ports", i), r.Ports)
		c.namedPortWithAddresses(fmt.Sprintf("spec.egress[%d]", i), addr, named)
	}
}

func (v *validator) baselineAdminNetworkPolicy(p *cluster.BaselineAdminNetworkPolicy) {
	c := &cpv{v: v, o: p.Origin, obj: cluster.ObjectName(KindBaselineAdminNetworkPolicy, "", p.Name), v1: true, accept: "Allow"}
	c.meta(&p.ObjectMeta)
	if p.Name != "default" {
		v.diags = append(v.diags, cluster.At(cluster.Error, p.Origin, c.obj, "metadata.name",
			"Only one baseline admin network policy with metadata.name=\"default\" can be created in the cluster").
			WithHint("name it default"))
	}
	spec := &p.Spec
	c.subject(spec.Subject.Namespaces, namespacedPod1(spec.Subject.Pods))
	if len(spec.Ingress) > maxRulesV1alpha1 {
		c.errorf("spec.ingress", "must have at most %d items", maxRulesV1alpha1)
	}
	if len(spec.Egress) > maxRulesV1alpha1 {
		c.errorf("spec.egress", "must have at most %d items", maxRulesV1alpha1)
	}
	actions := []string{"Allow", "Deny"}
	for i, r := range spec.Ingress {
		c.rule(Ingress, i, r.Name, string(r.Action), actions, ingressPeers1(r.From))
		c.ports(fmt.Sprintf("spec.ingress[%d].ports", i), r.Ports)
	}
	for i, r := range spec.Egress {
		peers := make([]peerSpec, len(r.To))
		for j, pe := range r.To {
			peers[j] = peerSpec{namespaces: pe.Namespaces, pods: namespacedPod1(pe.Pods), nodes: pe.Nodes,
				networks: strs(pe.Networks)}
		}
		addr := c.rule(Egress, i, r.Name, string(r.Action), actions, peers)
		named := c.ports(fmt.Sprintf("spec.egress[%d].ports", i), r.Ports)
		c.namedPortWithAddresses(fmt.Sprintf("spec.egress[%d]", i), addr, named)
	}
}

// tierEntry is what the tie and subject checks need of one policy.
type tierEntry struct {
	kind, name string
	tier       Tier
	priority   int32
	o          *cluster.Origin
	ns         *metav1.LabelSelector
	pods       *namespacedPod
}

func (e tierEntry) obj() string { return cluster.ObjectName(e.kind, "", e.name) }

// clusterPolicies validates the three kinds, then what concerns them
// together: ties of priority within a tier, the two Baseline kinds side by
// side, and subjects that select no pod of the input.
func (v *validator) clusterPolicies(s *cluster.Snapshot) {
	var entries []tierEntry
	for _, p := range s.ClusterNetworkPolicies {
		v.clusterNetworkPolicy(p)
		t := AdminTier
		if p.Spec.Tier == npav1alpha2.BaselineTier {
			t = BaselineTier
		} else if p.Spec.Tier != npav1alpha2.AdminTier {
			continue
		}
		entries = append(entries, tierEntry{KindClusterNetworkPolicy, p.Name, t, p.Spec.Priority, p.Origin,
			p.Spec.Subject.Namespaces, namespacedPod2(p.Spec.Subject.Pods)})
	}
	for _, p := range s.AdminNetworkPolicies {
		v.adminNetworkPolicy(p)
		entries = append(entries, tierEntry{KindAdminNetworkPolicy, p.Name, AdminTier, p.Spec.Priority, p.Origin,
			p.Spec.Subject.Namespaces, namespacedPod1(p.Spec.Subject.Pods)})
	}
	cnpBaseline := ""
	for _, e := range entries {
		if e.tier == BaselineTier && cnpBaseline == "" {
			cnpBaseline = e.obj()
		}
	}
	for _, p := range s.BaselineAdminNetworkPolicies {
		v.baselineAdminNetworkPolicy(p)
		e := tierEntry{KindBaselineAdminNetworkPolicy, p.Name, BaselineTier, BaselineAdminPriority, p.Origin,
			p.Spec.Subject.Namespaces, namespacedPod1(p.Spec.Subject.Pods)}
		entries = append(entries, e)
		if cnpBaseline != "" {
			v.diags = append(v.diags, cluster.At(cluster.Warning, p.Origin, e.obj(), "",
				"shares the Baseline tier with %s and other ClusterNetworkPolicies: upstream defines no order between "+
					"the v1alpha1 and v1alpha2 kinds; Rampart evaluates this one after them", cnpBaseline).
				WithHint("move its rules into a ClusterNetworkPolicy with tier: Baseline and a priority of its own"))
		}
	}
	// Ties: "If two (or more) policies in the same tier with the same
	// priority could match a connection, then the implementation can apply
	// any of the matching policies" (ClusterNetworkPolicySpec.Priority).
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if a.tier != b.tier {
			return a.tier < b.tier
		}
		if a.priority != b.priority {
			return a.priority < b.priority
		}
		if a.name != b.name {
			return a.name < b.name
		}
		return a.kind < b.kind
	})
	for i := 1; i < len(entries); i++ {
		first, e := entries[i-1], entries[i]
		for k := i - 1; k > 0 && entries[k-1].tier == e.tier && entries[k-1].priority == e.priority; k-- {
			first = entries[k-1]
		}
		if e.tier != first.tier || e.priority != first.priority || e.priority > MaxPriority {
			continue
		}
		tier := "Admin"
		if e.tier == BaselineTier {
			tier = "Baseline"
		}
		v.diags = append(v.diags, cluster.At(cluster.Warning, e.o, e.obj(), "spec.priority",
			"has the same priority (%d) as %s in the %s tier: upstream leaves their order undefined where both match "+
				"a connection; Rampart applies %s first (by name)", e.priority, first.obj(), tier, first.obj()).
			WithHint("give each policy of a tier its own priority"))
	}
	v.clusterSubjects(s, entries)
}

// clusterSubjects warns about policies whose subject selects no pod of
// the input, as for a NetworkPolicy's podSelector.
func (v *validator) clusterSubjects(s *cluster.Snapshot, entries []tierEntry) {
	nsLabels := map[string]labels.Set{}
	for _, n := range s.Namespaces {
		set := labels.Set{corev1.LabelMetadataName: n.Name}
		for k, val := range n.Labels {
			set[k] = val
		}
		nsLabels[n.Name] = set
	}
	for _, e := range entries {
		var nsSel, podSel labels.Selector
		var err error
		switch {
		case e.ns != nil && e.pods == nil:
			nsSel, err = metav1.LabelSelectorAsSelector(e.ns)
		case e.pods != nil && e.ns == nil:
			if nsSel, err = metav1.LabelSelectorAsSelector(&e.pods.namespaces); err == nil {
				podSel, err = metav1.LabelSelectorAsSelector(&e.pods.pods)
			}
		default:
			continue // reported by subject
		}
		if err != nil {
			continue // reported by the selector's validation
		}
		found := false
		for _, p := range s.Pods {
			nl, ok := nsLabels[p.Namespace]
			if !ok {
				nl = labels.Set{corev1.LabelMetadataName: p.Namespace}
			}
			if !p.Spec.HostNetwork && nsSel.Matches(nl) && (podSel == nil || podSel.Matches(labels.Set(p.Labels))) {
				found = true
				break
			}
		}
		if !found {
			v.diags = append(v.diags, cluster.At(cluster.Warning, e.o, e.obj(), "spec.subject",
				"selects no pod or workload of the input (hostNetwork pods are never subjects)").
				WithHint("check the subject's selectors against the namespaces' and pod templates' labels"))
		}
	}
}
