package authz

import (
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/istio"
)

// Load validates the policies as Istio's validation webhook would
// (istio/pkg/config/validation: ValidateAuthorizationPolicy) and builds an
// Engine of the valid ones. Every problem is a diagnostic with file:line
// and field path; an invalid policy is left out and makes the whole set
// invalid (cluster.HasErrors), so that a node never enforces part of a
// broken change.
func Load(objs []*cluster.AuthorizationPolicy, opts Options) (*Engine, []cluster.Diagnostic) {
	opts.defaults()
	e := &Engine{opts: opts}
	var ds []cluster.Diagnostic
	for _, o := range objs {
		v := &validator{o: o.Origin, object: cluster.ObjectName("AuthorizationPolicy", o.Namespace, o.Name)}
		p := v.policy(&o.AuthorizationPolicy)
		ds = append(ds, v.ds...)
		if !cluster.HasErrors(v.ds) {
			e.policies = append(e.policies, p)
		}
	}
	sortPolicies(e.policies)
	return e, ds
}

type validator struct {
	o      *cluster.Origin
	object string
	ds     []cluster.Diagnostic
}

func (v *validator) errorf(path, format string, args ...any) {
	v.ds = append(v.ds, cluster.At(cluster.Error, v.o, v.object, path, format, args...))
}

func (v *validator) warnf(path, format string, args ...any) {
	v.ds = append(v.ds, cluster.At(cluster.Warning, v.o, v.object, path, format, args...))
}

func (v *validator) policy(ap *istio.AuthorizationPolicy) *Policy {
	s := &ap.Spec
	p := &Policy{Namespace: ap.Namespace, Name: ap.Name, Origin: v.o}
	if msgs := validation.IsDNS1123Subdomain(ap.Name); len(msgs) > 0 {
		v.errorf("metadata.name", "%q is not a valid name: %s", ap.Name, strings.Join(msgs, "; "))
	}
	if p.Namespace == "" {
		p.Namespace = "default"
	}
	switch s.Action {
	case "", "ALLOW":
		p.Action = Allow
	case "DENY":
		p.Action = Deny
	case "AUDIT":
		p.Action = Audit
	case "CUSTOM":
		p.Action = Custom
		if s.Provider == nil || s.Provider.Name == "" {
			v.errorf("spec.provider", "a CUSTOM policy needs provider.name")
		} else {
			p.Provider = s.Provider.Name
		}
		v.warnf("spec.action", "CUSTOM hands the decision to an external authorizer, which Rampart's node proxy cannot ask: a request it matches is denied (fail closed)")
	default:
		v.errorf("spec.action", "%q is not an action: ALLOW, DENY, AUDIT or CUSTOM", s.Action)
	}
	if s.Action != "CUSTOM" && s.Provider != nil {
		v.errorf("spec.provider", "provider is only for action CUSTOM")
	}
	refs := s.TargetRefs
	refsPath := "spec.targetRefs"
	if s.TargetRef != nil {
		if len(refs) > 0 {
			v.errorf("spec.targetRef", "give targetRef or targetRefs, not both")
		}
		refs, refsPath = []istio.PolicyTargetReference{*s.TargetRef}, "spec.targetRef"
	}
	if s.Selector != nil && len(refs) > 0 {
		v.errorf("spec.selector", "selector and %s are mutually exclusive", strings.TrimPrefix(refsPath, "spec."))
	}
	if s.Selector != nil {
		p.HasSelector = true
		p.Selector = s.Selector.MatchLabels
		for k, val := range s.Selector.MatchLabels {
			path := "spec.selector.matchLabels." + k
			if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
				v.errorf(path, "%q is not a label key: %s", k, strings.Join(msgs, "; "))
			}
			if msgs := validation.IsValidLabelValue(val); len(msgs) > 0 {
				v.errorf(path, "%q is not a label value: %s", val, strings.Join(msgs, "; "))
			}
		}
	}
	for i, r := range refs {
		path := refsPath
		if refsPath == "spec.targetRefs" {
			path = fmt.Sprintf("%s[%d]", refsPath, i)
		}
		switch {
		case r.Kind == "Service" && (r.Group == "" || r.Group == "core"):
			if r.Namespace != "" && r.Namespace != p.Namespace {
				v.errorf(path+".namespace", "a policy attaches to Services of its own namespace (%s), not %s", p.Namespace, r.Namespace)
			}
			p.Services = append(p.Services, r.Name)
		case r.Kind == "Gateway" || r.Kind == "ServiceEntry":
			v.errorf(path+".kind", "%s targets are gateways' and waypoints' in Istio; Rampart enforces at the destination's node and takes Service targets only", r.Kind)
		default:
			v.errorf(path+".kind", "kind %q (group %q): want Service", r.Kind, r.Group)
		}
	}
	if len(s.Rules) == 0 {
		switch p.Action {
		case Allow:
			v.ds = append(v.ds, cluster.At(cluster.Note, v.o, v.object, "spec", "an ALLOW policy without rules matches nothing: the workloads it selects accept no request (deny all)"))
		case Deny:
			v.warnf("spec", "a DENY policy without rules matches nothing: it denies no request")
		}
	}
	for i := range s.Rules {
		p.Rules = append(p.Rules, v.rule(fmt.Sprintf("spec.rules[%d]", i), &s.Rules[i]))
	}
	return p
}

