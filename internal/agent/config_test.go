package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rampartnet/rampart/internal/cluster"
)

// writeCreds writes a CA, and a certificate for node with its key as
// cert.pem and key.pem, and returns the directory.
func writeCreds(t *testing.T, node string) string {
	t.Helper()
	dir := t.TempDir()
	newTestCA(t, dir).issue(t, node)
	for _, f := range [][2]string{{node + ".pem", "cert.pem"}, {node + ".key", "key.pem"}} {
		if err := os.Rename(filepath.Join(dir, f[0]), filepath.Join(dir, f[1])); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const validAgent = `apiVersion: rampart.dev/v1alpha1
kind: Agent
metadata: {name: node-1}
spec:
  nodeName: node-1
  underlayAddress: 198.18.0.11
  podCIDR: 198.19.1.0/24
  clusterCIDR: 198.19.0.0/16
  controlSocket: agent.sock
  nodes:
  - {name: node-2, address: 198.18.0.12, podCIDR: 198.19.2.0/24}
  - {name: node-3, address: 198.18.0.13, podCIDR: 198.19.3.0/24}
  encryption: {caFile: ca.pem, certFile: cert.pem, keyFile: key.pem, childRekeyTime: 30m}
  policy: {paths: [manifests]}
`

func TestLoadConfig(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(string) string
		prep  func(dir string)
		want  string // in the error, "" for none
		line  int    // of the error
		check func(*testing.T, *Config)
	}{
		{name: "valid", edit: func(s string) string { return s }, check: func(t *testing.T, c *Config) {
			if c.NodeName != "node-1" || len(c.Nodes) != 2 || !c.Encrypt || !c.Enforce || c.Device != DefaultDevice ||
				c.ChildRekeyTime != 30*time.Minute || c.RekeyTime != 4*time.Hour || len(c.Certs) != 1 || c.Key == nil {
				t.Errorf("config %+v", c)
			}
			if !filepath.IsAbs(c.PolicyPaths[0]) || !filepath.IsAbs(c.ControlSocket) {
				t.Errorf("relative paths not resolved: %v %s", c.PolicyPaths, c.ControlSocket)
			}
			// AES-256-GCM: 1500 - 20 (IPv4) - 8 (UDP) - 37 (ESP).
			if mtu, err := PodMTU(c); mtu != 1435 || err != nil {
				t.Errorf("pod MTU %d, %v; want 1435", mtu, err)
			}
		}},
		{name: "CBC allowed: a smaller MTU", edit: func(s string) string {
			return strings.Replace(s, "childRekeyTime: 30m}", "childRekeyTime: 30m, espProposals: [aes256gcm16-x25519-esn, aes128-sha256-x25519-esn]}", 1)
		}, check: func(t *testing.T, c *Config) {
			// The most that either may add: AES-CBC's 57 octets.
			if mtu, err := PodMTU(c); mtu != 1415 || err != nil {
				t.Errorf("pod MTU %d, %v; want 1415", mtu, err)
			}
		}},
		{name: "pod CIDR not a network", edit: func(s string) string {
			return strings.Replace(s, "podCIDR: 198.19.1.0/24", "podCIDR: 198.19.1.7/24", 1)
		},
			want: `spec.podCIDR: "198.19.1.7/24" is not an IPv4 CIDR block`, line: 7},
		{name: "overlapping pod CIDRs", edit: func(s string) string { return strings.Replace(s, "198.19.3.0/24", "198.19.1.0/25", 1) },
			want: "spec.nodes[1].podCIDR: 198.19.1.0/25 overlaps node node-1's 198.19.1.0/24", line: 12},
		{name: "outside the cluster", edit: func(s string) string { return strings.Replace(s, "198.19.3.0/24", "198.18.3.0/24", 1) },
			want: "spec.nodes[1].podCIDR: 198.18.3.0/24 is not inside the cluster's 198.19.0.0/16", line: 12},
		{name: "same address twice", edit: func(s string) string { return strings.Replace(s, "198.18.0.13", "198.18.0.12", 1) },
			want: "spec.nodes[1].address: 198.18.0.12 is also node node-2's address", line: 12},
		{name: "duplicate node", edit: func(s string) string { return strings.Replace(s, "name: node-3", "name: node-2", 1) },
			want: `spec.nodes[1].name: node "node-2" is also spec.nodes[0]`, line: 12},
		{name: "invalid node name", edit: func(s string) string { return strings.Replace(s, "nodeName: node-1", "nodeName: Node_1", 1) },
			want: `spec.nodeName: "Node_1" is not a node name`, line: 5},
		{name: "certificate of another node", edit: func(s string) string { return strings.Replace(s, "nodeName: node-1", "nodeName: node-9", 1) },
			want: "spec.encryption.certFile: the certificate names [node-1], not this node (node-9)"},
		{name: "key readable by others", edit: func(s string) string { return s }, prep: func(dir string) { os.Chmod(filepath.Join(dir, "key.pem"), 0o644) },
			want: "spec.encryption.keyFile: ikecrypto: secret file", line: 13},
		{name: "no policy", edit: func(s string) string { return strings.Replace(s, "paths: [manifests]", "paths: []", 1) },
			want: "spec.policy.paths: at least one manifest file or directory is required"},
		{name: "policy from an API server", edit: func(s string) string {
			return strings.Replace(s, "paths: [manifests]", "kubeconfig: kube/config, context: lab", 1)
		}, check: func(t *testing.T, c *Config) {
			if c.Kube == nil || !filepath.IsAbs(c.Kube.Path) || c.Kube.Context != "lab" || len(c.PolicyPaths) != 0 {
				t.Errorf("kube source %+v, paths %v", c.Kube, c.PolicyPaths)
			}
		}},
		{name: "policy in-cluster", edit: func(s string) string {
			return strings.Replace(s, "paths: [manifests]", "kubeconfig: in-cluster", 1)
		}, check: func(t *testing.T, c *Config) {
			if c.Kube == nil || !c.Kube.InCluster {
				t.Errorf("kube source %+v", c.Kube)
			}
		}},
		{name: "nodes from the API server", edit: func(s string) string {
			s = strings.Replace(s, "paths: [manifests]", "kubeconfig: kube/config", 1)
			s = strings.Replace(s, "  underlayAddress: 198.18.0.11\n", "", 1)
			s = strings.Replace(s, "  podCIDR: 198.19.1.0/24\n", "", 1)
			s = strings.Replace(s, "  - {name: node-2, address: 198.18.0.12, podCIDR: 198.19.2.0/24}\n", "", 1)
			s = strings.Replace(s, "  - {name: node-3, address: 198.18.0.13, podCIDR: 198.19.3.0/24}\n", "", 1)
			return strings.Replace(s, "  nodes:\n", "  nodesFrom: apiserver\n", 1)
		}, check: func(t *testing.T, c *Config) {
			if !c.NodesFromAPI || len(c.Nodes) != 0 || c.PodCIDR.IsValid() {
				t.Fatalf("config %+v", c)
			}
			node := func(name, addr, cidr string) corev1.Node {
				n := corev1.Node{Spec: corev1.NodeSpec{PodCIDR: cidr}}
				n.Name = name
				n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: addr}}
				return n
			}
			nc, err := c.WithNodes([]corev1.Node{node("node-2", "198.18.0.12", "198.19.2.0/24"), node("node-1", "198.18.0.11", "198.19.1.0/24")})
			if err != nil {
				t.Fatal(err)
			}
			if nc.Address.String() != "198.18.0.11" || nc.PodCIDR.String() != "198.19.1.0/24" || len(nc.Nodes) != 1 || nc.Nodes[0].Name != "node-2" {
				t.Errorf("with nodes: %+v", nc)
			}
			// A node claiming another's pod CIDR is refused, as in a file.
			if _, err := c.WithNodes([]corev1.Node{node("node-1", "198.18.0.11", "198.19.1.0/24"), node("node-2", "198.18.0.12", "198.19.1.0/25")}); err == nil ||
				!strings.Contains(err.Error(), "overlaps") {
				t.Errorf("overlapping pod CIDRs from the API: %v", err)
			}
			if _, err := c.WithNodes([]corev1.Node{node("node-2", "198.18.0.12", "198.19.2.0/24")}); err == nil {
				t.Error("no Node of its own, yet resolved")
			}
		}},
		{name: "nodes from the API server need it", edit: func(s string) string {
			return strings.Replace(s, "  nodes:\n", "  nodesFrom: apiserver\n  nodes:\n", 1)
		}, want: "spec.nodesFrom: nodes from the API server need spec.policy.kubeconfig"},
		{name: "both policy sources", edit: func(s string) string {
			return strings.Replace(s, "paths: [manifests]", "paths: [manifests], kubeconfig: kube/config", 1)
		}, want: "spec.policy.kubeconfig: read either manifest paths or an API server, not both"},
		{name: "bad duration", edit: func(s string) string { return strings.Replace(s, "30m", "soon", 1) },
			want: `spec.encryption.childRekeyTime: "soon" is not a duration`},
		{name: "credentials through the CSR API", edit: func(s string) string {
			s = strings.Replace(s, "paths: [manifests]", "kubeconfig: in-cluster", 1)
			return strings.Replace(s, "{caFile: ca.pem, certFile: cert.pem, keyFile: key.pem,", "{credentials: csr, credentialsDir: pki, certificateLifetime: 2h,", 1)
		}, check: func(t *testing.T, c *Config) {
			if !c.CSR || c.CertLifetime != 2*time.Hour || !filepath.IsAbs(c.CredentialsDir) || c.Key != nil || len(c.Certs) != 0 {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "credentials csr: defaults", edit: func(s string) string {
			s = strings.Replace(s, "paths: [manifests]", "kubeconfig: in-cluster", 1)
			return strings.Replace(s, "{caFile: ca.pem, certFile: cert.pem, keyFile: key.pem,", "{credentials: csr,", 1)
		}, check: func(t *testing.T, c *Config) {
			if c.CertLifetime != DefaultCertLifetime || c.CredentialsDir != DefaultCredentialsDir {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "credentials csr without an API server", edit: func(s string) string {
			return strings.Replace(s, "{caFile: ca.pem, certFile: cert.pem, keyFile: key.pem,", "{credentials: csr,", 1)
		}, want: "spec.encryption.credentials: csr asks the API server for the certificate: it needs spec.policy.kubeconfig", line: 13},
		{name: "credentials csr and files", edit: func(s string) string {
			s = strings.Replace(s, "paths: [manifests]", "kubeconfig: in-cluster", 1)
			return strings.Replace(s, "{caFile: ca.pem,", "{credentials: csr, caFile: ca.pem,", 1)
		}, want: "spec.encryption.certFile: credentials is csr: the certificate comes from the CSR API, not from a file"},
		{name: "credentials csr: lifetime too short", edit: func(s string) string {
			s = strings.Replace(s, "paths: [manifests]", "kubeconfig: in-cluster", 1)
			return strings.Replace(s, "{caFile: ca.pem, certFile: cert.pem, keyFile: key.pem,", "{credentials: csr, certificateLifetime: 5m,", 1)
		}, want: `spec.encryption.certificateLifetime: "5m" is not a duration of at least 10m0s`},
		{name: "unknown credentials", edit: func(s string) string {
			return strings.Replace(s, "{caFile: ca.pem,", "{credentials: vault, caFile: ca.pem,", 1)
		}, want: `spec.encryption.credentials: "vault": want files or csr`},
		{name: "mesh settings", edit: func(s string) string {
			return strings.Replace(s, "  controlSocket: agent.sock\n", "  controlSocket: agent.sock\n  authorization: {trustDomain: example.org, rootNamespace: mesh}\n", 1)
		}, check: func(t *testing.T, c *Config) {
			if c.Mesh.TrustDomain != "example.org" || c.Mesh.RootNamespace != "mesh" {
				t.Errorf("mesh %+v", c.Mesh)
			}
		}},
		{name: "bad trust domain", edit: func(s string) string {
			return strings.Replace(s, "  controlSocket: agent.sock\n", "  controlSocket: agent.sock\n  authorization: {trustDomain: Not_A_Domain}\n", 1)
		}, want: `spec.authorization.trustDomain: "Not_A_Domain" is not a trust domain`},
		{name: "encryption off needs no credentials", edit: func(s string) string {
			return strings.Replace(s, "{caFile: ca.pem, certFile: cert.pem, keyFile: key.pem, childRekeyTime: 30m}", "{mode: \"off\"}", 1)
		}, check: func(t *testing.T, c *Config) {
			if c.Encrypt || c.Enforce {
				t.Errorf("encrypt %v enforce %v", c.Encrypt, c.Enforce)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeCreds(t, "node-1")
			if c.prep != nil {
				c.prep(dir)
			}
			path := filepath.Join(dir, "agent.yaml")
			if err := os.WriteFile(path, []byte(c.edit(validAgent)), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, ds := LoadConfig(path)
			if c.want == "" {
				if cfg == nil || cluster.HasErrors(ds) {
					t.Fatalf("errors: %v", ds)
				}
				c.check(t, cfg)
				return
			}
			if cfg != nil {
				t.Fatal("an invalid config was accepted")
			}
			for _, d := range ds {
				if strings.Contains(d.String(), c.want) {
					if c.line != 0 && d.Line != c.line {
						t.Errorf("line %d, want %d: %s", d.Line, c.line, d)
					}
					return
				}
			}
			t.Errorf("no error with %q in %v", c.want, ds)
		})
	}
}
