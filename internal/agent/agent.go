// Package agent is `rampart agent`, one per node: it keeps the node's
// nftables rules equal to what the verdict engine says for the node's pods
// (internal/nft), and carries pod traffic to the other nodes through
// IKEv2-keyed ESP (internal/datapath, ipsec/ike).
//
// Between two nodes there is one IKE SA, authenticated by the nodes'
// certificates (each names its node), and one CHILD_SA whose selectors are
// the two nodes' pod CIDRs and their own addresses. A node's peer
// configuration allows only that node's pod CIDR and address, so a node
// that proves its identity still cannot claim another node's pods. The
// node with the smaller name initiates, and keeps the IKE SA up.
//
// The agent reads the cluster from manifest files (the lab writes them) or
// from an API server (client-go informers), and applies the rules again
// when it changes. An invalid change is reported and the rules in force
// stay.
package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/datapath"
	"github.com/rampartnet/rampart/internal/nft"
	"github.com/rampartnet/rampart/internal/policy"
	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// Agent runs one node.
type Agent struct {
	cfg *Config
	log *slog.Logger
	dev *datapath.Device
	// rules applies the policy table; after its first whole table, changes
	// go to the kernel as element additions and deletions.
	rules *nft.Applier
	// kube is the API server source, when the config names one; loading
	// is the version of its snapshot being compiled (under mu).
	kube    *cluster.Kube
	loading string

	// peersMu orders changes of the datapath's peers: the nodes (and
	// the credentials they are keyed with) as they are in the datapath.
	peersMu sync.Mutex
	nodes   []Node
	creds   *credentials
	// peersKey says which nodes and gateways the datapath's peers were
	// last set from; gw is what the agent knows of its IPsecPeers.
	peersKey string
	gw       gatewayState
	// l7 is the node's L7 proxy and its steering (l7_linux.go).
	l7 *l7State

	mu     sync.Mutex
	status PolicyStatus
	stats  applyStats
	// datapathUp is true while the datapath's Run goes on (/readyz).
	datapathUp atomic.Bool
}

// PolicyStatus is what the agent last did with the cluster's policy.
type PolicyStatus struct {
	// Applied is when the rules in force were applied, and Generation how
	// many sets of rules were applied since the agent started.
	Applied    time.Time `json:"applied"`
	Generation int       `json:"generation"`
	LocalPods  int       `json:"localPods"`
	Policies   int       `json:"policies"`
	// Error is why the last change was not applied (the previous rules
	// stay in force); empty when the rules match the manifests.
	Error string `json:"error,omitempty"`
	// Fingerprint identifies the state of the manifests that Error (or,
	// without one, the rules in force) is about: Fingerprint of
	// spec.policy.paths when the agent last looked at them. A tool that
	// changes the manifests computes the same and waits until the status
	// file carries it.
	Fingerprint string `json:"fingerprint,omitempty"`
	// SourceVersion, when the agent reads an API server, is the
	// resourceVersion its view had reached when it last compiled (with
	// Error empty: the rules in force are of that view or a later one). A
	// tool that writes to the API server waits until it reaches its write's.
	SourceVersion string `json:"sourceVersion,omitempty"`
	// Certificate is the node certificate in force, with credentials
	// csr.
	Certificate *CertificateStatus `json:"certificate,omitempty"`
}

// StatusPath is the file beside the control socket where the agent writes
// its PolicyStatus as JSON after every attempt to apply the manifests
// ("node.sock" → "node.status.json"), so that tools such as `rampart lab`
// know when a change is in force or why it was refused.
func StatusPath(controlSocket string) string {
	return strings.TrimSuffix(controlSocket, filepath.Ext(controlSocket)) + ".status.json"
}

// ReadStatus reads the PolicyStatus an agent wrote (StatusPath).
func ReadStatus(path string) (PolicyStatus, error) {
	var st PolicyStatus
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("agent status %s: %w", path, err)
	}
	return st, nil
}

// writeStatus replaces the status file in one rename, so a reader never
// sees half of it. A failure is logged: the status file is a report, the
// rules are what matters.
func (a *Agent) writeStatus(st PolicyStatus) {
	if a.cfg.ControlSocket == "" {
		return
	}
	path := StatusPath(a.cfg.ControlSocket)
	b, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		tmp := path + ".tmp"
		if err = os.WriteFile(tmp, append(b, '\n'), 0o644); err == nil {
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		a.log.Warn("status file not written", "path", path, "err", err)
	}
}

// New makes an agent; Run starts it.
func New(cfg *Config, log *slog.Logger) *Agent {
	if log == nil {
		log = slog.Default()
	}
	return &Agent{cfg: cfg, log: log, nodes: cfg.Nodes, creds: &credentials{Chain: cfg.Certs, Key: cfg.Key, CAs: cfg.CAs}}
}