func (v *validator) rule(path string, r *istio.Rule) Rule {
	var out Rule
	for i, f := range r.From {
		fp := fmt.Sprintf("%s.from[%d]", path, i)
		if f.Source == nil || reflect.ValueOf(*f.Source).IsZero() {
			v.errorf(fp+".source", "a from item needs a source with at least one field")
			continue
		}
		out.From = append(out.From, v.source(fp+".source", f.Source))
	}
	for i, t := range r.To {
		tp := fmt.Sprintf("%s.to[%d]", path, i)
		if t.Operation == nil || isEmptyOperation(t.Operation) {
			v.errorf(tp+".operation", "a to item needs an operation with at least one field")
			continue
		}
		out.To = append(out.To, v.operation(tp+".operation", t.Operation))
	}
	for i := range r.When {
		out.When = append(out.When, v.condition(fmt.Sprintf("%s.when[%d]", path, i), &r.When[i]))
	}
	return out
}

func isEmptyOperation(o *istio.Operation) bool {
	return len(o.Hosts)+len(o.NotHosts)+len(o.Ports)+len(o.NotPorts)+len(o.Methods)+len(o.NotMethods)+len(o.Paths)+len(o.NotPaths) == 0
}

func (v *validator) source(path string, s *istio.Source) Source {
	out := Source{Principals: s.Principals, NotPrincipals: s.NotPrincipals, Namespaces: s.Namespaces, NotNamespaces: s.NotNamespaces,
		ServiceAccounts: s.ServiceAccounts, NotServiceAccounts: s.NotServiceAccounts}
	for _, f := range []struct {
		name   string
		values []string
	}{{"principals", s.Principals}, {"notPrincipals", s.NotPrincipals}, {"namespaces", s.Namespaces}, {"notNamespaces", s.NotNamespaces}} {
		for i, val := range f.values {
			v.pattern(fmt.Sprintf("%s.%s[%d]", path, f.name, i), val)
		}
	}
	for _, f := range []struct {
		name   string
		values []string
	}{{"serviceAccounts", s.ServiceAccounts}, {"notServiceAccounts", s.NotServiceAccounts}} {
		for i, val := range f.values {
			ns, sa, ok := strings.Cut(val, "/")
			if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(sa)) > 0 {
				v.errorf(fmt.Sprintf("%s.%s[%d]", path, f.name, i), "%q: want NAMESPACE/SERVICEACCOUNT", val)
			}
		}
	}
	if len(s.Principals) > 0 && len(s.ServiceAccounts) > 0 {
		v.errorf(path+".serviceAccounts", "serviceAccounts and principals are mutually exclusive")
	}
	out.IPBlocks = v.blocks(path+".ipBlocks", s.IPBlocks)
	out.NotIPBlocks = v.blocks(path+".notIpBlocks", s.NotIPBlocks)
	// remoteIpBlocks are the original client's address behind proxies
	// (X-Forwarded-For): the node sees the direct peer, which is the
	// original client for pod traffic. They mean the same here.
	out.IPBlocks = append(out.IPBlocks, v.blocks(path+".remoteIpBlocks", s.RemoteIPBlocks)...)
	out.NotIPBlocks = append(out.NotIPBlocks, v.blocks(path+".notRemoteIpBlocks", s.NotRemoteIPBlocks)...)
	if len(s.RequestPrincipals)+len(s.NotRequestPrincipals) > 0 {
		out.RequestPrincipals = true
		v.warnf(path+".requestPrincipals", "request principals come from a JWT that Rampart does not validate: this source never matches in an ALLOW policy and always matches in a DENY one (fail closed)")
	}
	return out
}

// pattern checks an Istio string match: "*", a prefix "abc*", a suffix
// "*abc", or an exact value; a '*' anywhere else is taken literally by
// Istio, which is never what was meant.
func (v *validator) pattern(path, s string) {
	if s == "" {
		v.errorf(path, "an empty value matches nothing")
		return
	}
	if s != "*" && strings.Contains(strings.TrimSuffix(strings.TrimPrefix(s, "*"), "*"), "*") ||
		len(s) > 1 && strings.HasPrefix(s, "*") && strings.HasSuffix(s, "*") {
		v.errorf(path, "%q: '*' may only begin or end a value (prefix or suffix match), or be the whole value", s)
	}
}

