// Package deploy_test holds deploy/ to what docs/deploy.md says of it:
// every manifest is strictly valid, the agent config of the ConfigMap is a
// valid Agent config, the pods get only the privileges they need, and the
// RBAC grants exactly what each identity needs (the tests without a
// server); and the real kube-apiserver accepts all of it, admits its pods,
// and authorizes each identity as docs/deploy.md's table says
// (TestKubeDeployManifests).
package deploy_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/rampartnet/rampart/api/v1alpha1"
	"github.com/rampartnet/rampart/internal/agent"
	"github.com/rampartnet/rampart/internal/cluster"
)

// What the manifests are built around; the tests hold them to these.
const (
	namespace    = "rampart-system"
	imageName    = "ghcr.io/rampartnet/rampart"
	agentName    = "rampart-agent"
	ctrlName     = "rampart-controller"
	agentConfig  = "agent.yaml" // the ConfigMap's key
	caSecretName = "rampart-ipsec-ca"
)

// The agent's capabilities: NET_ADMIN for nftables, the TUN device, routes
// and SO_MARK; NET_BIND_SERVICE for IKE on UDP 500. The install step only
// writes files and the guard table.
var (
	agentCaps   = []corev1.Capability{"NET_ADMIN", "NET_BIND_SERVICE"}
	installCaps = []corev1.Capability{"NET_ADMIN"}
)

// TestDeployManifestsStrict reads every YAML file under deploy/ strictly:
// each document into its typed k8s.io/api object (unknown or duplicate
// fields are errors), the kustomizations into the subset the tests
// implement, and the ConfigMap's Agent config as the agent reads it. The
// CRDs (generated, and checked by the API server in api/v1alpha1's
// TestKubeCRDValidation) are read as YAML only: their Go types
// (k8s.io/apiextensions-apiserver) are not a dependency of the module.
func TestDeployManifestsStrict(t *testing.T) {
	root := deployDir(t)
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(path) != ".yaml" && filepath.Ext(path) != ".yml") {
			return err
		}
		n++
		name := rel(root, path)
		if d.Name() == "kustomization.yaml" {
			readKustomization(t, root, path)
			return nil
		}
		for i, doc := range splitDocs(t, path) {
			var tm struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Errorf("deploy/%s: document %d: %v", name, i+1, err)
				continue
			}
			if tm.Kind == "" {
				continue // comments only
			}
			if tm.Kind == "CustomResourceDefinition" {
				var m map[string]any
				if err := yaml.UnmarshalStrict(doc, &m); err != nil {
					t.Errorf("deploy/%s: document %d: %v", name, i+1, err)
				}
				continue
			}
			obj, err := scheme.Scheme.New(schema.FromAPIVersionAndKind(tm.APIVersion, tm.Kind))
			if err != nil {
				t.Errorf("deploy/%s: document %d: %s %s: %v", name, i+1, tm.APIVersion, tm.Kind, err)
				continue
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Errorf("deploy/%s: document %d (%s): %v", name, i+1, tm.Kind, err)
				continue
			}
			if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Name == agentName+"-config" {
				var a v1alpha1.Agent
				if _, ds := cluster.DecodeObject("deploy/"+name+": data."+agentConfig, []byte(cm.Data[agentConfig]), v1alpha1.APIVersion, "Agent", &a); len(ds) > 0 {
					t.Errorf("the agent config: %v", ds)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("only %d YAML files under deploy/", n)
	}
}

