package policy

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/rampartnet/rampart/internal/cluster"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validate checks the objects of a snapshot as the API server does on
// create (pkg/apis/networking/validation in kubernetes/kubernetes:
// ValidateNetworkPolicySpec, ValidateNetworkPolicyPort, ValidateIPBlock;
// for the cluster-wide policies, their CRDs: validate_cluster.go), and
// adds Rampart's warnings about policies that are valid but probably not
// what was meant.
func Validate(s *cluster.Snapshot) []cluster.Diagnostic {
	v := &validator{}
	for _, ns := range s.Namespaces {
		obj := cluster.ObjectName("Namespace", "", ns.Name)
		for _, msg := range validation.IsDNS1123Label(ns.Name) {
			v.errorf(ns.Origin, obj, "metadata.name", "%s", msg)
		}
		v.labels(ns.Origin, obj, "metadata.labels", ns.Labels)
	}
	for _, p := range s.Pods {
		v.pod(p)
	}
	for _, n := range s.Nodes {
		obj := cluster.ObjectName("Node", "", n.Name)
		for _, msg := range validation.IsDNS1123Subdomain(n.Name) {
			v.errorf(n.Origin, obj, "metadata.name", "%s", msg)
		}
		for i, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
				if _, err := netip.ParseAddr(a.Address); err != nil {
					v.errorf(n.Origin, obj, fmt.Sprintf("status.addresses[%d].address", i), "not an IP address: %q", a.Address)
				}
			}
		}
	}
	for _, np := range s.NetworkPolicies {
		v.policy(np, s)
	}
	v.clusterPolicies(s)
	cluster.SortDiagnostics(v.diags)
	return v.diags
}

type validator struct{ diags []cluster.Diagnostic }

func (v *validator) errorf(o *cluster.Origin, obj, path, format string, args ...any) {
	v.diags = append(v.diags, cluster.At(cluster.Error, o, obj, path, format, args...))
}

func (v *validator) fieldErrors(o *cluster.Origin, obj string, errs field.ErrorList) {
	for _, e := range errs {
		v.diags = append(v.diags, cluster.At(cluster.Error, o, obj, e.Field, "%s", e.ErrorBody()))
	}
}

func (v *validator) labels(o *cluster.Origin, obj, path string, l map[string]string) {
	v.fieldErrors(o, obj, metav1validation.ValidateLabels(l, field.NewPath(path)))
}

func (v *validator) pod(p *cluster.Pod) {
	obj := cluster.ObjectName(p.Kind, p.Namespace, p.Name)
	for _, msg := range validation.IsDNS1123Subdomain(p.Name) {
		v.errorf(p.Origin, obj, "metadata.name", "%s", msg)
	}
	v.labels(p.Origin, obj, p.LabelsPath, p.Labels)
	names := map[string]bool{}
	for ci, c := range p.Spec.Containers {
		for pi, cp := range c.Ports {
			path := fmt.Sprintf("%s.containers[%d].ports[%d]", p.SpecPath, ci, pi)
			for _, msg := range validation.IsValidPortNum(int(cp.ContainerPort)) {
				v.errorf(p.Origin, obj, path+".containerPort", "%s", msg)
			}
			if !validProtocol(cp.Protocol, true) {
				v.errorf(p.Origin, obj, path+".protocol", "unsupported value %q: supported values: \"SCTP\", \"TCP\", \"UDP\"", cp.Protocol)
			}
			if cp.Name != "" {
				for _, msg := range validation.IsValidPortName(cp.Name) {
					v.errorf(p.Origin, obj, path+".name", "%s", msg)
				}
				if names[cp.Name] {
					v.errorf(p.Origin, obj, path+".name", "duplicate port name %q", cp.Name)
				}
				names[cp.Name] = true
			}
		}
	}
}

func validProtocol(p corev1.Protocol, emptyOK bool) bool {
	switch p {
	case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
		return true
	case "":
		return emptyOK
	}
	return false
}

var selectorOpts = metav1validation.LabelSelectorValidationOptions{}