func (v *validator) blocks(path string, list []string) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				v.errorf(fmt.Sprintf("%s[%d]", path, i), "%q is neither an IP address nor a CIDR", s)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

func (v *validator) ports(path string, list []string) []int {
	var out []int
	for i, s := range list {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			v.errorf(fmt.Sprintf("%s[%d]", path, i), "%q is not a port number (1 to 65535)", s)
			continue
		}
		out = append(out, n)
	}
	return out
}

// httpMethod is what a method token can be (RFC 9110 §9.1: a token).
var httpMethod = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func (v *validator) operation(path string, o *istio.Operation) Operation {
	out := Operation{Hosts: o.Hosts, NotHosts: o.NotHosts, Methods: o.Methods, NotMethods: o.NotMethods, Paths: o.Paths, NotPaths: o.NotPaths}
	out.Ports = v.ports(path+".ports", o.Ports)
	out.NotPorts = v.ports(path+".notPorts", o.NotPorts)
	for _, f := range []struct {
		name   string
		values []string
	}{{"methods", o.Methods}, {"notMethods", o.NotMethods}} {
		for i, m := range f.values {
			p := fmt.Sprintf("%s.%s[%d]", path, f.name, i)
			v.pattern(p, m)
			switch {
			case !httpMethod.MatchString(strings.Trim(m, "*")) && m != "*":
				v.errorf(p, "%q is not an HTTP method", m)
			case m != strings.ToUpper(m):
				v.warnf(p, "%q: HTTP methods are case-sensitive and sent in capitals; this matches no request (meant %q?)", m, strings.ToUpper(m))
			}
		}
	}
	for _, f := range []struct {
		name   string
		values []string
	}{{"paths", o.Paths}, {"notPaths", o.NotPaths}, {"hosts", o.Hosts}, {"notHosts", o.NotHosts}} {
		for i, s := range f.values {
			p := fmt.Sprintf("%s.%s[%d]", path, f.name, i)
			v.pattern(p, s)
			if strings.HasSuffix(f.name, "aths") && s != "" && !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "*") {
				v.warnf(p, "%q does not begin with '/': a request path always does, so this matches nothing (meant %q?)", s, "/"+s)
			}
			if strings.HasSuffix(f.name, "aths") && strings.ContainsAny(s, "?#") {
				v.warnf(p, "%q: paths are matched without the query string and fragment", s)
			}
		}
	}
	return out
}

// The when keys the node judges; the others (request.auth.*,
// connection.sni, experimental.*) it cannot.
var knownKeys = map[string]bool{"source.ip": true, "remote.ip": true, "destination.ip": true, "destination.port": true,
	"source.namespace": true, "source.principal": true}

func (v *validator) condition(path string, c *istio.Condition) Condition {
	out := Condition{Key: c.Key, Values: c.Values, NotValues: c.NotValues}
	if len(c.Values)+len(c.NotValues) == 0 {
		v.errorf(path, "a condition needs values or notValues")
	}
	switch {
	case strings.HasPrefix(c.Key, "request.headers["):
		name, ok := strings.CutSuffix(strings.TrimPrefix(c.Key, "request.headers["), "]")
		if !ok || name == "" || strings.ContainsAny(name, "[] ") {
			v.errorf(path+".key", "%q: want request.headers[NAME]", c.Key)
		}
		out.Header = name
	case c.Key == "source.ip" || c.Key == "remote.ip" || c.Key == "destination.ip":
		out.prefixes = v.blocks(path+".values", c.Values)
		out.notPrefixes = v.blocks(path+".notValues", c.NotValues)
	case c.Key == "destination.port":
		v.ports(path+".values", c.Values)
		v.ports(path+".notValues", c.NotValues)
	case knownKeys[c.Key]:
	case strings.HasPrefix(c.Key, "request.auth.") || c.Key == "connection.sni" || strings.HasPrefix(c.Key, "experimental."):
		out.Unknown = true
		v.warnf(path+".key", "%s needs a JWT or TLS that Rampart's node proxy does not see: this condition never matches in an ALLOW policy and always matches in a DENY one (fail closed)", c.Key)
	default:
		v.errorf(path+".key", "%q is not a condition key of AuthorizationPolicy (request.headers[NAME], source.ip, remote.ip, source.namespace, source.principal, destination.ip, destination.port, request.auth.*, connection.sni)", c.Key)
	}
	return out
}
