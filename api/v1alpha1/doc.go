// Package v1alpha1 holds Rampart's own configuration objects
// (apiVersion rampart.dev/v1alpha1), plain types with JSON tags and no
// behaviour, of two kinds:
//
//   - config files that the CLI reads (Tunnel, Agent): validation lives
//     with the code that turns them into a running configuration
//     (internal/datapath for a Tunnel, internal/agent for an Agent),
//     because that is where "valid" is decided;
//   - custom resources (EncryptionConfig, IPsecPeer; register.go): their
//     kubebuilder markers become the CRDs in deploy/crds (`make generate`),
//     which the API server validates, and what a schema cannot check is
//     left to the agent that applies them.
//
// The two kinds share their IPsec parts (ipsec.go) as embedded structs, so
// a field means the same in a config file and in a resource.
package v1alpha1

// APIVersion is the apiVersion of every object in this package.
const APIVersion = "rampart.dev/v1alpha1"