// tunnelConfig is the datapath's view of the node: one IKE-keyed peer per
// other node.
func (a *Agent) tunnelConfig() *datapath.Config {
	c := a.cfg
	t := &datapath.Config{Name: c.NodeName, DeviceName: c.Device, LocalAddr: c.Address, Port: datapath.DefaultPort,
		UnderlayMTU: datapath.DefaultUnderlayMTU,
		IKE:         datapath.IKEOptions{Retransmit: datapath.DefaultIKERetransmit, Tries: datapath.DefaultIKETries}}
	for _, n := range a.nodes {
		t.Peers = append(t.Peers, a.nodePeer(n))
	}
	return t
}

// nodePeer is the datapath's peer for node n: its pod CIDR and address
// behind an IKE SA authenticated by both nodes' certificates.
func (a *Agent) nodePeer(n Node) datapath.Peer {
	c := a.cfg
	self := []netip.Prefix{c.PodCIDR, netip.PrefixFrom(c.Address, 32)}
	cr := a.creds
	return datapath.Peer{
		Name: n.Name, Endpoint: netip.AddrPortFrom(n.Address, datapath.DefaultPort), Mode: esp.ModeTunnel,
		LocalSubnets: self, RemoteSubnets: []netip.Prefix{n.PodCIDR, netip.PrefixFrom(n.Address, 32)},
		IKE: &datapath.IKEPeer{
			LocalID:  ikecrypto.Identity{Type: ikecrypto.IDFQDN, Data: []byte(c.NodeName)},
			RemoteID: ikecrypto.Identity{Type: ikecrypto.IDFQDN, Data: []byte(n.Name)},
			Certs:    cr.Chain, Key: cr.Key, CAs: cr.CAs, IKEProposals: c.IKEProposals, ESPProposals: c.ESPProposals,
			Initiate: c.NodeName < n.Name, StrictTS: true, RekeyTime: c.RekeyTime, ChildRekeyTime: c.ChildRekeyTime, DPDInterval: c.DPDPeriod,
			ReplayWindow: c.ReplayWindow,
		},
	}
}

// agentESPProposals: AES-256-GCM with extended sequence numbers (node
// pairs carry a lot) and Curve25519 for perfect forward secrecy on rekeys.
const agentESPProposals = "aes256gcm16-x25519-esn"

// Run runs the node until ctx ends. The nftables rules stay when it
// returns (fail closed); the TUN device goes.
func (a *Agent) Run(ctx context.Context) error {
	errc := make(chan error, 8) // more than the goroutines that send: none blocks after Run returned
	if a.cfg.Enforce {
		// Again, in case the install step did not run or the table was
		// removed: before the datapath, so nothing leaves in clear.
		if err := nft.InstallGuard(a.cfg.guard()); err != nil {
			return err
		}
	}
	// With an API server the datapath runs even without other nodes yet:
	// they, and the IPsec gateways, are added to it as they come.
	if a.cfg.Encrypt && (len(a.cfg.Nodes) > 0 || a.cfg.Kube != nil) {
		var err error
		if a.dev, err = datapath.New(a.tunnelConfig(), datapath.Options{Logger: a.log, OnIKE: a.gw.onIKE}); err != nil {
			return fmt.Errorf("agent: datapath: %w", err)
		}
		defer a.dev.Close()
		a.datapathUp.Store(true)
		go func() {
			err := a.dev.Run(ctx)
			a.datapathUp.Store(false)
			errc <- err
		}()
		go func() { errc <- a.dev.ServeControl(ctx, a.cfg.ControlSocket) }()
	}
	if a.cfg.Encrypt && a.cfg.CSR {
		src, err := a.cfg.csrSource(a.log)
		if err != nil {
			return err
		}
		a.setCertificate(a.cfg.Certs[0], nil)
		go func() { errc <- a.renewCredentials(ctx, src) }()
	}
	if a.cfg.MetricsAddress != "" {
		// After the datapath, whose metrics it serves; before the
		// watchers, so that a port in use stops Run with nothing left
		// running.
		l, err := a.listenHTTP()
		if err != nil {
			return err
		}
		go func() { errc <- a.serveHTTP(ctx, l) }()
	}
	if serve, err := a.startL7(ctx); err != nil {
		return err
	} else {
		go func() { errc <- serve() }()
	}
	if a.cfg.Kube != nil {
		go func() { errc <- a.watchCluster(ctx) }()
	}
	if a.cfg.Kube != nil {
		go func() { errc <- a.syncPolicyKube(ctx) }()
	} else {
		go func() { errc <- a.syncPolicy(ctx) }()
	}
	a.log.Info("agent up", "node", a.cfg.NodeName, "address", a.cfg.Address, "podCIDR", a.cfg.PodCIDR,
		"nodes", len(a.cfg.Nodes), "encrypt", a.cfg.Encrypt, "enforce", a.cfg.Enforce)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// Status is the agent's policy status.
func (a *Agent) Status() PolicyStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status
}

// kubeSettle is how long the agent lets a burst of API changes (a pod's
// creation, then its status) gather before it compiles them once.
const kubeSettle = 50 * time.Millisecond