// TestDeployKustomization: the kustomization names every manifest under
// deploy/ (the CRDs included: `make generate` adds files there), puts
// every namespaced object in rampart-system and every container on the one
// image.
func TestDeployKustomization(t *testing.T) {
	objs, top, files := build(t)
	gw, _, gwFiles := buildAt(t, gatewaysDir)
	files = append(files, gwFiles...)
	if !slices.ContainsFunc(gw, func(o object) bool {
		return o.GetKind() == "RoleBinding" && o.GetNamespace() == v1alpha1.DefaultSecretNamespace
	}) {
		t.Errorf("deploy/%s binds the agents to no role in %s, where the IPsecPeers' Secrets are", gatewaysDir, v1alpha1.DefaultSecretNamespace)
	}
	if top.Namespace != namespace {
		t.Errorf("namespace %q, want %q (the controller's flags and docs name it)", top.Namespace, namespace)
	}
	root := deployDir(t)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".yaml" {
			return err
		}
		if !slices.Contains(files, rel(root, path)) {
			t.Errorf("deploy/%s is not in any kustomization's resources: `kubectl apply -k deploy/` would leave it out", rel(root, path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if kindOf(t, o).namespaced && o.GetNamespace() != namespace {
			t.Errorf("%s: namespace %q", o, o.GetNamespace())
		}
	}
	if len(top.Images) != 1 || top.Images[0].Name != imageName || top.Images[0].NewTag == "" {
		t.Fatalf("images: %+v; want one entry for %s with a newTag", top.Images, imageName)
	}
	want := imageName + ":" + top.Images[0].NewTag
	imgs := images(objs)
	if len(imgs) != 1 || len(imgs[want]) != 3 {
		t.Errorf("images %v; want %s for the install, agent and controller containers", imgs, want)
	}
	if len(objs) < 14 {
		t.Errorf("only %d objects", len(objs))
	}
}

// typed converts a built object to its k8s.io/api type, refusing fields
// the type does not have.
func typed[T any](t testing.TB, o object) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, out, true); err != nil {
		t.Fatalf("%s: %v", o, err)
	}
	return out
}

// find returns the built object of that kind and name.
func find(t testing.TB, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the build", kind, name)
	return object{}
}

