package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// SignerName is spec.signerName of every CSR for a node's IKE certificate.
// The controller approves and signs only these; RBAC names it as the
// resourceName of the "signers" resource (verbs approve, sign, attest).
const SignerName = "rampart.dev/ipsec"

// The keys the service-account authenticator puts in a user's extra
// information for a token bound to a pod (k8s.io/apiserver
// pkg/authentication/serviceaccount: PodNameKey, PodUIDKey, NodeNameKey,
// NodeUIDKey; repeated here so the module need not require
// k8s.io/apiserver). The node keys come from the token's
// kubernetes.io.node claim, which kube-apiserver writes for a token
// requested for a pod with spec.nodeName set (feature
// ServiceAccountTokenPodNodeInfo: beta and on by default since 1.30, GA
// and locked on since 1.32). The CSR registry copies the requester's extra
// into spec.extra at creation, where no client can forge it.
const (
	ExtraPodName  = "authentication.kubernetes.io/pod-name"
	ExtraPodUID   = "authentication.kubernetes.io/pod-uid"
	ExtraNodeName = "authentication.kubernetes.io/node-name"
	ExtraNodeUID  = "authentication.kubernetes.io/node-uid"
)

// Reasons of the conditions the signer writes (CamelCase, as the API's
// condition reasons are).
const (
	ReasonApproved = "RampartNodeVerified"
	// Denied: spec.username is not the agents' ServiceAccount.
	ReasonNotAgent = "NotAgentServiceAccount"
	// Denied: the token was not bound to a pod on a node.
	ReasonNotBound = "NotBoundToNode"
	// Denied: the request names a node other than the requester's.
	ReasonNodeMismatch = "NodeMismatch"
	// Denied: the requester's pod is gone, replaced, elsewhere, or not an
	// agent pod.
	ReasonAgentPod = "AgentPodInvalid"
	// Denied: no such Node, or not the Node the token was issued on.
	ReasonNodeUnknown = "NodeUnknown"
	// Denied (or Failed, when someone else approved it): the x509 request
	// or the usages ask for more than a node certificate.
	ReasonInvalidRequest = "InvalidRequest"
	// Failed: signing itself went wrong.
	ReasonSignFailed = "SigningFailed"
)

// Policy is what the approval checks compare a request with.
type Policy struct {
	// AgentNamespace and AgentServiceAccount: the ServiceAccount every
	// agent runs as. Only it may ask for a node certificate.
	AgentNamespace, AgentServiceAccount string
	// AgentPods selects the agents' pods (in AgentNamespace): the pod
	// the requester's token is bound to must match. nil: every pod of
	// the ServiceAccount (the ServiceAccount check still applies).
	AgentPods labels.Selector
	// MaxLifetime caps spec.expirationSeconds, and is the lifetime of a
	// certificate whose request gives none.
	MaxLifetime time.Duration
}

// DefaultMaxLifetime: a day. There is no revocation, so the certificate of
// a node that was removed stays good until it expires; agents renew at
// about 2/3 of it (RenewAt).
const DefaultMaxLifetime = 24 * time.Hour

// Username is the agents' user name, as the API server writes it into
// spec.username ("system:serviceaccount:<namespace>:<name>").
func (p *Policy) Username() string {
	return "system:serviceaccount:" + p.AgentNamespace + ":" + p.AgentServiceAccount
}

// Validate reports what is missing or wrong in p.
func (p *Policy) Validate() error {
	var errs []error
	if msgs := validation.IsDNS1123Label(p.AgentNamespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("agent namespace %q: %s", p.AgentNamespace, strings.Join(msgs, "; ")))
	}
	if msgs := validation.IsDNS1123Subdomain(p.AgentServiceAccount); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("agent service account %q: %s", p.AgentServiceAccount, strings.Join(msgs, "; ")))
	}
	if p.MaxLifetime < 10*time.Minute {
		// The API refuses expirationSeconds below 600: a shorter cap
		// would shorten every request below what it may ask for.
		errs = append(errs, fmt.Errorf("max lifetime %v: must be at least 10m", p.MaxLifetime))
	}
	return errors.Join(errs...)
}

// Denial is a request the signer refuses: Reason and Message go into the
// Denied (or Failed) condition, where the requester reads them.
type Denial struct {
	Reason, Message string
}

func (d *Denial) Error() string { return d.Reason + ": " + d.Message }

