package cluster

import "github.com/rampartnet/rampart/internal/istio"

// AuthorizationPolicy is an Istio AuthorizationPolicy (security.istio.io
// v1 or v1beta1), which internal/authz enforces at the node's L7 proxy.
type AuthorizationPolicy struct {
	istio.AuthorizationPolicy
	Origin *Origin
}