// TestDeployPodSpecs: the agent and the controller get the privileges
// docs/deploy.md lists and no more.
func TestDeployPodSpecs(t *testing.T) {
	objs, _, _ := build(t)
	ds := typed[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", agentName))
	for _, p := range checkDaemonSet(ds) {
		t.Error("DaemonSet " + p)
	}
	dep := typed[appsv1.Deployment](t, find(t, objs, "Deployment", ctrlName))
	for _, p := range checkDeployment(dep, namespace) {
		t.Error("Deployment " + p)
	}
}

// checkDaemonSet lists what is wrong with the agent's DaemonSet, as
// written or as the API server stored it (with its defaults).
func checkDaemonSet(ds *appsv1.DaemonSet) []string {
	var bad []string
	errf := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	s := ds.Spec.Template.Spec
	if !s.HostNetwork || s.HostPID || s.HostIPC {
		errf("hostNetwork %v hostPID %v hostIPC %v; want the host's network only", s.HostNetwork, s.HostPID, s.HostIPC)
	}
	if s.ServiceAccountName != agentName {
		errf("serviceAccountName %q", s.ServiceAccountName)
	}
	if s.PriorityClassName != "system-node-critical" {
		errf("priorityClassName %q", s.PriorityClassName)
	}
	if !slices.ContainsFunc(s.Tolerations, func(t corev1.Toleration) bool {
		return t.Operator == corev1.TolerationOpExists && t.Key == "" && t.Effect == ""
	}) {
		errf("does not tolerate every taint: %+v", s.Tolerations)
	}
	u := ds.Spec.UpdateStrategy
	if u.Type != appsv1.RollingUpdateDaemonSetStrategyType || u.RollingUpdate == nil || u.RollingUpdate.MaxUnavailable == nil ||
		u.RollingUpdate.MaxUnavailable.String() != "1" {
		errf("updateStrategy %+v; want RollingUpdate with maxUnavailable 1", u)
	}
	if len(s.InitContainers) != 1 || len(s.Containers) != 1 {
		errf("%d init containers and %d containers; want the install step and the agent", len(s.InitContainers), len(s.Containers))
		return bad
	}
	for _, c := range []struct {
		c    corev1.Container
		caps []corev1.Capability
		verb string
	}{{s.InitContainers[0], installCaps, "install"}, {s.Containers[0], agentCaps, "run"}} {
		name := "container " + c.c.Name
		for _, p := range checkSecurity(c.c.SecurityContext, s.SecurityContext, c.caps) {
			errf("%s: %s", name, p)
		}
		if len(c.c.Command) < 3 || c.c.Command[1] != "agent" || c.c.Command[2] != c.verb ||
			!slices.Contains(c.c.Command, "--node-name=$(NODE_NAME)") {
			errf("%s: command %q; want rampart agent %s --node-name=$(NODE_NAME)", name, c.c.Command, c.verb)
		}
		if !slices.ContainsFunc(c.c.Env, func(e corev1.EnvVar) bool {
			return e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
		}) {
			errf("%s: no NODE_NAME from the downward API's spec.nodeName", name)
		}
	}
	agentC := s.Containers[0]
	for _, p := range []*corev1.Probe{agentC.StartupProbe, agentC.LivenessProbe, agentC.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "metrics" {
			errf("container agent: a probe is missing or not an HTTP GET on the port metrics: %+v", p)
		}
	}
	if agentC.LivenessProbe != nil && agentC.LivenessProbe.HTTPGet != nil && agentC.LivenessProbe.HTTPGet.Path != "/healthz" ||
		agentC.ReadinessProbe != nil && agentC.ReadinessProbe.HTTPGet != nil && agentC.ReadinessProbe.HTTPGet.Path != "/readyz" {
		errf("container agent: liveness must ask /healthz and readiness /readyz")
	}
	for _, v := range s.Volumes {
		if v.HostPath != nil && (v.HostPath.Path == "/" || v.HostPath.Path == "/proc" || v.HostPath.Path == "/sys" ||
			strings.HasPrefix(v.HostPath.Path, "/var/run/containerd") || strings.HasSuffix(v.HostPath.Path, ".sock")) {
			errf("volume %s mounts the host's %s", v.Name, v.HostPath.Path)
		}
	}
	return bad
}

// checkSecurity lists what is wrong with a container's security context:
// it must not be privileged nor gain privileges, must drop every
// capability and add back exactly caps, and keep its root filesystem
// read-only.
func checkSecurity(sc *corev1.SecurityContext, pod *corev1.PodSecurityContext, caps []corev1.Capability) []string {
	if sc == nil {
		return []string{"no securityContext"}
	}
	var bad []string
	if sc.Privileged == nil || *sc.Privileged {
		bad = append(bad, "privileged is not false")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		bad = append(bad, "allowPrivilegeEscalation is not false")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		bad = append(bad, "the root filesystem is writable")
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		bad = append(bad, "capabilities.drop is not [ALL]")
	} else if add := slices.Sorted(slices.Values(sc.Capabilities.Add)); !slices.Equal(add, caps) {
		bad = append(bad, fmt.Sprintf("capabilities.add %v; want exactly %v", add, caps))
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil && pod != nil {
		seccomp = pod.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		bad = append(bad, "seccompProfile is not RuntimeDefault")
	}
	return bad
}

// checkDeployment lists what is wrong with the controller's Deployment.
func checkDeployment(d *appsv1.Deployment, ns string) []string {
	var bad []string
	errf := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	s := d.Spec.Template.Spec
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		errf("replicas %v; want 2", d.Spec.Replicas)
	}
	if s.ServiceAccountName != ctrlName {
		errf("serviceAccountName %q", s.ServiceAccountName)
	}
	if s.HostPID || s.HostIPC {
		errf("hostPID or hostIPC")
	}
	if s.SecurityContext == nil || s.SecurityContext.RunAsNonRoot == nil || !*s.SecurityContext.RunAsNonRoot ||
		s.SecurityContext.RunAsUser == nil || *s.SecurityContext.RunAsUser == 0 {
		errf("the pod may run as root: %+v", s.SecurityContext)
	}
	if len(s.Containers) != 1 || len(s.InitContainers) != 0 {
		errf("%d containers, %d init containers; want the controller alone", len(s.Containers), len(s.InitContainers))
		return bad
	}
	c := s.Containers[0]
	for _, p := range checkSecurity(c.SecurityContext, s.SecurityContext, nil) {
		errf("container %s: %s", c.Name, p)
	}
	// The flags name the namespace: kustomize's namespace field does not
	// rewrite them, nor the Role that lets it read the CA.
	for _, want := range []string{"controller", "--leader-elect", "--ca-secret=" + ns + "/" + caSecretName,
		"--agent-service-account=" + ns + "/" + agentName, "--agent-pod-selector=app.kubernetes.io/name=" + agentName} {
		if !slices.Contains(c.Command, want) {
			errf("container %s: command %q lacks %q", c.Name, c.Command, want)
		}
	}
	if d.Spec.Template.Labels["app.kubernetes.io/name"] != ctrlName {
		errf("pod labels %v", d.Spec.Template.Labels)
	}
	return bad
}

// TestDeployAgentConfig: the ConfigMap's Agent config is what the agent
// accepts (with a node name from --node-name and credentials where the
// DaemonSet mounts them), and agrees with the DaemonSet: the metrics port
// is the probes', the files it names are mounted, and the agent pods carry
// the label the controller's --agent-pod-selector selects.
func TestDeployAgentConfig(t *testing.T) {
	objs, _, _ := build(t)
	cm := typed[corev1.ConfigMap](t, find(t, objs, "ConfigMap", agentName+"-config"))
	ds := typed[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", agentName))
	text := cm.Data[agentConfig]
	var a v1alpha1.Agent
	if _, diags := cluster.DecodeObject(agentConfig, []byte(text), v1alpha1.APIVersion, "Agent", &a); len(diags) > 0 {
		t.Fatalf("the ConfigMap's %s: %v", agentConfig, diags)
	}
	if a.Spec.NodeName != "" {
		t.Errorf("spec.nodeName %q: every node's agent names its own (--node-name)", a.Spec.NodeName)
	}
	if a.Spec.NodesFrom != agent.NodesFromAPI || a.Spec.Policy.Kubeconfig != agent.InCluster {
		t.Errorf("nodesFrom %q, policy.kubeconfig %q; want the API server, in-cluster", a.Spec.NodesFrom, a.Spec.Policy.Kubeconfig)
	}
	if m := a.Spec.Encryption.Mode; m != "" && m != "ipsec" || a.Spec.Encryption.Enforce != nil && !*a.Spec.Encryption.Enforce {
		t.Errorf("encryption %+v; want ipsec, enforced", a.Spec.Encryption)
	}

	// Mounts of the agent container, by path.
	s := ds.Spec.Template.Spec
	mounted := func(c corev1.Container, path string) bool {
		return slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
			return path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		})
	}
	for _, c := range append(slices.Clone(s.InitContainers), s.Containers...) {
		cfgArg := ""
		for _, arg := range c.Command {
			if v, ok := strings.CutPrefix(arg, "--config="); ok {
				cfgArg = v
			}
		}
		if cfgArg != "/etc/rampart/"+agentConfig || !mounted(c, cfgArg) {
			t.Errorf("container %s: --config=%q is not the ConfigMap's %s where it is mounted", c.Name, cfgArg, agentConfig)
		}
	}
	agentC := s.Containers[0]
	// The node certificate through the CSR API, kept on the host where
	// the agent container can write it.
	e := a.Spec.Encryption
	if e.Credentials != agent.CredentialsCSR || e.CredentialsDir == "" || e.CAFile+e.CertFile+e.KeyFile != "" {
		t.Errorf("encryption credentials %q in %q: want csr, kept in a directory", e.Credentials, e.CredentialsDir)
	}
	if !slices.ContainsFunc(agentC.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.MountPath == e.CredentialsDir && !m.ReadOnly && slices.ContainsFunc(s.Volumes, func(v corev1.Volume) bool {
			return v.Name == m.Name && v.HostPath != nil && v.HostPath.Path == e.CredentialsDir
		})
	}) {
		t.Errorf("container agent: spec.encryption.credentialsDir %s is not the host's, mounted read-write", e.CredentialsDir)
	}
	if !mounted(agentC, a.Spec.ControlSocket) {
		t.Errorf("container agent: spec.controlSocket %s is not on a mounted volume", a.Spec.ControlSocket)
	}
	if !mounted(agentC, "/dev/net/tun") {
		t.Error("container agent: /dev/net/tun is not mounted")
	}
	_, port, err := net.SplitHostPort(a.Spec.MetricsAddress)
	if err != nil {
		t.Fatalf("spec.metricsAddress %q: %v", a.Spec.MetricsAddress, err)
	}
	if !slices.ContainsFunc(agentC.Ports, func(p corev1.ContainerPort) bool {
		return p.Name == "metrics" && strconv.Itoa(int(p.ContainerPort)) == port && p.Protocol == corev1.ProtocolTCP
	}) {
		t.Errorf("spec.metricsAddress %q is not the port named metrics of the agent container (%+v)", a.Spec.MetricsAddress, agentC.Ports)
	}
	if ds.Spec.Template.Labels["app.kubernetes.io/name"] != agentName {
		t.Errorf("agent pod labels %v: the controller's --agent-pod-selector selects app.kubernetes.io/name=%s", ds.Spec.Template.Labels, agentName)
	}

	// The agent accepts the file with a node name.
	dir := t.TempDir()
	path := filepath.Join(dir, agentConfig)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := agent.LoadConfigWith(path, agent.LoadOptions{NodeName: "node-1"})
	if cfg == nil || cluster.HasErrors(diags) {
		t.Fatalf("the agent refuses the ConfigMap's config: %v", diags)
	}
	if cfg.NodeName != "node-1" || !cfg.NodesFromAPI || cfg.Kube == nil || !cfg.Kube.InCluster || !cfg.Encrypt || !cfg.Enforce ||
		cfg.MetricsAddress != a.Spec.MetricsAddress || !cfg.CSR || cfg.CredentialsDir != e.CredentialsDir {
		t.Errorf("config %+v", cfg)
	}
}

