package cluster

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// The live source: client-go informers on the API server's Namespaces,
// Pods, Nodes, Services and NetworkPolicies, and (with a dynamic client)
// the custom resources it serves of those Rampart reads. The informers list, then
// watch; after a watch error they list again, and every Resync they hand
// every object over again. Snapshot reads the informers' caches, so it
// costs no request, and a Snapshot taken while the API server is away is
// the last state the informers saw: the agent keeps enforcing it.

// Kube is a live source of Snapshots.
type Kube struct {
	opts     KubeOptions
	factory  informers.SharedInformerFactory
	informer map[string]cache.SharedIndexInformer // by kind
	changed  chan struct{}
	events   chan Event

	// The custom resources' informers (kube_custom.go), made by Start.
	client     kubernetes.Interface
	dynFactory dynamicinformer.DynamicSharedInformerFactory
	custom     []customInformer

	mu      sync.Mutex
	dropped int    // events not delivered because the channel was full
	version uint64 // the largest resourceVersion seen
}

// KubeOptions configure a Kube source.
type KubeOptions struct {
	// Name names the cluster in the origins of its objects (a kubeconfig
	// context, or the server's address).
	Name string
	// Namespace, if set, limits Pods, Services and NetworkPolicies to one
	// namespace (Namespaces and Nodes are cluster-scoped).
	Namespace string
	// Resync is how often the informers hand every object over again;
	// zero means no periodic resync (the watch alone).
	Resync time.Duration
	// Events, if positive, keeps a channel of that many Events, in the
	// order the informers saw them (Kube.Events).
	Events int
	// Dynamic, if set, also reads the custom resources the API server
	// serves (kube_custom.go): cluster-wide network policies, Istio's
	// AuthorizationPolicy, Rampart's EncryptionConfig and IPsecPeer.
	Dynamic dynamic.Interface
}

// EventType is what happened to an object.
type EventType string

// Event types, as a watch names them.
const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
)

// Event is one change an informer saw.
type Event struct {
	Type                           EventType
	Kind, Namespace, Name, Version string // Version: the object's resourceVersion
}

func (e Event) String() string {
	return fmt.Sprintf("%s %s", e.Type, ObjectName(e.Kind, e.Namespace, e.Name))
}

// NewKube makes a source on client; Start starts it.
func NewKube(client kubernetes.Interface, opts KubeOptions) *Kube {
	var fopts []informers.SharedInformerOption
	if opts.Namespace != "" {
		fopts = append(fopts, informers.WithNamespace(opts.Namespace))
	}
	k := &Kube{
		opts:     opts,
		client:   client,
		factory:  informers.NewSharedInformerFactoryWithOptions(client, opts.Resync, fopts...),
		informer: map[string]cache.SharedIndexInformer{},
		changed:  make(chan struct{}, 1),
	}
	if opts.Events > 0 {
		k.events = make(chan Event, opts.Events)
	}
	// Namespaces and Nodes are cluster-scoped: a factory limited to a
	// namespace would list them all anyway, so they share it.
	k.informer["Namespace"] = k.factory.Core().V1().Namespaces().Informer()
	k.informer["Pod"] = k.factory.Core().V1().Pods().Informer()
	k.informer["Node"] = k.factory.Core().V1().Nodes().Informer()
	k.informer["Service"] = k.factory.Core().V1().Services().Informer()
	k.informer["NetworkPolicy"] = k.factory.Networking().V1().NetworkPolicies().Informer()
	for kind, inf := range k.informer {
		// Registration errors come only from a stopped informer.
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { k.notify(Added, kind, obj) },
			UpdateFunc: func(_, obj any) { k.notify(Modified, kind, obj) },
			DeleteFunc: func(obj any) { k.notify(Deleted, kind, obj) },
		})
	}
	return k
}

// Start starts the informers and waits until each has listed its objects
// once, or ctx ends. They run until ctx ends.
func (k *Kube) Start(ctx context.Context) error {
	k.factory.Start(ctx.Done())
	for kind, ok := range k.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cluster: %s: the %s informer did not sync: %w", k.opts.Name, kind, context.Cause(ctx))
		}
	}
	return k.startCustom(ctx, k.client.Discovery())
}

// Changed receives a value after any change since the last receive: many
// changes in a row make one, so a reader rebuilds once for a burst.
func (k *Kube) Changed() <-chan struct{} { return k.changed }

// Events returns the events channel (nil unless KubeOptions.Events). A
// reader that falls behind loses events; Dropped counts them.
func (k *Kube) Events() <-chan Event { return k.events }

