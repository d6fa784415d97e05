package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/rampartnet/rampart/api/v1alpha1"
	"github.com/rampartnet/rampart/internal/datapath"
	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// IPsec gateways outside the cluster (IPsecPeer objects): the agent of the
// node an IPsecPeer names (spec.nodeName) keys an IKE SA with the gateway,
// authenticated by the pre-shared key or certificates of the Secrets it
// references, and carries the traffic between spec.localSubnets and
// spec.remoteSubnets through it, beside the tunnels to the other nodes, in
// the same datapath. It writes the IKE and CHILD_SA state, the last
// failure and the counters into the object's status. The Secrets are read
// from v1alpha1.DefaultSecretNamespace only: the agents' RBAC allows no
// other (rampart-system holds the controller's CA key).

// ipsecPeers is the IPsecPeer resource.
var ipsecPeers = v1alpha1.SchemeGroupVersion.WithResource("ipsecpeers")

// gatewayPrefix names a gateway's peer in the datapath ("ipsecpeer/NAME"):
// a node name cannot hold a '/', so the two never collide.
const gatewayPrefix = "ipsecpeer/"

// gateway is one IPsecPeer of this node, resolved.
type gateway struct {
	obj *v1alpha1.IPsecPeer
	// key says what the peer was built from (generation and the Secrets'
	// resourceVersions): the datapath's peer changes only when it does.
	key  string
	peer datapath.Peer
	err  error // why the object cannot be used (then peer is unset)
}

// gatewayState is what the agent knows of its gateways between two
// looks at the API server.
type gatewayState struct {
	mu sync.Mutex
	// ikeErr is the last IKE failure per datapath peer, and when.
	ikeErr map[string]ikeFailure
	// written is the status last written, and when, per object.
	written map[string]writtenStatus
}

type ikeFailure struct {
	msg  string
	when time.Time
}

type writtenStatus struct {
	status v1alpha1.IPsecPeerStatus
	when   time.Time
}

// onIKE records the failures of IKE negotiations (the datapath's
// Options.OnIKE), for the status of the IPsecPeers.
func (g *gatewayState) onIKE(peer string, err error) {
	if err == nil || !strings.HasPrefix(peer, gatewayPrefix) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ikeErr == nil {
		g.ikeErr = map[string]ikeFailure{}
	}
	g.ikeErr[peer] = ikeFailure{msg: err.Error(), when: time.Now()}
}

func (g *gatewayState) lastIKEError(peer string) (ikeFailure, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.ikeErr[peer]
	return f, ok
}

// gateways lists the IPsecPeers of this node and resolves each. An error
// is returned only when the list itself fails (the API server away, or no
// such resource: then there are none).
func (a *Agent) gateways(ctx context.Context, dyn dynamic.Interface, client kubernetes.Interface) ([]*gateway, error) {
	list, err := dyn.Resource(ipsecPeers).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil // the CRD is not installed
	}
	if err != nil {
		return nil, fmt.Errorf("agent: list IPsecPeers: %w", err)
	}
	var out []*gateway
	for _, u := range list.Items {
		var p v1alpha1.IPsecPeer
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p); err != nil {
			a.log.Warn("IPsecPeer not decoded", "name", u.GetName(), "err", err)
			continue
		}
		if p.Spec.NodeName != a.cfg.NodeName {
			continue
		}
		g := &gateway{obj: &p}
		secret := func(ref v1alpha1.SecretReference) (*corev1.Secret, error) {
			ns := ref.Namespace
			if ns == "" {
				ns = v1alpha1.DefaultSecretNamespace
			}
			if ns != v1alpha1.DefaultSecretNamespace {
				return nil, fmt.Errorf("Secret %s/%s: the agents read Secrets in %s only", ns, ref.Name, v1alpha1.DefaultSecretNamespace)
			}
			s, err := client.CoreV1().Secrets(ns).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("Secret %s/%s: %w", ns, ref.Name, err)
			}
			g.key += "/" + s.ResourceVersion
			return s, nil
		}
		g.peer, g.err = a.gatewayPeer(&p, secret)
		g.key = fmt.Sprintf("%d%s", p.Generation, g.key)
		out = append(out, g)
	}
	slices.SortFunc(out, func(x, y *gateway) int { return strings.Compare(x.obj.Name, y.obj.Name) })
	return out, nil
}

