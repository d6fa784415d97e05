package v1alpha1_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/rampartnet/rampart/api/v1alpha1"
	"github.com/rampartnet/rampart/internal/kubetest"
)

var (
	crdGVR  = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	ecGVR   = v1alpha1.SchemeGroupVersion.WithResource("encryptionconfigs")
	peerGVR = v1alpha1.SchemeGroupVersion.WithResource("ipsecpeers")
)

// TestKubeCRDValidation installs deploy/crds in a real kube-apiserver and
// holds the CRDs to what docs/configuration.md promises: the examples and
// well-formed objects are accepted and defaulted, each malformed one is
// refused with one error naming the field and saying what is wrong, and
// status goes only through the status subresource.
//
// Objects go through the dynamic client as unstructured maps converted
// from the Go types, so the test also checks that the types and the
// generated schemas agree (a field the schema lacks would be refused by
// strict field validation).
func TestKubeCRDValidation(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	installCRDs(ctx, t, dyn, c.Client.Discovery())
	t.Logf("CRDs established and served in %v", time.Since(start).Round(time.Millisecond))

	t.Run("examples", func(t *testing.T) {
		for _, f := range []string{"encryptionconfig.yaml", "ipsecpeer.yaml"} {
			for _, u := range readObjects(t, filepath.Join(repoRoot(t), "examples", "crds", f)) {
				gvr := gvrOf(t, u)
				if _, err := dyn.Resource(gvr).Create(ctx, u, strictCreate); err != nil {
					t.Errorf("examples/crds/%s: %s %s refused: %v", f, u.GetKind(), u.GetName(), err)
					continue
				}
				if err := dyn.Resource(gvr).Delete(ctx, u.GetName(), metav1.DeleteOptions{}); err != nil {
					t.Errorf("delete %s %s: %v", u.GetKind(), u.GetName(), err)
				}
			}
		}
	})

	t.Run("EncryptionConfig defaults", func(t *testing.T) {
		// spec: {} is the documented way to say "the defaults".
		ec := &v1alpha1.EncryptionConfig{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.EncryptionConfigName}}
		var got v1alpha1.EncryptionConfig
		create(ctx, t, dyn, ecGVR, ec, &got)
		if got.Spec.Mode != "ipsec" || got.Spec.Enforce == nil || !*got.Spec.Enforce || got.Spec.HostTraffic {
			t.Errorf("defaults: mode %q, enforce %v, hostTraffic %v; want ipsec, true, false", got.Spec.Mode, fmtPtr(got.Spec.Enforce), got.Spec.HostTraffic)
		}
		if err := dyn.Resource(ecGVR).Delete(ctx, got.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("IPsecPeer defaults and status", func(t *testing.T) {
		p := validPeer()
		p.Spec.Auth.PSK.Namespace = ""
		var got v1alpha1.IPsecPeer
		create(ctx, t, dyn, peerGVR, p, &got)
		if got.Spec.Port != 4500 || got.Spec.Mode != "tunnel" || got.Spec.Auth.PSK.Namespace != v1alpha1.DefaultSecretNamespace {
			t.Errorf("defaults: port %d, mode %q, psk namespace %q; want 4500, tunnel, %s", got.Spec.Port, got.Spec.Mode, got.Spec.Auth.PSK.Namespace, v1alpha1.DefaultSecretNamespace)
		}
		testStatus(ctx, t, dyn, &got)
	})

	t.Run("invalid EncryptionConfig", func(t *testing.T) {
		for _, tc := range invalidEncryptionConfigs {
			t.Run(tc.name, func(t *testing.T) {
				ec := validEncryptionConfig()
				tc.edit(ec)
				expectInvalid(ctx, t, dyn, ecGVR, toUnstructured(t, ec), tc.raw, tc.want)
			})
		}
	})

	t.Run("invalid IPsecPeer", func(t *testing.T) {
		for _, tc := range invalidPeers {
			t.Run(tc.name, func(t *testing.T) {
				p := validPeer()
				tc.edit(p)
				expectInvalid(ctx, t, dyn, peerGVR, toUnstructured(t, p), tc.raw, tc.want)
			})
		}
	})
}

// problem is one error the API server must report: the field path and a
// piece of the message.
type problem struct{ field, msg string }

type invalidCase[T any] struct {
	name string
	edit func(*T)
	// raw edits the unstructured object after conversion, for what the Go
	// types cannot express (unknown fields).
	raw  func(map[string]any)
	want []problem
}

func validEncryptionConfig() *v1alpha1.EncryptionConfig {
	return &v1alpha1.EncryptionConfig{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.EncryptionConfigName},
		Spec: v1alpha1.EncryptionConfigSpec{
			Mode:          "ipsec",
			Enforce:       new(true),
			HostTraffic:   true,
			ProposalsSpec: v1alpha1.ProposalsSpec{Proposals: []string{"aes256gcm16-prfsha256-x25519"}, ESPProposals: []string{"aes256gcm16"}},
			TimersSpec:    v1alpha1.TimersSpec{RekeyTime: "4h", ChildRekeyTime: "1h30m", DPDInterval: "30s"},
			ReplayWindow:  2048,
		},
	}
}

func validPeer() *v1alpha1.IPsecPeer {
	return &v1alpha1.IPsecPeer{
		ObjectMeta: metav1.ObjectMeta{Name: "branch-office"},
		Spec: v1alpha1.IPsecPeerSpec{
			NodeName: "node-1",
			Address:  "203.0.113.10",
			TrafficSpec: v1alpha1.TrafficSpec{
				Mode:          "tunnel",
				LocalSubnets:  []string{"198.19.0.0/16"},
				RemoteSubnets: []string{"198.51.100.0/24", "2001:db8:100::/48"},
			},
			IdentitiesSpec: v1alpha1.IdentitiesSpec{LocalID: "cluster.example.net", RemoteID: "gw.branch.example.net"},
			Auth: v1alpha1.PeerAuth{PSK: &v1alpha1.SecretKeyReference{
				SecretReference: v1alpha1.SecretReference{Name: "branch-office-psk", Namespace: "rampart-secrets"},
				Key:             "psk",
			}},
			Initiate:      true,
			ProposalsSpec: v1alpha1.ProposalsSpec{Proposals: []string{"aes256gcm16-prfsha256-ecp256"}},
			TimersSpec:    v1alpha1.TimersSpec{DPDInterval: "0s"},
		},
	}
}

var invalidEncryptionConfigs = []invalidCase[v1alpha1.EncryptionConfig]{
	// A rule on the root is reported without a field path, as "<nil>"
	// (a CRD may not put rules inside metadata), so the message names the
	// field.
	{name: "not named default", edit: func(e *v1alpha1.EncryptionConfig) { e.Name = "cluster" },
		want: []problem{{"<nil>", "metadata.name must be default: a cluster has one EncryptionConfig"}}},
	{name: "unknown mode", edit: func(e *v1alpha1.EncryptionConfig) { e.Spec.Mode = "wireguard" },
		want: []problem{{"spec.mode", `Unsupported value: "wireguard": supported values: "ipsec", "off"`}}},
	{name: "hostTraffic with mode off", edit: func(e *v1alpha1.EncryptionConfig) { e.Spec.Mode = "off" },
		want: []problem{{"spec", "hostTraffic needs mode ipsec"}}},
	{name: "duration in words", edit: func(e *v1alpha1.EncryptionConfig) { e.Spec.RekeyTime = "1 hour" },
		want: []problem{{"spec.rekeyTime", "must be a duration of at least 1s, such as 4h or 1h30m"}}},
	{name: "duration below 1s", edit: func(e *v1alpha1.EncryptionConfig) { e.Spec.ChildRekeyTime = "500ms" },
		want: []problem{{"spec.childRekeyTime", "must be a duration of at least 1s"}}},
	{name: "negative duration", edit: func(e *v1alpha1.EncryptionConfig) { e.Spec.ChildRekeyTime = "-1h" },
		want: []problem{{"spec.childRekeyTime", "must be a duration of at least 1s"}}},
	{name: "duration without unit", edit: func(e *v1alpha1.EncryptionConfig) { e.Spec.DPDInterval = "30" },
		want: []problem{{"spec.dpdInterval", "must be a duration such as 30s"}}},
	{name: "replay window not a multiple of 64", edit: func(e *v1alpha1.EncryptionConfig) { e.Spec.ReplayWindow = 100 },
		want: []problem{{"spec.replayWindow", "must be 0 (the default, 1024 packets) or a multiple of 64 from 64 to 65536"}}},
	{name: "replay window too large", edit: func(e *v1alpha1.EncryptionConfig) { e.Spec.ReplayWindow = 65536 + 64 },
		want: []problem{{"spec.replayWindow", "a multiple of 64 from 64 to 65536"}}},
	{name: "replay window negative", edit: func(e *v1alpha1.EncryptionConfig) { e.Spec.ReplayWindow = -64 },
		want: []problem{{"spec.replayWindow", "a multiple of 64 from 64 to 65536"}}},
	{name: "proposals as one comma list", edit: func(e *v1alpha1.EncryptionConfig) {
		e.Spec.Proposals = []string{"aes256gcm16-prfsha256-x25519,aes128gcm16-prfsha256-ecp256"}
	}, want: []problem{{"spec.proposals[0]", "give each proposal as its own list item"}}},
	{name: "unknown field", edit: func(*v1alpha1.EncryptionConfig) {},
		raw:  func(o map[string]any) { o["spec"].(map[string]any)["enforced"] = true },
		want: []problem{{"", `unknown field "spec.enforced"`}}},
}

var invalidPeers = []invalidCase[v1alpha1.IPsecPeer]{
	{name: "no node", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.NodeName = "" },
		want: []problem{{"spec.nodeName", "must be a node name"}}},
	{name: "node name with capitals", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.NodeName = "Node_1" },
		want: []problem{{"spec.nodeName", "must be a node name"}}},
	{name: "psk and certificate", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.Auth.Certificate = validCertAuth() },
		want: []problem{{"spec.auth", "give one authentication method: psk and certificate are mutually exclusive"}}},
	{name: "no authentication", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.Auth.PSK = nil },
		want: []problem{{"spec.auth", "an authentication method is required: set psk (a pre-shared key) or certificate"}}},
	{name: "certificate without CA", edit: func(p *v1alpha1.IPsecPeer) {
		p.Spec.Auth = v1alpha1.PeerAuth{Certificate: validCertAuth()}
	}, raw: func(o map[string]any) { unstructured.RemoveNestedField(o, "spec", "auth", "certificate", "caRef") },
		want: []problem{{"spec.auth.certificate.caRef", "Required value"}}},
	{name: "certificate with an empty CA reference", edit: func(p *v1alpha1.IPsecPeer) {
		p.Spec.Auth = v1alpha1.PeerAuth{Certificate: &v1alpha1.CertificateAuth{SecretRef: v1alpha1.SecretReference{Name: "gw-tls"}}}
	}, want: []problem{{"spec.auth.certificate.caRef.name", "must be a Secret name"}, {"spec.auth.certificate.caRef.key", "must be a Secret data key"}}},
	{name: "psk without key", edit: func(p *v1alpha1.IPsecPeer) {}, raw: func(o map[string]any) { unstructured.RemoveNestedField(o, "spec", "auth", "psk", "key") },
		want: []problem{{"spec.auth.psk.key", "Required value"}}},
	{name: "psk with an empty key", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.Auth.PSK.Key = "" },
		want: []problem{{"spec.auth.psk.key", "must be a Secret data key"}}},
	{name: "secret namespace with a dot", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.Auth.PSK.Namespace = "rampart.system" },
		want: []problem{{"spec.auth.psk.namespace", "must be a namespace name"}}},
	{name: "secret name with capitals", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.Auth.PSK.Name = "Branch_PSK" },
		want: []problem{{"spec.auth.psk.name", "must be a Secret name"}}},
	{name: "secret key with a slash", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.Auth.PSK.Key = "keys/psk" },
		want: []problem{{"spec.auth.psk.key", "must be a Secret data key"}}},
	{name: "address is a host name", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.Address = "gw.branch.example.net" },
		want: []problem{{"spec.address", "must be an IP address such as 203.0.113.10"}}},
	{name: "address with a port", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.Address = "203.0.113.10:4500" },
		want: []problem{{"spec.address", "must be an IP address"}}},
	{name: "address missing", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.Address = "" },
		want: []problem{{"spec.address", "must be an IP address"}}},
	{name: "loopback address", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.Address = "127.0.0.1" },
		want: []problem{{"spec.address", "must be the gateway's unicast address"}}},
	{name: "unspecified address", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.Address = "::" },
		want: []problem{{"spec.address", "must be the gateway's unicast address"}}},
	{name: "port out of range", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.Port = 70000 },
		want: []problem{{"spec.port", "should be less than or equal to 65535"}}},
	{name: "unknown mode", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.Mode = "bridge" },
		want: []problem{{"spec.mode", `Unsupported value: "bridge": supported values: "tunnel", "transport"`}}},
	{name: "not a CIDR", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.RemoteSubnets = []string{"198.51.100.0/33"} },
		want: []problem{{"spec.remoteSubnets[0]", "must be a CIDR such as 198.51.100.0/24"}}},
	{name: "address where a CIDR goes", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.LocalSubnets = []string{"198.19.0.1"} },
		want: []problem{{"spec.localSubnets[0]", "must be a CIDR"}}},
	{name: "CIDR with host bits", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.RemoteSubnets = []string{"198.51.100.0/24", "198.51.101.7/24"} },
		want: []problem{{"spec.remoteSubnets[1]", "has host bits set: write the network address"}}},
	{name: "duplicate subnet", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.LocalSubnets = []string{"198.19.0.0/16", "198.19.0.0/16"} },
		want: []problem{{"spec.localSubnets[1]", "Duplicate value"}}},
	{name: "tunnel without remote subnets", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.RemoteSubnets = nil },
		want: []problem{{"spec", "tunnel mode needs remoteSubnets"}}},
	{name: "tunnel without local subnets", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.LocalSubnets = nil },
		want: []problem{{"spec", "tunnel mode needs localSubnets"}}},
	{name: "transport with subnets", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.Mode = "transport" },
		want: []problem{{"spec", "transport mode protects the traffic between the two hosts"}}},
	{name: "bad DPD interval", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.DPDInterval = "often" },
		want: []problem{{"spec.dpdInterval", "must be a duration such as 30s"}}},
	{name: "bad ESP proposal", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.ESPProposals = []string{"aes256gcm16 aes128gcm16"} },
		want: []problem{{"spec.espProposals[0]", "must be one proposal"}}},
	{name: "identity too long", edit: func(p *v1alpha1.IPsecPeer) { p.Spec.RemoteID = strings.Repeat("a", 256) },
		want: []problem{{"spec.remoteID", "Too long"}}},
	{name: "unknown field", edit: func(*v1alpha1.IPsecPeer) {},
		raw:  func(o map[string]any) { o["spec"].(map[string]any)["endpoint"] = "203.0.113.10:4500" },
		want: []problem{{"", `unknown field "spec.endpoint"`}}},
}