func deny(reason, format string, args ...any) *Denial {
	return &Denial{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Lookup reads the objects a request refers to. A NotFound error (as
// apierrors.IsNotFound tells) means the object does not exist; any other
// error is transient and the request is reviewed again later.
type Lookup interface {
	Pod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
	Node(ctx context.Context, name string) (*corev1.Node, error)
}

// Approval is a request that passed every check.
type Approval struct {
	Node    string
	Request *x509.CertificateRequest
	// Message for the Approved condition: who asked, from where.
	Message string
}

// Review decides a pending CSR of our signer. It returns the approval, a
// *Denial, or another error when an object could not be read (retry). The
// checks, cheapest first:
//
//  1. spec.username is the agents' ServiceAccount (one for all agents, so
//     it says nothing about which node asks);
//  2. spec.extra binds the token to one pod on one node: exactly one
//     pod-name, pod-uid and node-name (what a pod's projected token
//     carries; a token from a Secret or a TokenRequest without a pod has
//     none of them);
//  3. the x509 request names exactly one node (CheckRequest), and that is
//     the requester's node;
//  4. the pod still exists with that UID, is not terminating, runs as the
//     agents' ServiceAccount on that node, and is an agent pod (labels):
//     a pod that was deleted, or a token of another workload of the same
//     ServiceAccount, gets nothing;
//  5. the Node exists and, when the token recorded its UID, is the same
//     Node object (not one deleted and made again under the name).
//
// This is Antrea's check for its IPsec CSRs (pod name and UID in
// spec.extra, the pod on the named node) with the node taken from the
// token itself rather than only from the pod, and failing closed when the
// token carries no pod.
func (p *Policy) Review(ctx context.Context, csr *certv1.CertificateSigningRequest, lookup Lookup) (*Approval, error) {
	spec := &csr.Spec
	if spec.SignerName != SignerName {
		return nil, deny(ReasonInvalidRequest, "spec.signerName is %q, not %q", spec.SignerName, SignerName)
	}
	if spec.Username != p.Username() {
		return nil, deny(ReasonNotAgent, "requested by %q; only the agents' service account %s/%s may request node certificates",
			spec.Username, p.AgentNamespace, p.AgentServiceAccount)
	}
	podName, err1 := extraOne(spec.Extra, ExtraPodName)
	podUID, err2 := extraOne(spec.Extra, ExtraPodUID)
	nodeName, err3 := extraOne(spec.Extra, ExtraNodeName)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, deny(ReasonNotBound, "the requester's token is not bound to a pod on a node (%v): request with the agent pod's projected service-account token", err)
	}
	nodeUID, _ := extraOne(spec.Extra, ExtraNodeUID) // absent when the Node did not exist at issue

	req, node, d := CheckRequest(spec)
	if d != nil {
		return nil, d
	}
	if node != nodeName {
		return nil, deny(ReasonNodeMismatch, "the request names node %q but the requester's pod %s/%s runs on node %q", node, p.AgentNamespace, podName, nodeName)
	}

	pod, err := lookup.Pod(ctx, p.AgentNamespace, podName)
	switch {
	case apierrors.IsNotFound(err):
		return nil, deny(ReasonAgentPod, "the requester's pod %s/%s does not exist (any more)", p.AgentNamespace, podName)
	case err != nil:
		return nil, fmt.Errorf("pod %s/%s: %w", p.AgentNamespace, podName, err)
	}
	where := fmt.Sprintf("pod %s/%s", p.AgentNamespace, podName)
	switch {
	case string(pod.UID) != podUID:
		return nil, deny(ReasonAgentPod, "%s is now uid %s, not the requester's %s (the pod was replaced)", where, pod.UID, podUID)
	case pod.DeletionTimestamp != nil:
		return nil, deny(ReasonAgentPod, "%s is terminating", where)
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return nil, deny(ReasonAgentPod, "%s has ended (%s)", where, pod.Status.Phase)
	case pod.Spec.NodeName != nodeName:
		return nil, deny(ReasonAgentPod, "%s runs on node %q, not %q", where, pod.Spec.NodeName, nodeName)
	case pod.Spec.ServiceAccountName != p.AgentServiceAccount:
		return nil, deny(ReasonAgentPod, "%s runs as service account %q, not %q", where, pod.Spec.ServiceAccountName, p.AgentServiceAccount)
	case p.AgentPods != nil && !p.AgentPods.Matches(labels.Set(pod.Labels)):
		return nil, deny(ReasonAgentPod, "%s is not an agent pod: its labels %v do not match %q", where, labels.Set(pod.Labels), p.AgentPods.String())
	}

	n, err := lookup.Node(ctx, nodeName)
	switch {
	case apierrors.IsNotFound(err):
		return nil, deny(ReasonNodeUnknown, "node %q does not exist", nodeName)
	case err != nil:
		return nil, fmt.Errorf("node %s: %w", nodeName, err)
	case nodeUID != "" && string(n.UID) != nodeUID:
		return nil, deny(ReasonNodeUnknown, "node %q is now uid %s, not the %s the requester's token was issued on", nodeName, n.UID, nodeUID)
	}
	return &Approval{Node: node, Request: req,
		Message: fmt.Sprintf("agent %s (uid %s) of service account %s/%s runs on node %s, which the request names",
			where, podUID, p.AgentNamespace, p.AgentServiceAccount, nodeName)}, nil
}

// extraOne returns the single value of spec.extra[key].
func extraOne(extra map[string]certv1.ExtraValue, key string) (string, error) {
	v := extra[key]
	if len(v) != 1 || v[0] == "" {
		return "", fmt.Errorf("spec.extra[%q] has %d values, want 1", key, len(v))
	}
	return v[0], nil
}

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// CheckRequest checks what a CSR asks to be certified, whoever approved
// it: spec.request is one PEM "CERTIFICATE REQUEST" whose signature
// verifies, naming exactly one node (subject CN and the one DNS SAN, both
// the node name; no other subject attribute, IP, e-mail or URI SAN), with
// an ECDSA P-256 or P-384, Ed25519 or RSA (2048 to 8192 bits) key; and
// spec.usages has "digital signature" (IKEv2 AUTH, RFC 7427) and at most
// "key encipherment" besides. Extensions in the request other than the
// SAN are ignored: the signer writes its own.
func CheckRequest(spec *certv1.CertificateSigningRequestSpec) (*x509.CertificateRequest, string, *Denial) {
	block, rest := pem.Decode(spec.Request)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, "", deny(ReasonInvalidRequest, "spec.request is not a PEM CERTIFICATE REQUEST")
	}
	if b, _ := pem.Decode(rest); b != nil {
		return nil, "", deny(ReasonInvalidRequest, "spec.request holds more than one PEM block")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, "", deny(ReasonInvalidRequest, "spec.request: %v", err)
	}
	if err := req.CheckSignature(); err != nil {
		return nil, "", deny(ReasonInvalidRequest, "spec.request: signature: %v", err)
	}
	node := req.Subject.CommonName
	if msgs := validation.IsDNS1123Subdomain(node); len(msgs) > 0 {
		return nil, "", deny(ReasonInvalidRequest, "subject CN %q is not a node name: %s", node, strings.Join(msgs, "; "))
	}
	for _, a := range req.Subject.Names {
		if !a.Type.Equal(oidCommonName) {
			return nil, "", deny(ReasonInvalidRequest, "subject %q has attributes besides CN (%v): a node certificate names only the node", req.Subject, a.Type)
		}
	}
	if len(req.Subject.Names) != 1 {
		return nil, "", deny(ReasonInvalidRequest, "subject %q: want exactly one CN", req.Subject)
	}
	switch {
	case len(req.DNSNames) != 1 || req.DNSNames[0] != node:
		return nil, "", deny(ReasonInvalidRequest, "DNS SANs %q: want exactly [%q], the node the CN names", req.DNSNames, node)
	case len(req.IPAddresses) > 0:
		return nil, "", deny(ReasonInvalidRequest, "IP address SANs %v: a node certificate names only the node", req.IPAddresses)
	case len(req.EmailAddresses) > 0:
		return nil, "", deny(ReasonInvalidRequest, "e-mail SANs %q: a node certificate names only the node", req.EmailAddresses)
	case len(req.URIs) > 0:
		return nil, "", deny(ReasonInvalidRequest, "URI SANs %v: a node certificate names only the node", req.URIs)
	}
	if err := checkKey(req.PublicKey); err != nil {
		return nil, "", deny(ReasonInvalidRequest, "public key: %v", err)
	}
	if !slices.Contains(spec.Usages, certv1.UsageDigitalSignature) {
		return nil, "", deny(ReasonInvalidRequest, "spec.usages %q lacks %q, which IKE authentication needs", spec.Usages, certv1.UsageDigitalSignature)
	}
	for _, u := range spec.Usages {
		if u != certv1.UsageDigitalSignature && u != certv1.UsageKeyEncipherment {
			return nil, "", deny(ReasonInvalidRequest, "spec.usages: %q is not for a node's IKE certificate (only %q and %q)", u, certv1.UsageDigitalSignature, certv1.UsageKeyEncipherment)
		}
	}
	return req, node, nil
}

// checkKey accepts the key types IKEv2 signature authentication (RFC
// 7427) handles in ikecrypto, of sound sizes.
func checkKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("ECDSA on %s: want P-256 or P-384", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 8192 {
			return fmt.Errorf("RSA of %d bits: want 2048 to 8192", n)
		}
	default:
		return fmt.Errorf("%T: want ECDSA P-256/P-384, Ed25519 or RSA", pub)
	}
	return nil
}

// Lifetime is how long the certificate of spec will be valid:
// spec.expirationSeconds, at most MaxLifetime; MaxLifetime when unset.
func (p *Policy) Lifetime(spec *certv1.CertificateSigningRequestSpec) time.Duration {
	if spec.ExpirationSeconds == nil {
		return p.MaxLifetime
	}
	return min(time.Duration(*spec.ExpirationSeconds)*time.Second, p.MaxLifetime)
}
