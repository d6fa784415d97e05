package certs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// ControllerConfig is `rampart controller`: where the CA is, whom to
// trust, and the leader election among its replicas.
type ControllerConfig struct {
	// CASecretNamespace/CASecretName: the kubernetes.io/tls Secret of the
	// CA.
	CASecretNamespace, CASecretName string
	Policy                          Policy
	// LeaderElect: only the holder of the Lease LeaseNamespace/LeaseName
	// signs, so replicas never race on a CSR. Identity names this replica
	// in the Lease (hostname and PID).
	LeaderElect                               bool
	LeaseNamespace, LeaseName, Identity       string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Logger                                    *slog.Logger
	// Started, if set, is called when this replica starts signing.
	Started func()
}

// Default leader election timing: client-go's own defaults, as
// kube-controller-manager uses them.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
	DefaultLeaseName     = "rampart-controller"
)

// Validate fills in defaults and reports what is wrong, all at once.
func (c *ControllerConfig) Validate() error {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.LeaseName == "" {
		c.LeaseName = DefaultLeaseName
	}
	if c.LeaseDuration == 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.RenewDeadline == 0 {
		c.RenewDeadline = DefaultRenewDeadline
	}
	if c.RetryPeriod == 0 {
		c.RetryPeriod = DefaultRetryPeriod
	}
	var errs []error
	if c.CASecretNamespace == "" || c.CASecretName == "" {
		errs = append(errs, errors.New("CA secret: namespace and name are required"))
	}
	if err := c.Policy.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.LeaderElect {
		if msgs := validation.IsDNS1123Label(c.LeaseNamespace); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("leader election namespace %q: %s", c.LeaseNamespace, strings.Join(msgs, "; ")))
		}
		if c.Identity == "" {
			errs = append(errs, errors.New("leader election: an identity is required"))
		}
		if !(c.LeaseDuration > c.RenewDeadline && c.RenewDeadline > c.RetryPeriod && c.RetryPeriod > 0) {
			errs = append(errs, fmt.Errorf("leader election: want lease duration (%v) > renew deadline (%v) > retry period (%v) > 0", c.LeaseDuration, c.RenewDeadline, c.RetryPeriod))
		}
	}
	return errors.Join(errs...)
}

// RunController loads the CA and runs the Signer until ctx ends, under
// leader election when c.LeaderElect. It returns nil when ctx ends, an
// error when the CA cannot be loaded, the signer fails, or this replica
// loses the Lease (the process should exit and start again as a
// candidate, as kube-controller-manager does).
func RunController(ctx context.Context, client kubernetes.Interface, c ControllerConfig) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("certs: controller: %w", err)
	}
	log := c.Logger
	// client-go's leader election logs through the context's logr logger
	// (klog.FromContext): make that our structured log too.
	ctx = logr.NewContext(ctx, logr.FromSlogHandler(log.Handler()))
	ca, err := LoadCA(ctx, client, c.CASecretNamespace, c.CASecretName)
	if err != nil {
		return err
	}
	signer, err := NewSigner(client, SignerOptions{Policy: c.Policy, CA: ca, Logger: log})
	if err != nil {
		return err
	}
	run := func(ctx context.Context) error {
		if c.Started != nil {
			c.Started()
		}
		return signer.Run(ctx)
	}
	if !c.LeaderElect {
		return run(ctx)
	}

	// The elector gets a context of its own, cancelled only once the
	// signer has stopped: with ReleaseOnCancel it then gives the Lease up
	// at once, and no other replica can start signing while this one
	// still writes. Until this replica leads, ctx's end cancels it
	// directly. state tells the elector's goroutines and this one apart
	// from each other: waiting, leading, or finished without leading.
	const (
		waiting = iota
		leading
		finished
	)
	var (
		mu    sync.Mutex
		state = waiting
	)
	leCtx, leCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer leCancel()
	stopWaiting := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if state == waiting {
			leCancel()
		}
	})
	defer stopWaiting()
	var runErr error
	runDone := make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: c.LeaseNamespace, Name: c.LeaseName},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: c.Identity},
		},
		LeaseDuration:   c.LeaseDuration,
		RenewDeadline:   c.RenewDeadline,
		RetryPeriod:     c.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            c.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				mu.Lock()
				if state == finished { // the elector returned already
					mu.Unlock()
					return
				}
				state = leading
				mu.Unlock()
				defer close(runDone)
				log.Info("leading", "lease", c.LeaseNamespace+"/"+c.LeaseName, "identity", c.Identity)
				sctx, cancel := context.WithCancel(lctx)
				stop := context.AfterFunc(ctx, cancel)
				runErr = run(sctx)
				stop()
				cancel()
				leCancel()
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				if id != c.Identity {
					log.Info("another replica leads", "lease", c.LeaseNamespace+"/"+c.LeaseName, "leader", id)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("certs: leader election: %w", err)
	}
	log.Info("waiting for the lease", "lease", c.LeaseNamespace+"/"+c.LeaseName, "identity", c.Identity)
	le.Run(leCtx)
	mu.Lock()
	if state == waiting {
		state = finished
		mu.Unlock()
		return nil // ctx ended before this replica led
	}
	mu.Unlock()
	<-runDone
	switch {
	case runErr != nil:
		return runErr
	case ctx.Err() == nil:
		return fmt.Errorf("certs: lost the lease %s/%s", c.LeaseNamespace, c.LeaseName)
	}
	log.Info("stopped; lease released", "lease", c.LeaseNamespace+"/"+c.LeaseName)
	return nil
}