func validCertAuth() *v1alpha1.CertificateAuth {
	return &v1alpha1.CertificateAuth{
		SecretRef: v1alpha1.SecretReference{Name: "gw-tls"},
		CARef:     v1alpha1.SecretKeyReference{SecretReference: v1alpha1.SecretReference{Name: "gw-tls"}, Key: "ca.crt"},
	}
}

// strictCreate refuses unknown and duplicate fields instead of dropping
// them, as kubectl apply and create do by default.
var strictCreate = metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}

// expectInvalid creates obj (dry run: nothing is stored) and checks that
// the API server refuses it with exactly the problems in want: one error
// per mistake, each at its field, and no evaluation errors besides.
func expectInvalid(ctx context.Context, t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource, obj *unstructured.Unstructured, raw func(map[string]any), want []problem) {
	t.Helper()
	if raw != nil {
		raw(obj.Object)
	}
	opts := strictCreate
	opts.DryRun = []string{metav1.DryRunAll}
	_, err := dyn.Resource(gvr).Create(ctx, obj, opts)
	if err == nil {
		t.Fatalf("accepted; want refused with %v", want)
	}
	var se *apierrors.StatusError
	if !errors.As(err, &se) || (!apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err)) {
		t.Fatalf("want a validation error (422 or 400), got %T: %v", err, err)
	}
	t.Logf("refused: %v", err)
	var causes []metav1.StatusCause
	if d := se.ErrStatus.Details; d != nil {
		for _, c := range d.Causes {
			// After a type, enum or size error the API server skips the
			// CEL rules and says so in a cause of its own: not a second
			// mistake.
			if !strings.Contains(c.Message, "some validation rules were not checked") {
				causes = append(causes, c)
			}
		}
	}
	if apierrors.IsBadRequest(err) {
		// Strict field validation reports unknown fields in the message,
		// without causes.
		causes = []metav1.StatusCause{{Message: se.ErrStatus.Message}}
	}
	for _, w := range want {
		if !slices.ContainsFunc(causes, func(c metav1.StatusCause) bool {
			return c.Field == w.field && strings.Contains(c.Message, w.msg)
		}) {
			t.Errorf("no error at %q containing %q; got %s", w.field, w.msg, fmtCauses(causes))
		}
	}
	if len(causes) != len(want) {
		t.Errorf("%d errors, want %d (one per mistake): %s", len(causes), len(want), fmtCauses(causes))
	}
}

