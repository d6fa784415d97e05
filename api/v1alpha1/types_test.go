package v1alpha1_test

import (
	"path/filepath"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/rampartnet/rampart/api/v1alpha1"
)

// TestExamplesDecodeStrictly decodes every object of examples/crds into
// its Go type, refusing unknown fields: a misspelt field in an example
// fails here without an API server (TestKubeCRDValidation then holds the
// examples to the CRDs' validation).
func TestExamplesDecodeStrictly(t *testing.T) {
	root := repoRoot(t)
	for _, f := range []string{"encryptionconfig.yaml", "ipsecpeer.yaml"} {
		path := filepath.Join(root, "examples", "crds", f)
		objs := readObjects(t, path)
		if len(objs) == 0 {
			t.Errorf("%s: no object", path)
		}
		for _, u := range objs {
			var into any
			switch u.GetKind() {
			case "EncryptionConfig":
				into = &v1alpha1.EncryptionConfig{}
			case "IPsecPeer":
				into = &v1alpha1.IPsecPeer{}
			default:
				t.Errorf("%s: kind %q is not a Rampart custom resource", path, u.GetKind())
				continue
			}
			b, err := u.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.UnmarshalStrict(b, into); err != nil {
				t.Errorf("%s: %s %s: %v", path, u.GetKind(), u.GetName(), err)
			}
			if u.GetAPIVersion() != v1alpha1.APIVersion {
				t.Errorf("%s: %s %s: apiVersion %q, want %q", path, u.GetKind(), u.GetName(), u.GetAPIVersion(), v1alpha1.APIVersion)
			}
		}
	}
}

// TestSharedStructsInline checks that factoring the peer's parts into
// embedded structs left the config files' shape as it was: the keys that
// ike-site-a.yaml writes flat under a peer land in the embedded structs.
func TestSharedStructsInline(t *testing.T) {
	const peer = `{"name": "site-b", "endpoint": "198.18.0.2", "mode": "tunnel",
		"localSubnets": ["198.19.1.0/24"], "remoteSubnets": ["198.19.2.0/24"],
		"ike": {"localID": "a.example", "remoteID": "b.example", "pskFile": "keys/psk", "initiate": true,
			"proposals": ["aes256gcm16-prfsha256-x25519"], "espProposals": ["aes256gcm16"],
			"rekeyTime": "4h", "childRekeyTime": "1h", "dpdInterval": "30s"}}`
	var got v1alpha1.PeerSpec
	if err := yaml.UnmarshalStrict([]byte(peer), &got); err != nil {
		t.Fatalf("a Tunnel peer written before the shared structs no longer decodes: %v", err)
	}
	want := v1alpha1.PeerSpec{
		Name: "site-b", Endpoint: "198.18.0.2",
		TrafficSpec: v1alpha1.TrafficSpec{Mode: "tunnel", LocalSubnets: []string{"198.19.1.0/24"}, RemoteSubnets: []string{"198.19.2.0/24"}},
		IKE: &v1alpha1.IKESpec{
			IdentitiesSpec: v1alpha1.IdentitiesSpec{LocalID: "a.example", RemoteID: "b.example"},
			PSKFile:        "keys/psk", Initiate: true,
			ProposalsSpec: v1alpha1.ProposalsSpec{Proposals: []string{"aes256gcm16-prfsha256-x25519"}, ESPProposals: []string{"aes256gcm16"}},
			TimersSpec:    v1alpha1.TimersSpec{RekeyTime: "4h", ChildRekeyTime: "1h", DPDInterval: "30s"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
	// And back: no key nests under the embedded structs' names.
	b, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := yaml.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"mode", "localSubnets", "remoteSubnets"} {
		if _, ok := back[k]; !ok {
			t.Errorf("encoded peer has no top-level %q:\n%s", k, b)
		}
	}
	ike, _ := back["ike"].(map[string]any)
	for _, k := range []string{"localID", "remoteID", "proposals", "espProposals", "rekeyTime", "childRekeyTime", "dpdInterval"} {
		if _, ok := ike[k]; !ok {
			t.Errorf("encoded peer.ike has no %q:\n%s", k, b)
		}
	}
}

// TestScheme checks that AddToScheme registers the custom resources under
// rampart.dev/v1alpha1, and only them: the config-file kinds (Tunnel,
// Agent) are not API objects.
func TestScheme(t *testing.T) {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if got := v1alpha1.SchemeGroupVersion.String(); got != v1alpha1.APIVersion {
		t.Errorf("SchemeGroupVersion %q, APIVersion %q", got, v1alpha1.APIVersion)
	}
	kinds := s.KnownTypes(v1alpha1.SchemeGroupVersion)
	for _, k := range []string{"EncryptionConfig", "EncryptionConfigList", "IPsecPeer", "IPsecPeerList"} {
		if _, ok := kinds[k]; !ok {
			t.Errorf("kind %s not registered", k)
		}
	}
	for _, k := range []string{"Tunnel", "Agent"} {
		if _, ok := kinds[k]; ok {
			t.Errorf("config-file kind %s registered as an API object", k)
		}
	}
	// The generated deep copy is deep.
	p := &v1alpha1.IPsecPeer{Spec: v1alpha1.IPsecPeerSpec{TrafficSpec: v1alpha1.TrafficSpec{LocalSubnets: []string{"198.19.0.0/16"}},
		Auth: v1alpha1.PeerAuth{PSK: &v1alpha1.SecretKeyReference{Key: "psk"}}}}
	c := p.DeepCopyObject().(*v1alpha1.IPsecPeer)
	c.Spec.LocalSubnets[0], c.Spec.Auth.PSK.Key = "changed", "changed"
	if p.Spec.LocalSubnets[0] != "198.19.0.0/16" || p.Spec.Auth.PSK.Key != "psk" {
		t.Errorf("DeepCopyObject shares memory with the original: %+v", p.Spec)
	}
}
