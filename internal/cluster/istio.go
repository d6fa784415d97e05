package cluster

import (
	"github.com/rampartnet/rampart/api/v1alpha1"
	"github.com/rampartnet/rampart/internal/istio"
)

// AuthorizationPolicy is an Istio AuthorizationPolicy (security.istio.io
// v1 or v1beta1), which internal/authz enforces at the node's L7 proxy.
type AuthorizationPolicy struct {
	istio.AuthorizationPolicy
	Origin *Origin
}

// EncryptionConfig is Rampart's rampart.dev/v1alpha1 EncryptionConfig.
type EncryptionConfig struct {
	v1alpha1.EncryptionConfig
	Origin *Origin
}

// IPsecPeer is Rampart's rampart.dev/v1alpha1 IPsecPeer.
type IPsecPeer struct {
	v1alpha1.IPsecPeer
	Origin *Origin
}
