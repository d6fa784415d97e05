// Package certs gives each node agent its IKE certificate through the
// Kubernetes CertificateSigningRequest API, with the signer SignerName
// ("rampart.dev/ipsec").
//
// The flow (docs/security.md, "Node certificates"):
//
//  1. An agent makes a key, and creates a CSR (Request) with its pod's
//     projected service-account token; the API server records in
//     spec.username and spec.extra who asked: the agents' ServiceAccount,
//     the pod and the node the token is bound to.
//  2. The controller's Signer watches the CSRs of SignerName. For a pending
//     one it runs Policy.Review (the requester is an agent pod on the very
//     node the request names, and the request names nothing else) and
//     writes Approved or Denied through the approval subresource.
//  3. For an approved one it signs with the CA of a kubernetes.io/tls
//     Secret and writes status.certificate through the status
//     subresource: the node certificate, then any intermediates.
//  4. The agent's watch sees the certificate (or the denial) and returns
//     the chain. The trust anchors come from the ClusterTrustBundle the
//     Signer keeps for SignerName (TrustAnchors), which only an identity
//     allowed to "attest" for the signer may write.
//  5. The agent renews at about 2/3 of the lifetime (RenewAt, Renewer),
//     with a new key.
//
// The package holds no agent code: the agent wires Request and Renewer
// into its IKE credentials.
package certs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// SignerOptions configure a Signer.
type SignerOptions struct {
	Policy Policy
	CA     *CA
	// Logger receives one line per decision (never a key). Default
	// slog.Default().
	Logger *slog.Logger
	// Workers is the number of CSRs handled at once (default 2).
	Workers int
	// Resync re-examines every CSR of the signer this often, so one whose
	// update failed for good is retried (default 10 minutes).
	Resync time.Duration
	// Lookup reads pods and nodes (default: straight from the API server,
	// not a cache, so a pod deleted a moment ago is seen gone).
	Lookup Lookup
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Signer approves or denies, and signs, the CSRs of SignerName.
type Signer struct {
	client kubernetes.Interface
	opts   SignerOptions
	log    *slog.Logger
	// done holds the UIDs of the CSRs this signer took to their end
	// (certificate, Denied or Failed). The informer's cache can still
	// hold an older, pending-looking copy after our write (the approval's
	// event arrives after the certificate was written): without this, it
	// would be signed a second time, and the write refused as a conflict.
	// A CSR never leaves those states; its entry goes with it.
	done sync.Map
}

// NewSigner checks opts and makes a Signer; Run starts it.
func NewSigner(client kubernetes.Interface, opts SignerOptions) (*Signer, error) {
	if err := opts.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("certs: signer policy: %w", err)
	}
	if opts.CA == nil {
		return nil, errors.New("certs: signer: no CA")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Resync <= 0 {
		opts.Resync = 10 * time.Minute
	}
	if opts.Lookup == nil {
		opts.Lookup = ClientLookup{Client: client}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Signer{client: client, opts: opts, log: opts.Logger.With("signer", SignerName)}, nil
}

// Run publishes the trust anchors, then handles CSRs until ctx ends.
func (s *Signer) Run(ctx context.Context) error {
	if err := s.PublishTrustBundle(ctx); err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(s.client, s.opts.Resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			// The API server filters: other signers' CSRs never reach us.
			o.FieldSelector = fields.OneTermEqualSelector("spec.signerName", SignerName).String()
		}))
	inf := factory.Certificates().V1().CertificateSigningRequests()
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "rampart-csr"})
	defer queue.ShutDown()
	enqueue := func(obj any) {
		if csr, ok := obj.(*certv1.CertificateSigningRequest); ok && pending(csr) {
			queue.Add(csr.Name)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if csr, ok := obj.(*certv1.CertificateSigningRequest); ok {
				s.done.Delete(csr.UID)
			}
		},
	}); err != nil {
		return fmt.Errorf("certs: CSR informer: %w", err)
	}
	lister := inf.Lister()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		return fmt.Errorf("certs: CSR informer did not sync: %w", ctx.Err())
	}
	s.log.Info("signer running", "agents", s.opts.Policy.Username(), "maxLifetime", s.opts.Policy.MaxLifetime,
		"ca", s.opts.CA.Cert.Subject.String(), "caExpires", s.opts.CA.Cert.NotAfter)

	var wg sync.WaitGroup
	for range s.opts.Workers {
		wg.Go(func() {
			for s.next(ctx, queue, lister) {
			}
		})
	}
	<-ctx.Done()
	queue.ShutDown()
	wg.Wait()
	return nil
}

// next handles one queued CSR; false when the queue shut down.
func (s *Signer) next(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string], lister certlisters.CertificateSigningRequestLister) bool {
	name, quit := queue.Get()
	if quit {
		return false
	}
	defer queue.Done(name)
	csr, err := lister.Get(name)
	if apierrors.IsNotFound(err) {
		queue.Forget(name)
		return true
	}
	if err == nil {
		err = s.Handle(ctx, csr)
	}
	if err != nil && ctx.Err() == nil {
		level := slog.LevelWarn
		if apierrors.IsConflict(err) {
			// The CSR changed since our cache saw it (another
			// approver, another replica in a leader change): the newer
			// object comes with the next event.
			level = slog.LevelDebug
		}
		s.log.Log(ctx, level, "CSR not handled, will retry", "csr", name, "error", err)
		queue.AddRateLimited(name)
		return true
	}
	queue.Forget(name)
	return true
}