func (v *validator) policy(np *cluster.NetworkPolicy, s *cluster.Snapshot) {
	o := np.Origin
	obj := cluster.ObjectName("NetworkPolicy", np.Namespace, np.Name)
	for _, msg := range validation.IsDNS1123Subdomain(np.Name) {
		v.errorf(o, obj, "metadata.name", "%s", msg)
	}
	spec := &np.Spec
	v.fieldErrors(o, obj, metav1validation.ValidateLabelSelector(&spec.PodSelector, selectorOpts, field.NewPath("spec", "podSelector")))
	for i, r := range spec.Ingress {
		path := fmt.Sprintf("spec.ingress[%d]", i)
		v.ports(o, obj, path, r.Ports)
		v.peers(o, obj, path+".from", r.From)
	}
	for i, r := range spec.Egress {
		path := fmt.Sprintf("spec.egress[%d]", i)
		v.ports(o, obj, path, r.Ports)
		v.peers(o, obj, path+".to", r.To)
	}
	seen := map[networkingv1.PolicyType]bool{}
	for i, t := range spec.PolicyTypes {
		path := fmt.Sprintf("spec.policyTypes[%d]", i)
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			v.errorf(o, obj, path, "unsupported value %q: supported values: \"Egress\", \"Ingress\"", t)
		} else if seen[t] {
			v.errorf(o, obj, path, "duplicate value %q", t)
		}
		seen[t] = true
	}
	if len(spec.PolicyTypes) > 2 {
		v.errorf(o, obj, "spec.policyTypes", "may not have more than 2 entries")
	}
	if len(spec.PolicyTypes) > 0 {
		if !seen[networkingv1.PolicyTypeEgress] && len(spec.Egress) > 0 {
			v.diags = append(v.diags, cluster.At(cluster.Warning, o, obj, "spec.egress",
				"egress rules are ignored: policyTypes does not include Egress").
				WithHint("add Egress to spec.policyTypes, or remove spec.egress"))
		}
		if !seen[networkingv1.PolicyTypeIngress] && len(spec.Ingress) > 0 {
			v.diags = append(v.diags, cluster.At(cluster.Warning, o, obj, "spec.ingress",
				"ingress rules are ignored: policyTypes does not include Ingress").
				WithHint("add Ingress to spec.policyTypes, or remove spec.ingress"))
		}
	}
	// A policy that selects no pod of its namespace protects nothing.
	if sel, err := metav1.LabelSelectorAsSelector(&spec.PodSelector); err == nil {
		ns := np.Namespace
		found := false
		for _, p := range s.Pods {
			if p.Namespace == ns && sel.Matches(labels.Set(p.Labels)) {
				found = true
				break
			}
		}
		if !found {
			v.diags = append(v.diags, cluster.At(cluster.Warning, o, obj, "spec.podSelector",
				"selects no pod or workload in namespace %s", ns).
				WithHint("check the podSelector's labels against the pod template labels, and the policy's namespace"))
		}
	}
}

func (v *validator) ports(o *cluster.Origin, obj, rulePath string, ports []networkingv1.NetworkPolicyPort) {
	for i, p := range ports {
		path := fmt.Sprintf("%s.ports[%d]", rulePath, i)
		if p.Protocol != nil && !validProtocol(*p.Protocol, false) {
			v.errorf(o, obj, path+".protocol", "unsupported value %q: supported values: \"SCTP\", \"TCP\", \"UDP\"", *p.Protocol)
		}
		if p.Port != nil {
			if p.Port.Type == intstr.Int {
				for _, msg := range validation.IsValidPortNum(int(p.Port.IntVal)) {
					v.errorf(o, obj, path+".port", "%s", msg)
				}
			} else {
				for _, msg := range validation.IsValidPortName(p.Port.StrVal) {
					v.errorf(o, obj, path+".port", "%s", msg)
				}
			}
		}
		if p.EndPort != nil {
			switch {
			case p.Port == nil:
				v.errorf(o, obj, path+".endPort", "may not be specified when `port` is not specified")
			case p.Port.Type == intstr.String:
				v.errorf(o, obj, path+".endPort", "may not be specified when `port` is non-numeric")
			case *p.EndPort < p.Port.IntVal:
				v.errorf(o, obj, path+".endPort", "must be greater than or equal to `port`")
			default:
				for _, msg := range validation.IsValidPortNum(int(*p.EndPort)) {
					v.errorf(o, obj, path+".endPort", "%s", msg)
				}
			}
		}
	}
}

func (v *validator) peers(o *cluster.Origin, obj, listPath string, peers []networkingv1.NetworkPolicyPeer) {
	for i, p := range peers {
		path := fmt.Sprintf("%s[%d]", listPath, i)
		n := 0
		if p.PodSelector != nil {
			n++
			v.fieldErrors(o, obj, metav1validation.ValidateLabelSelector(p.PodSelector, selectorOpts, field.NewPath(path+".podSelector")))
		}
		if p.NamespaceSelector != nil {
			n++
			v.fieldErrors(o, obj, metav1validation.ValidateLabelSelector(p.NamespaceSelector, selectorOpts, field.NewPath(path+".namespaceSelector")))
		}
		if p.IPBlock != nil {
			n++
			v.ipBlock(o, obj, path+".ipBlock", p.IPBlock)
		}
		switch {
		case n == 0:
			v.errorf(o, obj, path, "must specify a peer")
		case p.IPBlock != nil && n > 1:
			v.diags = append(v.diags, cluster.At(cluster.Error, o, obj, path, "may not specify more than 1 peer").
				WithHint("ipBlock stands alone; put podSelector/namespaceSelector in a separate peer"))
		}
	}
}

func (v *validator) ipBlock(o *cluster.Origin, obj, path string, b *networkingv1.IPBlock) {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		v.errorf(o, obj, path+".cidr", "must be a valid CIDR (e.g. 10.0.0.0/8 or 2001:db8::/64): %q", b.CIDR)
		return
	}
	if cidr.Masked() != cidr {
		v.diags = append(v.diags, cluster.At(cluster.Warning, o, obj, path+".cidr",
			"%s has host bits set; it means %s", b.CIDR, cidr.Masked()).WithHint("write %s", cidr.Masked()))
	}
	for i, e := range b.Except {
		epath := fmt.Sprintf("%s.except[%d]", path, i)
		ex, err := netip.ParsePrefix(e)
		if err != nil {
			v.errorf(o, obj, epath, "must be a valid CIDR: %q", e)
			continue
		}
		if ex.Addr().Is4() != cidr.Addr().Is4() || ex.Bits() <= cidr.Bits() || !cidr.Masked().Contains(ex.Addr()) {
			v.errorf(o, obj, epath, "must be a strict subset of `cidr` %s", strings.TrimSpace(b.CIDR))
		}
	}
}