// Dropped is the number of events lost to a full Events channel.
func (k *Kube) Dropped() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.dropped
}

func (k *Kube) notify(t EventType, kind string, obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	e := Event{Type: t, Kind: kind}
	if m, err := meta.Accessor(obj); err == nil {
		e.Namespace, e.Name, e.Version = m.GetNamespace(), m.GetName(), m.GetResourceVersion()
	}
	// A deletion's event carries the object's last version, not the
	// deletion's: the deletion is seen once a later write is, or at the
	// next resync. Good enough for "has the reader seen my write".
	if v, err := strconv.ParseUint(e.Version, 10, 64); err == nil {
		k.mu.Lock()
		k.version = max(k.version, v)
		k.mu.Unlock()
	}
	if k.events != nil {
		select {
		case k.events <- e:
		default:
			k.mu.Lock()
			k.dropped++
			k.mu.Unlock()
		}
	}
	select {
	case k.changed <- struct{}{}:
	default:
	}
}

// Snapshot is the cluster as the informers' caches hold it now, finished
// like a Snapshot of files. Objects are copies: the caller may change them.
// Pods that have ended (Succeeded or Failed) are left out: they hold no
// address (the API server may give theirs to a new pod).
func (k *Kube) Snapshot() *Snapshot {
	k.mu.Lock()
	s := &Snapshot{Version: strconv.FormatUint(k.version, 10)}
	k.mu.Unlock()
	f := k.factory
	origin := func(kind, ns, name string) *Origin {
		return &Origin{File: fmt.Sprintf("%s: %s", k.name(), ObjectName(kind, ns, name))}
	}
	nss, _ := f.Core().V1().Namespaces().Lister().List(labels.Everything())
	for _, n := range nss {
		s.add("", n.DeepCopy(), origin("Namespace", "", n.Name))
	}
	pods, _ := f.Core().V1().Pods().Lister().List(labels.Everything())
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		s.add("Pod", p.DeepCopy(), origin("Pod", p.Namespace, p.Name))
	}
	nodes, _ := f.Core().V1().Nodes().Lister().List(labels.Everything())
	for _, n := range nodes {
		s.add("Node", n.DeepCopy(), origin("Node", "", n.Name))
	}
	svcs, _ := f.Core().V1().Services().Lister().List(labels.Everything())
	for _, sv := range svcs {
		s.add("Service", sv.DeepCopy(), origin("Service", sv.Namespace, sv.Name))
	}
	nps, _ := f.Networking().V1().NetworkPolicies().Lister().List(labels.Everything())
	for _, np := range nps {
		s.add("NetworkPolicy", &NetworkPolicy{NetworkPolicy: *np.DeepCopy()}, origin("NetworkPolicy", np.Namespace, np.Name))
	}
	k.addCustom(s, origin)
	s.Finish()
	return s
}

func (k *Kube) name() string {
	if k.opts.Name != "" {
		return k.opts.Name
	}
	return "apiserver"
}

// KubeConfig says how to reach an API server, as kubectl does: Path is a
// kubeconfig file (empty: $KUBECONFIG, then ~/.kube/config), Context one
// of its contexts (empty: the current one), Namespace the namespace to
// read (empty: all; "-n" in the CLI).
type KubeConfig struct {
	Path, Context, Namespace string
	// InCluster uses the service account of the pod this runs in.
	InCluster bool
}

// RESTConfig resolves c into a client configuration and the name of the
// context it used.
func (c KubeConfig) RESTConfig() (*rest.Config, string, error) {
	if c.InCluster {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, "", fmt.Errorf("in-cluster config: %w", err)
		}
		return rc, "in-cluster", nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if c.Path != "" {
		rules.ExplicitPath = c.Path
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.Context})
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	name := c.Context
	if name == "" {
		name = raw.CurrentContext
	}
	rc, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	return rc, name, nil
}

// LoadKube reads the cluster once: it starts a source, waits for its
// caches, and returns their Snapshot. The timeout bounds the whole read.
func LoadKube(ctx context.Context, c KubeConfig, timeout time.Duration) (*Snapshot, error) {
	rc, name, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	rc.Timeout = timeout
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", name, err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	k := NewKube(client, KubeOptions{Name: name, Namespace: c.Namespace, Dynamic: dyn})
	if err := k.Start(ctx); err != nil {
		return nil, fmt.Errorf("cluster: reading %s (%s): %w", name, rc.Host, err)
	}
	return k.Snapshot(), nil
}