// syncPolicyKube applies the policy of the cluster that the API server
// holds, and again after each change that its informers see. Until they
// have listed everything once, and while the API server is unreachable,
// the rules in force stay: a partial view could enforce half a change.
func (a *Agent) syncPolicyKube(ctx context.Context) error {
	rc, name, err := a.cfg.Kube.RESTConfig()
	if err != nil {
		return fmt.Errorf("agent: spec.policy.kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("agent: API server %s: %w", name, err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("agent: API server %s: %w", name, err)
	}
	// With the dynamic client the source also reads the cluster-wide
	// policy tiers (and Rampart's and Istio's resources) where served.
	a.kube = cluster.NewKube(client, cluster.KubeOptions{Name: name, Resync: 10 * time.Minute, Dynamic: dyn})
	a.setError(fmt.Sprintf("waiting for the API server %s (%s)", name, rc.Host))
	if err := a.kube.Start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	a.log.Info("API server listed", "server", rc.Host, "context", name)
	for {
		err := a.apply()
		msg := ""
		if err != nil {
			a.log.Error("policy not applied; the rules in force stay", "err", err)
			msg = err.Error()
		}
		a.updateStatus(func(s *PolicyStatus) { s.Error, s.SourceVersion = msg, a.loading })
		select {
		case <-ctx.Done():
			return nil
		case <-a.kube.Changed():
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(kubeSettle):
		}
	}
}

// setError records why the last change was not applied ("" when the
// rules are those of the source) and writes the status file.
func (a *Agent) setError(msg string) {
	a.updateStatus(func(s *PolicyStatus) { s.Error = msg })
}

// updateStatus changes the status under a.mu (f may read the agent's other
// fields under it too) and writes the status file.
func (a *Agent) updateStatus(f func(*PolicyStatus)) {
	a.mu.Lock()
	f(&a.status)
	st := a.status
	a.mu.Unlock()
	a.writeStatus(st)
}

// pollInterval is how often the manifests are checked for changes.
const pollInterval = 500 * time.Millisecond

// syncPolicy applies the manifests' policy, and again each time they
// change.
func (a *Agent) syncPolicy(ctx context.Context) error {
	var last [32]byte
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for first := true; ; first = false {
		sum, err := fingerprint(a.cfg.PolicyPaths)
		fp := ""
		if err == nil {
			fp = hex.EncodeToString(sum[:])
		}
		a.mu.Lock()
		current := a.status.Error == "" && a.status.Fingerprint == fp
		a.mu.Unlock()
		switch {
		case err == nil && sum == last && !first && current:
		case err == nil && sum == last && !first:
			// A refused change was undone: the manifests are again those
			// of the rules in force.
			a.updateStatus(func(s *PolicyStatus) { s.Error, s.Fingerprint = "", fp })
		default:
			if err == nil {
				err = a.apply()
			}
			msg := ""
			if err != nil {
				a.log.Error("policy not applied; the rules in force stay", "err", err)
				msg = err.Error()
			} else {
				last = sum
			}
			a.updateStatus(func(s *PolicyStatus) { s.Error, s.Fingerprint = msg, fp })
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// loadModel reads the manifests, or the API server's objects, into a
// Model. Any error refuses the whole set: enforcing part of a broken change
// could open what it meant to close.
func (a *Agent) loadModel() (*policy.Model, *cluster.Snapshot, error) {
	var snap *cluster.Snapshot
	var err error
	if a.kube != nil {
		snap = a.kube.Snapshot()
		a.mu.Lock()
		a.loading = snap.Version
		a.mu.Unlock()
	} else if snap, err = cluster.Load(a.cfg.PolicyPaths...); err != nil {
		return nil, nil, err
	}
	m, diags, err := policy.FromSnapshot(snap, false)
	if errors.Is(err, policy.ErrInvalid) {
		return nil, nil, &invalidError{diags: diags}
	}
	return m, snap, err
}

// invalidError is a change refused for its diagnostics.
type invalidError struct{ diags []cluster.Diagnostic }

func (e *invalidError) Error() string {
	var msgs []string
	for _, d := range e.diags {
		if d.Severity == cluster.Error {
			msgs = append(msgs, d.String())
		}
	}
	return "invalid manifests:\n" + strings.Join(msgs, "\n")
}

// Fingerprint is the hex form of the fingerprint the agent computes of its
// manifests (spec.policy.paths, as the config resolves them) and reports
// in PolicyStatus.Fingerprint.
func Fingerprint(paths []string) (string, error) {
	sum, err := fingerprint(paths)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum[:]), nil
}

// fingerprint hashes the names, sizes and modification times of the files
// under paths: a change to any of them changes it.
func fingerprint(paths []string) ([32]byte, error) {
	h := sha256.New()
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00%d\x00%d\n", p, fi.Size(), fi.ModTime().UnixNano())
			return nil
		})
		if err != nil {
			return [32]byte{}, err
		}
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
