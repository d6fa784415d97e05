package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/rampartnet/rampart/internal/authz"
	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/l7"
	"github.com/rampartnet/rampart/internal/nft"
	"github.com/rampartnet/rampart/internal/policy"
)

// The node's L7 authorization (Istio's AuthorizationPolicy, without
// sidecars): the TCP connections of a local pod that an AuthorizationPolicy
// selects are judged by the L3/L4 policy first (table inet rampart's l7
// chain), then handed by TPROXY (table inet rampart_l7) to the proxy in
// this agent, which decides every HTTP request with internal/authz. The
// caller is known by its address: a local pod's is anti-spoofed, a remote
// pod's arrives only out of the IKE-authenticated tunnel of the node that
// owns its pod CIDR (enforce mode drops the rest).

// L7ProxyAddress is where the proxy listens in the node's namespace: on
// loopback (internal/l7 says why), Istio's inbound port.
var L7ProxyAddress = netip.MustParseAddrPort("127.0.0.1:15006")

// l7State is the proxy and the steering, with the targets in force.
type l7State struct {
	proxy    *l7.Proxy
	steering *l7.Steering
	targets  []netip.AddrPort
}

// startL7 installs the steering (no targets yet) and starts the proxy. It
// runs until ctx ends; the steering stays (fail closed: with no proxy, a
// steered connection is reset).
func (a *Agent) startL7(ctx context.Context) (func() error, error) {
	s, err := l7.NewSteering(L7ProxyAddress)
	if err != nil {
		return nil, err
	}
	// What a previous agent steered stays steered (fail closed): the
	// first policy change moves from there.
	if err := s.Adopt(); err != nil {
		return nil, fmt.Errorf("agent: L7 steering: %w", err)
	}
	if err := s.Install(); err != nil {
		return nil, fmt.Errorf("agent: L7 steering: %w", err)
	}
	ln, err := l7.ListenTransparent(ctx, L7ProxyAddress)
	if err != nil {
		return nil, fmt.Errorf("agent: L7 proxy: %w", err)
	}
	// Until the first policy is compiled: deny (nothing is steered yet).
	p, err := l7.NewProxy(l7.Config{Logger: a.log.With("component", "l7")})
	if err != nil {
		ln.Close()
		return nil, err
	}
	a.l7 = &l7State{proxy: p, steering: s, targets: s.Targets()}
	return func() error {
		go func() {
			<-ctx.Done()
			p.Close()
		}()
		return p.Serve(ln)
	}, nil
}

// l7Plan is what one policy change asks of the L7 side: the decider, the
// local pods under L7 authorization, and the targets steered to the proxy
// (their declared TCP ports; the table refuses their other ports).
type l7Plan struct {
	decider l7.Decider
	pods    []nft.L7Pod
	targets []netip.AddrPort
}

// planL7 validates the snapshot's AuthorizationPolicies (any error refuses
// the whole change, as for NetworkPolicy) and finds the local pods they
// select.
func (a *Agent) planL7(snap *cluster.Snapshot, local []*policy.Endpoint) (*l7Plan, error) {
	e, ds := authz.Load(snap.AuthorizationPolicies, a.cfg.Mesh)
	if cluster.HasErrors(ds) {
		return nil, &invalidError{diags: ds}
	}
	dir := authz.NewDirectory(snap)
	plan := &l7Plan{decider: &l7Decider{e: e, d: dir}}
	for _, ep := range local {
		w, ok := dir.Workload(ep.Ref())
		if !ok || !e.Selects(w) {
			continue
		}
		for _, ip := range ep.IPs {
			if !a.cfg.PodCIDR.Contains(ip) {
				continue
			}
			lp := nft.L7Pod{Ref: ep.Ref()}
			for _, p := range ep.Ports {
				if p.Protocol == corev1.ProtocolTCP && !slices.Contains(lp.Ports, uint16(p.Port)) {
					lp.Ports = append(lp.Ports, uint16(p.Port))
					plan.targets = append(plan.targets, netip.AddrPortFrom(ip, uint16(p.Port)))
				}
			}
			plan.pods = append(plan.pods, lp)
			break
		}
	}
	return plan, nil
}

// applyL7 puts plan in force around commit, the nftables change: what
// stops being steered stops before the table stops judging it, and what
// starts being steered starts after the table judges it, so no connection
// reaches the proxy without the L3/L4 verdict. A commit that fails leaves
// the steering as it was.
func (a *Agent) applyL7(plan *l7Plan, commit func() error) error {
	if a.l7 == nil {
		if len(plan.targets) > 0 {
			return errors.New("agent: AuthorizationPolicies select pods of this node, but its L7 proxy does not run")
		}
		return commit()
	}
	a.l7.proxy.SetDecider(plan.decider)
	old := a.l7.targets
	keep := slices.DeleteFunc(slices.Clone(old), func(t netip.AddrPort) bool { return !slices.Contains(plan.targets, t) })
	if err := a.l7.steering.SetTargets(keep); err != nil {
		return err
	}
	if err := commit(); err != nil {
		if rerr := a.l7.steering.SetTargets(old); rerr != nil {
			err = errors.Join(err, fmt.Errorf("and restoring the L7 steering: %w", rerr))
		}
		return err
	}
	if err := a.l7.steering.SetTargets(plan.targets); err != nil {
		return err
	}
	a.l7.targets = plan.targets
	return nil
}

// l7Decider decides the proxy's requests by the AuthorizationPolicies.
type l7Decider struct {
	e *authz.Engine
	d *authz.Directory
}

func (x *l7Decider) Decide(r l7.Request) l7.Decision {
	w, ok := x.d.WorkloadAt(r.Destination.Addr())
	if !ok {
		return l7.Decision{Reason: fmt.Sprintf("%s is no pod of the cluster", r.Destination.Addr())}
	}
	res := x.e.Evaluate(authz.Request{From: x.d.Caller(r.Source.Addr()), To: w, DestIP: r.Destination.Addr(),
		Port: int(r.Destination.Port()), HTTP: &authz.HTTP{Method: r.Method, Path: r.Path, Host: r.Host, Header: r.Header}})
	return l7.Decision{Allow: res.Allowed, Reason: res.Reason}
}
