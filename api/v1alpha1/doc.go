// Package v1alpha1 holds Rampart's own configuration objects
// (apiVersion rampart.dev/v1alpha1): plain types with JSON tags and no
// behaviour, shared by the config files that the CLI reads and, later, by
// the custom resources that the agent watches. Validation lives with the
// code that turns them into a running configuration (internal/datapath for
// a Tunnel), because that is where "valid" is decided.
package v1alpha1

// APIVersion is the apiVersion of every object in this package.
const APIVersion = "rampart.dev/v1alpha1"