// pending: no certificate yet, and not Denied or Failed.
func pending(csr *certv1.CertificateSigningRequest) bool {
	if csr.Spec.SignerName != SignerName || len(csr.Status.Certificate) > 0 {
		return false
	}
	return !hasCondition(csr, certv1.CertificateDenied) && !hasCondition(csr, certv1.CertificateFailed)
}

func hasCondition(csr *certv1.CertificateSigningRequest, t certv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// Handle takes one CSR as far as it goes: a pending one is reviewed and
// approved or denied; an approved one is signed. A returned error is
// transient (the API server, a conflict): handle it again later.
//
// A CSR approved by someone else (anyone granted "approve" on the signer,
// such as an administrator with kubectl certificate approve) is signed
// after CheckRequest alone: the approver vouched for the requester, but
// what the certificate says is still the signer's to decide.
func (s *Signer) Handle(ctx context.Context, csr *certv1.CertificateSigningRequest) error {
	if _, done := s.done.Load(csr.UID); done || !pending(csr) {
		return nil
	}
	csr = csr.DeepCopy()
	log := s.log.With("csr", csr.Name, "requester", csr.Spec.Username)
	if !hasCondition(csr, certv1.CertificateApproved) {
		a, err := s.opts.Policy.Review(ctx, csr, s.opts.Lookup)
		var d *Denial
		if errors.As(err, &d) {
			if err := s.setApproval(ctx, csr, certv1.CertificateDenied, d.Reason, d.Message); err != nil {
				return err
			}
			s.done.Store(csr.UID, struct{}{})
			log.Warn("CSR denied", "reason", d.Reason, "message", d.Message)
			return nil
		}
		if err != nil {
			return fmt.Errorf("review CSR %s: %w", csr.Name, err)
		}
		if err := s.setApproval(ctx, csr, certv1.CertificateApproved, ReasonApproved, a.Message); err != nil {
			return err
		}
		log.Info("CSR approved", "node", a.Node, "message", a.Message)
		// The approval's answer is the object to sign; the informer's
		// copy of it arrives later and finds it signed.
		return s.sign(ctx, csr, log)
	}
	return s.sign(ctx, csr, log)
}

func (s *Signer) setApproval(ctx context.Context, csr *certv1.CertificateSigningRequest, t certv1.RequestConditionType, reason, msg string) error {
	now := metav1.NewTime(s.opts.Now())
	csr.Status.Conditions = append(csr.Status.Conditions, certv1.CertificateSigningRequestCondition{
		Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: msg, LastUpdateTime: now, LastTransitionTime: now})
	got, err := s.client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("CSR %s: write %s condition (certificatesigningrequests/approval): %w", csr.Name, t, err)
	}
	*csr = *got
	return nil
}

// sign issues the certificate of an approved CSR, or marks it Failed when
// its request is not one the signer issues.
func (s *Signer) sign(ctx context.Context, csr *certv1.CertificateSigningRequest, log *slog.Logger) error {
	req, node, d := CheckRequest(&csr.Spec)
	var pemChain []byte
	if d == nil {
		var err error
		pemChain, err = s.opts.CA.Issue(req, node, csr.Spec.Usages, s.opts.Now(), s.opts.Policy.Lifetime(&csr.Spec))
		if err != nil {
			d = deny(ReasonSignFailed, "%v", err)
		}
	}
	if d != nil {
		now := metav1.NewTime(s.opts.Now())
		csr.Status.Conditions = append(csr.Status.Conditions, certv1.CertificateSigningRequestCondition{
			Type: certv1.CertificateFailed, Status: corev1.ConditionTrue, Reason: d.Reason, Message: d.Message, LastUpdateTime: now, LastTransitionTime: now})
	} else {
		csr.Status.Certificate = pemChain
	}
	if _, err := s.client.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("CSR %s: write status (certificatesigningrequests/status): %w", csr.Name, err)
	}
	s.done.Store(csr.UID, struct{}{})
	if d != nil {
		log.Warn("CSR failed", "reason", d.Reason, "message", d.Message)
		return nil
	}
	log.Info("certificate issued", "node", node, "lifetime", s.opts.Policy.Lifetime(&csr.Spec))
	return nil
}

// PublishTrustBundle creates or updates the ClusterTrustBundle
// TrustBundleName with the CA's anchors. The API server lets only an
// identity with "attest" on the signer write it.
func (s *Signer) PublishTrustBundle(ctx context.Context) error {
	api := s.client.CertificatesV1().ClusterTrustBundles()
	want := s.opts.CA.AnchorsPEM()
	cur, err := api.Get(ctx, TrustBundleName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, &certv1.ClusterTrustBundle{
			ObjectMeta: metav1.ObjectMeta{Name: TrustBundleName},
			Spec:       certv1.ClusterTrustBundleSpec{SignerName: SignerName, TrustBundle: want},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("certs: create ClusterTrustBundle %s: %w", TrustBundleName, err)
		}
		s.log.Info("trust bundle created", "clusterTrustBundle", TrustBundleName)
		return nil
	case err != nil:
		return fmt.Errorf("certs: get ClusterTrustBundle %s: %w", TrustBundleName, err)
	case cur.Spec.TrustBundle == want:
		return nil
	}
	cur.Spec.TrustBundle = want
	if _, err := api.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("certs: update ClusterTrustBundle %s: %w", TrustBundleName, err)
	}
	s.log.Info("trust bundle updated", "clusterTrustBundle", TrustBundleName)
	return nil
}

// ClientLookup is Lookup through a clientset.
type ClientLookup struct{ Client kubernetes.Interface }

func (l ClientLookup) Pod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	return l.Client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (l ClientLookup) Node(ctx context.Context, name string) (*corev1.Node, error) {
	return l.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
}