// writeNodeCredentials writes a CA (ca.crt), and a certificate for node
// (node.crt) with its key (node.key, mode 0600) into dir.
func writeNodeCredentials(t *testing.T, dir, node string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: node}, DNSNames: []string{node},
		KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name, typ string
		der       []byte
		mode      os.FileMode
	}{{"ca.crt", "CERTIFICATE", caDER, 0o644}, {"node.crt", "CERTIFICATE", der, 0o644}, {"node.key", "PRIVATE KEY", keyDER, 0o600}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), f.mode); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDeployRBACMatchesSecurityDoc: the certificate rules here are the
// ones docs/security.md lists and TestKubeCSRIssuesNodeCertificate
// applies from it: the deployment must not grant more, nor less, than
// what was tested there.
func TestDeployRBACMatchesSecurityDoc(t *testing.T) {
	objs, _, _ := build(t)
	doc, err := os.ReadFile(filepath.Join(deployDir(t), "..", "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := bytes.Cut(doc, []byte("### RBAC, per identity and verb"))
	var block []byte
	if ok {
		_, block, ok = bytes.Cut(after, []byte("```yaml\n"))
	}
	if ok {
		block, _, ok = bytes.Cut(block, []byte("```"))
	}
	if !ok {
		t.Fatal("docs/security.md has no yaml block under \"### RBAC, per identity and verb\"")
	}
	path := filepath.Join(t.TempDir(), "security.yaml")
	if err := os.WriteFile(path, block, 0o644); err != nil {
		t.Fatal(err)
	}
	docObjs := readObjects(t, filepath.Dir(path), path)
	for _, want := range []struct{ kind, name string }{
		{"ClusterRole", agentName + "-certificates"}, {"ClusterRole", ctrlName}, {"Role", ctrlName},
		{"ClusterRoleBinding", agentName + "-certificates"}, {"ClusterRoleBinding", ctrlName}, {"RoleBinding", ctrlName},
	} {
		got := find(t, objs, want.kind, want.name)
		exp := find(t, docObjs, want.kind, want.name)
		switch want.kind {
		case "ClusterRole", "Role":
			g, e := typed[rbacv1.ClusterRole](t, got).Rules, typed[rbacv1.ClusterRole](t, exp).Rules
			if !reflect.DeepEqual(g, e) {
				t.Errorf("%s %s: rules\n%s\ndocs/security.md's:\n%s", want.kind, want.name, yamlOf(t, g), yamlOf(t, e))
			}
		default:
			g, e := typed[rbacv1.ClusterRoleBinding](t, got), typed[rbacv1.ClusterRoleBinding](t, exp)
			if !reflect.DeepEqual(g.RoleRef, e.RoleRef) || !reflect.DeepEqual(g.Subjects, e.Subjects) {
				t.Errorf("%s %s: %+v %+v; docs/security.md's: %+v %+v", want.kind, want.name, g.RoleRef, g.Subjects, e.RoleRef, e.Subjects)
			}
		}
	}
}

func yamlOf(t testing.TB, v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
