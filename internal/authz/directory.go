package authz

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/rampartnet/rampart/internal/cluster"
)

// Directory is what decisions need to know of the cluster's pods: the
// caller behind a source address (its namespace and service account, for
// its principal) and the workload behind a destination (its labels and
// the Services that select it, for the policies that apply).
type Directory struct {
	byAddr map[netip.Addr]*podEntry
	byRef  map[string]*podEntry
}

type podEntry struct {
	w Workload
	c Caller
}

// NewDirectory indexes the snapshot's pods (and workloads' templates, by
// name, for the analyzer: they have no address).
func NewDirectory(s *cluster.Snapshot) *Directory {
	d := &Directory{byAddr: map[netip.Addr]*podEntry{}, byRef: map[string]*podEntry{}}
	// The Services with a selector, by namespace, each selector made once:
	// a pod is matched against its own namespace's only.
	type service struct {
		name string
		sel  labels.Selector
	}
	services := map[string][]service{}
	for _, sv := range s.Services {
		if len(sv.Spec.Selector) > 0 {
			services[sv.Namespace] = append(services[sv.Namespace], service{sv.Name, labels.SelectorFromSet(sv.Spec.Selector)})
		}
	}
	for _, p := range s.Pods {
		e := &podEntry{
			w: Workload{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels},
			c: Caller{Pod: true, Namespace: p.Namespace, ServiceAccount: p.Spec.ServiceAccountName},
		}
		if e.c.ServiceAccount == "" {
			e.c.ServiceAccount = p.Spec.DeprecatedServiceAccount
		}
		for _, sv := range services[p.Namespace] {
			if sv.sel.Matches(labels.Set(p.Labels)) {
				e.w.Services = append(e.w.Services, sv.name)
			}
		}
		d.byRef[p.Namespace+"/"+p.Name] = e
		if p.Spec.HostNetwork {
			// Its address is its node's, shared with every other
			// host-network pod there: no identity can be told from it.
			continue
		}
		ips := p.Status.PodIPs
		if len(ips) == 0 && p.Status.PodIP != "" {
			ips = append(ips, corev1.PodIP{IP: p.Status.PodIP})
		}
		for _, ip := range ips {
			if a, err := netip.ParseAddr(ip.IP); err == nil {
				d.byAddr[a.Unmap()] = e
			}
		}
	}
	return d
}

// Caller is the caller at address a: a pod of the cluster, or (Pod false)
// anything else.
func (d *Directory) Caller(a netip.Addr) Caller {
	a = a.Unmap()
	if e, ok := d.byAddr[a]; ok {
		c := e.c
		c.IP = a
		return c
	}
	return Caller{IP: a}
}

// WorkloadAt is the pod at address a.
func (d *Directory) WorkloadAt(a netip.Addr) (Workload, bool) {
	e, ok := d.byAddr[a.Unmap()]
	if !ok {
		return Workload{}, false
	}
	return e.w, true
}

// Workload is the pod or workload template ref ("namespace/name").
func (d *Directory) Workload(ref string) (Workload, bool) {
	e, ok := d.byRef[ref]
	if !ok {
		return Workload{}, false
	}
	return e.w, true
}

// CallerOf is the caller that pod or workload template ref is, at
// address a (the zero Addr for a template).
func (d *Directory) CallerOf(ref string, a netip.Addr) (Caller, bool) {
	e, ok := d.byRef[ref]
	if !ok {
		return Caller{IP: a}, false
	}
	c := e.c
	c.IP = a
	return c, true
}
