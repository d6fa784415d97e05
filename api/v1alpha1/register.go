// Package-level markers for controller-gen (`make generate`): deep-copy
// methods for every type of the package, the config-file types included
// (they share structs with the custom resources, and a deep copy is as
// useful to a Tunnel as to an IPsecPeer), and rampart.dev as the API group
// of the CRDs. Only the types marked +kubebuilder:object:root=true
// (EncryptionConfig, IPsecPeer and their lists) become CRDs and
// runtime.Objects; Tunnel and Agent stay plain config-file types.
//
// +kubebuilder:object:generate=true
// +groupName=rampart.dev

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of Rampart's custom resources.
const GroupName = "rampart.dev"

// SchemeGroupVersion is the group and version of this package's custom
// resources (APIVersion, as a schema.GroupVersion).
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

var (
	// SchemeBuilder registers the custom resources' Go types.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds EncryptionConfig, IPsecPeer and their lists to a
	// scheme, so that typed clients and codecs can (de)serialize them.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Resource returns the group-qualified resource for a plural name, such
// as "ipsecpeers", for API errors.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion,
		&EncryptionConfig{}, &EncryptionConfigList{},
		&IPsecPeer{}, &IPsecPeerList{},
	)
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}