// gatewayPeer checks what the CRD's schema cannot (that proposals name
// algorithms that exist, that the Secrets hold what they should, that the
// address family is the node's) and builds the datapath's peer. Errors
// name the field.
func (a *Agent) gatewayPeer(p *v1alpha1.IPsecPeer, secret func(v1alpha1.SecretReference) (*corev1.Secret, error)) (datapath.Peer, error) {
	c, s := a.cfg, &p.Spec
	fail := func(field string, err error) (datapath.Peer, error) {
		return datapath.Peer{}, fmt.Errorf("spec.%s: %w", field, err)
	}
	addr, err := netip.ParseAddr(s.Address)
	if err != nil {
		return fail("address", err)
	}
	if addr.Is4() != c.Address.Is4() {
		return fail("address", fmt.Errorf("%s and node %s's address %s are of different IP families", addr, c.NodeName, c.Address))
	}
	port := uint16(datapath.DefaultPort)
	if s.Port != 0 {
		port = uint16(s.Port)
	}
	dp := datapath.Peer{Name: gatewayPrefix + p.Name, Endpoint: netip.AddrPortFrom(addr, port)}
	switch s.Mode {
	case "", "tunnel":
		dp.Mode = esp.ModeTunnel
		for field, list := range map[string]struct {
			in  []string
			out *[]netip.Prefix
		}{"localSubnets": {s.LocalSubnets, &dp.LocalSubnets}, "remoteSubnets": {s.RemoteSubnets, &dp.RemoteSubnets}} {
			for i, v := range list.in {
				pf, err := netip.ParsePrefix(v)
				if err != nil {
					return fail(fmt.Sprintf("%s[%d]", field, i), err)
				}
				*list.out = append(*list.out, pf)
			}
		}
		slices.SortFunc(dp.LocalSubnets, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	case "transport":
		dp.Mode = esp.ModeTransport
		dp.LocalSubnets = []netip.Prefix{netip.PrefixFrom(c.Address, c.Address.BitLen())}
		dp.RemoteSubnets = []netip.Prefix{netip.PrefixFrom(addr, addr.BitLen())}
	default:
		return fail("mode", fmt.Errorf("%q: want tunnel or transport", s.Mode))
	}
	// Proposals: the IPsecPeer's, else those the cluster (its
	// EncryptionConfig) or the file sets, else the standard strong ones;
	// not the node pairs' own default, which asks for extended sequence
	// numbers that gateways rarely offer.
	k := &datapath.IKEPeer{Initiate: s.Initiate, IKEProposals: ikecrypto.DefaultIKEProposals(), ESPProposals: ikecrypto.DefaultESPProposals(),
		RekeyTime: c.RekeyTime, ChildRekeyTime: c.ChildRekeyTime, DPDInterval: c.DPDPeriod, ReplayWindow: c.ReplayWindow}
	if len(c.spec.Encryption.Proposals) > 0 {
		k.IKEProposals = c.IKEProposals
	}
	if len(c.spec.Encryption.ESPProposals) > 0 {
		k.ESPProposals = c.ESPProposals
	}
	dp.IKE = k
	id := func(field, v string, def netip.Addr) (ikecrypto.Identity, error) {
		if v == "" {
			v = def.String()
		}
		got, err := ikecrypto.ParseIdentity(v)
		if err != nil {
			return got, fmt.Errorf("spec.%s: %w", field, err)
		}
		return got, nil
	}
	if k.LocalID, err = id("localID", s.LocalID, c.Address); err != nil {
		return datapath.Peer{}, err
	}
	if k.RemoteID, err = id("remoteID", s.RemoteID, addr); err != nil {
		return datapath.Peer{}, err
	}
	if len(s.Proposals) > 0 {
		if k.IKEProposals, err = ikecrypto.ParseIKEProposals(strings.Join(s.Proposals, ",")); err != nil {
			return fail("proposals", err)
		}
	}
	if len(s.ESPProposals) > 0 {
		if k.ESPProposals, err = ikecrypto.ParseESPProposals(strings.Join(s.ESPProposals, ",")); err != nil {
			return fail("espProposals", err)
		}
	}
	for _, t := range []struct {
		field, v string
		dst      *time.Duration
	}{{"rekeyTime", s.RekeyTime, &k.RekeyTime}, {"childRekeyTime", s.ChildRekeyTime, &k.ChildRekeyTime}, {"dpdInterval", s.DPDInterval, &k.DPDInterval}} {
		if t.v == "" {
			continue
		}
		if *t.dst, err = time.ParseDuration(t.v); err != nil {
			return fail(t.field, err)
		}
	}
	switch auth := s.Auth; {
	case auth.PSK != nil:
		sec, err := secret(auth.PSK.SecretReference)
		if err != nil {
			return fail("auth.psk", err)
		}
		v, ok := sec.Data[auth.PSK.Key]
		if !ok {
			return fail("auth.psk", fmt.Errorf("Secret %s/%s has no key %q", sec.Namespace, sec.Name, auth.PSK.Key))
		}
		// As a file holding it would end: a final newline is not part of
		// the key (kubectl create secret --from-file keeps it).
		v = bytes.TrimSuffix(bytes.TrimSuffix(v, []byte("\n")), []byte("\r"))
		if len(v) < 16 {
			return fail("auth.psk", fmt.Errorf("Secret %s/%s key %q: a pre-shared key of %d bytes is too weak to offer (at least 16)", sec.Namespace, sec.Name, auth.PSK.Key, len(v)))
		}
		k.PSK = bytes.Clone(v)
	case auth.Certificate != nil:
		sec, err := secret(auth.Certificate.SecretRef)
		if err != nil {
			return fail("auth.certificate.secretRef", err)
		}
		if k.Certs, err = ikecrypto.ParseCertificates(sec.Data[corev1.TLSCertKey]); err == nil && len(k.Certs) == 0 {
			err = errors.New("no certificate")
		}
		if err != nil {
			return fail("auth.certificate.secretRef", fmt.Errorf("Secret %s/%s %s: %w", sec.Namespace, sec.Name, corev1.TLSCertKey, err))
		}
		if k.Key, err = ikecrypto.ParsePrivateKey(sec.Data[corev1.TLSPrivateKeyKey]); err != nil {
			return fail("auth.certificate.secretRef", fmt.Errorf("Secret %s/%s %s: %w", sec.Namespace, sec.Name, corev1.TLSPrivateKeyKey, err))
		}
		if !ikecrypto.PublicKeysEqual(k.Certs[0].PublicKey, k.Key.Public()) {
			return fail("auth.certificate.secretRef", fmt.Errorf("Secret %s/%s: %s is not the certificate's key", sec.Namespace, sec.Name, corev1.TLSPrivateKeyKey))
		}
		caRef := auth.Certificate.CARef
		caSec, err := secret(caRef.SecretReference)
		if err != nil {
			return fail("auth.certificate.caRef", err)
		}
		if k.CAs, err = ikecrypto.ParseCertificates(caSec.Data[caRef.Key]); err == nil && len(k.CAs) == 0 {
			err = errors.New("no certificate")
		}
		if err != nil {
			return fail("auth.certificate.caRef", fmt.Errorf("Secret %s/%s key %q: %w", caSec.Namespace, caSec.Name, caRef.Key, err))
		}
	default:
		return fail("auth", errors.New("psk or certificate is required"))
	}
	return dp, nil
}

// gatewayStatus is the status of gateway g as the datapath has it now.
func (a *Agent) gatewayStatus(g *gateway, st *datapath.PeerStatus) v1alpha1.IPsecPeerStatus {
	s := v1alpha1.IPsecPeerStatus{ObservedGeneration: g.obj.Generation, Node: a.cfg.NodeName, IKEState: "none", ChildSAState: "none"}
	// The last error is kept after a later success (the status's
	// contract), so a flapping gateway can be diagnosed.
	old := g.obj.Status
	s.LastError, s.LastErrorTime = old.LastError, old.LastErrorTime
	if f, ok := a.gw.lastIKEError(gatewayPrefix + g.obj.Name); ok && (old.LastErrorTime == nil || f.when.After(old.LastErrorTime.Time)) {
		s.LastError, s.LastErrorTime = truncate(f.msg, 1024), &metav1.Time{Time: f.when.Truncate(time.Second)}
	}
	cond := metav1.Condition{Type: "Established", Status: metav1.ConditionFalse, Reason: "NoIKESA", Message: "no IKE SA with the gateway", ObservedGeneration: g.obj.Generation}
	switch {
	case g.err != nil:
		msg := truncate(g.err.Error(), 1024)
		if s.LastError != msg {
			s.LastError, s.LastErrorTime = msg, &metav1.Time{Time: time.Now().Truncate(time.Second)}
		}
		cond.Reason, cond.Message = "InvalidSpec", msg
	case st != nil:
		for _, sa := range st.IKE {
			if sa.State == "established" {
				s.IKEState, s.Suite, s.ChildSAs = "established", sa.Suite, int32(sa.ChildSAs)
				t := metav1.NewTime(sa.Established.Truncate(time.Second))
				s.EstablishedTime = &t
				break
			}
			s.IKEState = "connecting"
		}
		if len(st.SAs) > 0 {
			s.ChildSAState = "installed"
		}
		s.Counters = v1alpha1.PeerCounters{TxPackets: int64(st.TxPackets), TxBytes: int64(st.TxBytes), RxPackets: int64(st.RxPackets), RxBytes: int64(st.RxBytes)}
		for _, n := range st.Drops {
			s.Counters.Drops += int64(n)
		}
		for _, sa := range st.SAs {
			s.Counters.AuthFailures += int64(sa.Stats.AuthFailures)
			s.Counters.Replays += int64(sa.Stats.Replays)
		}
		switch {
		case s.IKEState == "established" && s.ChildSAState == "installed":
			cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, "Established", "the IKE SA and its CHILD_SA are up"
		case s.IKEState == "connecting":
			cond.Reason, cond.Message = "Connecting", "IKE_SA_INIT or IKE_AUTH under way"
		}
	}
	cond.LastTransitionTime = metav1.Now()
	for _, c := range old.Conditions {
		if c.Type == cond.Type && c.Status == cond.Status {
			cond.LastTransitionTime = c.LastTransitionTime
		}
	}
	s.Conditions = []metav1.Condition{cond}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// countersEvery is how often a gateway's status is written when only its
// counters changed: the state is written at once, the traffic now and then.
const countersEvery = 30 * time.Second

// reportGateways writes the status of this node's gateways where it
// changed. A failure is logged: the status is a report.
func (a *Agent) reportGateways(ctx context.Context, dyn dynamic.Interface, gws []*gateway) {
	byName := map[string]*datapath.PeerStatus{}
	var st datapath.Status
	if a.dev != nil {
		st = a.dev.Status()
	}
	for i := range st.Peers {
		byName[st.Peers[i].Name] = &st.Peers[i]
	}
	for _, g := range gws {
		s := a.gatewayStatus(g, byName[gatewayPrefix+g.obj.Name])
		a.gw.mu.Lock()
		last, ok := a.gw.written[g.obj.Name]
		a.gw.mu.Unlock()
		if ok && last.status.ObservedGeneration == s.ObservedGeneration {
			same := last.status
			same.Counters = s.Counters
			same.Conditions = s.Conditions
			if equality.Semantic.DeepEqual(same, s) && equalConditions(last.status.Conditions, s.Conditions) &&
				(last.status.Counters == s.Counters || time.Since(last.when) < countersEvery) {
				continue
			}
		}
		obj := g.obj.DeepCopy()
		obj.Status = s
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		u.SetAPIVersion(v1alpha1.APIVersion)
		u.SetKind("IPsecPeer")
		if _, err := dyn.Resource(ipsecPeers).UpdateStatus(ctx, u, metav1.UpdateOptions{}); err != nil {
			a.log.Warn("IPsecPeer status not written", "name", g.obj.Name, "err", err)
			continue
		}
		a.gw.mu.Lock()
		if a.gw.written == nil {
			a.gw.written = map[string]writtenStatus{}
		}
		a.gw.written[g.obj.Name] = writtenStatus{status: s, when: time.Now()}
		a.gw.mu.Unlock()
	}
}

// equalConditions compares conditions without their transition times.
func equalConditions(a, b []metav1.Condition) bool {
	return slices.EqualFunc(a, b, func(x, y metav1.Condition) bool {
		return x.Type == y.Type && x.Status == y.Status && x.Reason == y.Reason && x.Message == y.Message && x.ObservedGeneration == y.ObservedGeneration
	})
}