func fmtCauses(cs []metav1.StatusCause) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "\n\t%s: %s", c.Field, c.Message)
	}
	return b.String()
}

// testStatus writes the peer's status as an agent would, and checks that
// the status subresource is the only way to it: the main resource ignores
// status, /status ignores spec, and the status is validated too.
func testStatus(ctx context.Context, t *testing.T, dyn dynamic.Interface, p *v1alpha1.IPsecPeer) {
	t.Helper()
	res := dyn.Resource(peerGVR)
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	status := v1alpha1.IPsecPeerStatus{
		ObservedGeneration: p.Generation,
		Node:               "node-1",
		IKEState:           "established",
		ChildSAState:       "installed",
		ChildSAs:           1,
		Suite:              "aes256gcm16-prfsha256-ecp256",
		EstablishedTime:    &now,
		LastError:          "IKE_AUTH: AUTHENTICATION_FAILED from 203.0.113.10:4500",
		LastErrorTime:      &now,
		Counters:           v1alpha1.PeerCounters{TxPackets: 10, TxBytes: 1200, RxPackets: 9, RxBytes: 1100, Drops: 1, Replays: 1},
		Conditions: []metav1.Condition{{Type: "Established", Status: metav1.ConditionTrue, Reason: "ChildSAInstalled",
			Message: "IKE SA and CHILD_SA up", LastTransitionTime: now, ObservedGeneration: p.Generation}},
	}

	// Through the main resource, status is dropped.
	withStatus := p.DeepCopy()
	withStatus.Status = status
	var got v1alpha1.IPsecPeer
	u, err := res.Update(ctx, toUnstructured(t, withStatus), metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	fromUnstructured(t, u, &got)
	if got.Status.IKEState != "" {
		t.Errorf("update of the main resource set status.ikeState to %q; status must only change through /status", got.Status.IKEState)
	}

	// Through /status, status is written and spec is dropped.
	withStatus = got.DeepCopy()
	withStatus.Status = status
	withStatus.Spec.Address = "203.0.113.99"
	if u, err = res.UpdateStatus(ctx, toUnstructured(t, withStatus), metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update status: %v", err)
	}
	got = v1alpha1.IPsecPeer{}
	fromUnstructured(t, u, &got)
	if got.Spec.Address != p.Spec.Address {
		t.Errorf("update of /status changed spec.address to %q", got.Spec.Address)
	}
	if got.Generation != p.Generation {
		t.Errorf("update of /status moved metadata.generation from %d to %d", p.Generation, got.Generation)
	}
	if got.Status.IKEState != "established" || got.Status.Counters != status.Counters || got.Status.Node != "node-1" ||
		len(got.Status.Conditions) != 1 || got.Status.EstablishedTime == nil || !got.Status.EstablishedTime.Equal(&now) {
		t.Errorf("status after update: %+v; want %+v", got.Status, status)
	}

	// Status is validated like spec.
	bad := got.DeepCopy()
	bad.Status.IKEState = "up"
	bad.Status.Counters.RxBytes = -1
	_, err = res.UpdateStatus(ctx, toUnstructured(t, bad), metav1.UpdateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `status.ikeState: Unsupported value: "up"`) ||
		!strings.Contains(err.Error(), "status.counters.rxBytes: Invalid value: -1") {
		t.Errorf("bad status: got %v; want ikeState and counters.rxBytes refused", err)
	}
}

// installCRDs creates every CRD in deploy/crds and waits until each is
// established and its resources are served.
func installCRDs(ctx context.Context, t *testing.T, dyn dynamic.Interface, disc discovery.DiscoveryInterface) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in deploy/crds (%v): run `make generate`", err)
	}
	var names, plurals []string
	for _, f := range files {
		for _, u := range readObjects(t, f) {
			if _, err := dyn.Resource(crdGVR).Create(ctx, u, strictCreate); err != nil {
				t.Fatalf("%s: the API server refused the CRD: %v", f, err)
			}
			names = append(names, u.GetName())
			plural, _, _ := unstructured.NestedString(u.Object, "spec", "names", "plural")
			plurals = append(plurals, plural)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, name := range names {
		for {
			u, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("get CRD %s: %v", name, err)
			}
			if cond(u, "Established") == "True" && cond(u, "NamesAccepted") == "True" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("CRD %s not established after 30s: conditions %v", name, u.Object["status"])
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Established means the API server will serve the resources; discovery
	// says when it does.
	for {
		list, err := disc.ServerResourcesForGroupVersion(v1alpha1.APIVersion)
		if err == nil && !slices.ContainsFunc(plurals, func(p string) bool {
			return !slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == p })
		}) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %v not in discovery after 30s: %v", v1alpha1.APIVersion, plurals, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cond returns the status of a CRD's condition, "" when it has none.
func cond(u *unstructured.Unstructured, typ string) string {
	cs, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range cs {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			s, _ := m["status"].(string)
			return s
		}
	}
	return ""
}

// create stores obj (strictly: the schema must know every field the Go
// type writes) and decodes what the API server returns into out.
func create(ctx context.Context, t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource, obj runtime.Object, out any) {
	t.Helper()
	u, err := dyn.Resource(gvr).Create(ctx, toUnstructured(t, obj), strictCreate)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	fromUnstructured(t, u, out)
}

// toUnstructured converts a typed object, setting its apiVersion and kind
// (the dynamic client sends what it is given).
func toUnstructured(t *testing.T, obj runtime.Object) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	kind := strings.TrimPrefix(fmt.Sprintf("%T", obj), "*v1alpha1.")
	u.SetAPIVersion(v1alpha1.APIVersion)
	u.SetKind(kind)
	// The converter writes metadata.creationTimestamp: null for a new
	// object, which strict validation accepts; drop it anyway for clarity.
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u
}

func fromUnstructured(t *testing.T, u *unstructured.Unstructured, out any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("the API server returned what the Go type cannot hold: %v", err)
	}
}

// readObjects reads the YAML documents of a file.
func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	for i, doc := range splitYAML(string(b)) {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("%s: document %d: %v", path, i+1, err)
		}
		if m != nil {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
	return out
}

// splitYAML splits a multi-document YAML text at its "---" lines.
func splitYAML(s string) []string {
	var docs []string
	var cur strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if strings.TrimRight(line, " \t\r") == "---" {
			docs = append(docs, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	return append(docs, cur.String())
}

func gvrOf(t *testing.T, u *unstructured.Unstructured) schema.GroupVersionResource {
	t.Helper()
	switch u.GetKind() {
	case "EncryptionConfig":
		return ecGVR
	case "IPsecPeer":
		return peerGVR
	}
	t.Fatalf("unexpected kind %q", u.GetKind())
	return schema.GroupVersionResource{}
}

func fmtPtr(b *bool) string {
	if b == nil {
		return "unset"
	}
	return fmt.Sprint(*b)
}
