package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"

	"github.com/rampartnet/rampart/api/v1alpha1"
	"github.com/rampartnet/rampart/internal/kubetest"
	"github.com/rampartnet/rampart/ipsec/ike"
)

// TestKubeEncryptionConfig: an agent that reads an API server takes the
// cluster's EncryptionConfig over its file's encryption settings, as
// validated as the file's, and keeps the file's without one.
func TestKubeEncryptionConfig(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.InstallCRDs(ctx, "../../deploy/crds/rampart.dev_encryptionconfigs.yaml"); err != nil {
		t.Fatal(err)
	}
	dir := writeCreds(t, "node-1")
	text := strings.Replace(validAgent, "paths: [manifests]", "kubeconfig: "+c.Kubeconfig, 1)
	path := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, ds := LoadConfig(path)
	if cfg == nil {
		t.Fatal(ds)
	}

	// None in the cluster: the file's settings.
	got, err := ResolveEncryption(ctx, cfg)
	if err != nil || got.Encryption != "" || got.ReplayWindow != 0 {
		t.Fatalf("without an EncryptionConfig: %v, %q", err, got.Encryption)
	}
	if mtu, _ := PodMTU(got); mtu != 1435 {
		t.Errorf("pod MTU %d with the file's AES-GCM", mtu)
	}

	ec := &v1alpha1.EncryptionConfig{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.EncryptionConfigName},
		Spec: v1alpha1.EncryptionConfigSpec{Mode: "ipsec", ReplayWindow: 2048,
			ProposalsSpec: v1alpha1.ProposalsSpec{ESPProposals: []string{"aes256gcm16-x25519-esn", "aes128-sha256-x25519-esn"}},
			TimersSpec:    v1alpha1.TimersSpec{ChildRekeyTime: "20m"}}}
	ec.SetGroupVersionKind(v1alpha1.SchemeGroupVersion.WithKind("EncryptionConfig"))
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ec)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(encryptionConfigs).Create(ctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err = ResolveEncryption(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.Encryption, "EncryptionConfig default") || got.ReplayWindow != 2048 || got.ChildRekeyTime != 20*time.Minute ||
		len(got.ESPProposals) != 2 || got.Key == nil || len(got.Certs) != 1 {
		t.Errorf("with the EncryptionConfig: %q, window %d, child rekey %v, %d ESP proposals", got.Encryption, got.ReplayWindow, got.ChildRekeyTime, len(got.ESPProposals))
	}
	// AES-CBC is now allowed: room for its 57 octets.
	if mtu, _ := PodMTU(got); mtu != 1415 {
		t.Errorf("pod MTU %d with AES-CBC allowed, want 1415", mtu)
	}
	if n, _ := ike.MaxESPOverhead(got.ESPProposals); n != 57 {
		t.Errorf("overhead %d", n)
	}

	// One that the node cannot use (a proposal that does not parse, which
	// the CRD's schema does not know) is an error, not a silent fallback.
	u, err := dyn.Resource(encryptionConfigs).Get(ctx, v1alpha1.EncryptionConfigName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unstructured.SetNestedStringSlice(u.Object, []string{"nonsense-proposal"}, "spec", "espProposals")
	if _, err := dyn.Resource(encryptionConfigs).Update(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ResolveEncryption(ctx, cfg); err == nil || !strings.Contains(err.Error(), "spec.encryption.espProposals") {
		t.Errorf("an unusable EncryptionConfig: %v", err)
	}
}
