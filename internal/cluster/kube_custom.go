package cluster

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// The custom resources the live source reads when the API server serves
// them (their CRDs installed): the network-policy-api tiers, Istio's
// AuthorizationPolicy, and Rampart's own. Which are served is asked once,
// when the source starts; a CRD installed later is read after a restart.
var customResources = []struct {
	kind     string
	versions []schema.GroupVersionResource // in order of preference
}{
	{"ClusterNetworkPolicy", []schema.GroupVersionResource{{Group: "policy.networking.k8s.io", Version: "v1alpha2", Resource: "clusternetworkpolicies"}}},
	{"AdminNetworkPolicy", []schema.GroupVersionResource{{Group: "policy.networking.k8s.io", Version: "v1alpha1", Resource: "adminnetworkpolicies"}}},
	{"BaselineAdminNetworkPolicy", []schema.GroupVersionResource{{Group: "policy.networking.k8s.io", Version: "v1alpha1", Resource: "baselineadminnetworkpolicies"}}},
	{"AuthorizationPolicy", []schema.GroupVersionResource{
		{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"},
		{Group: "security.istio.io", Version: "v1beta1", Resource: "authorizationpolicies"}}},
	{"EncryptionConfig", []schema.GroupVersionResource{{Group: "rampart.dev", Version: "v1alpha1", Resource: "encryptionconfigs"}}},
	{"IPsecPeer", []schema.GroupVersionResource{{Group: "rampart.dev", Version: "v1alpha1", Resource: "ipsecpeers"}}},
}

// startCustom finds which custom resources the API server serves and
// starts an informer for each (after NewKube's handlers are in place).
func (k *Kube) startCustom(ctx context.Context, disc discovery.DiscoveryInterface) error {
	if k.opts.Dynamic == nil {
		return nil
	}
	k.dynFactory = dynamicinformer.NewFilteredDynamicSharedInformerFactory(k.opts.Dynamic, k.opts.Resync, k.opts.Namespace, nil)
	served := map[schema.GroupVersion][]string{}
	for _, cr := range customResources {
		for _, gvr := range cr.versions {
			gv := gvr.GroupVersion()
			names, ok := served[gv]
			if !ok {
				list, err := disc.ServerResourcesForGroupVersion(gv.String())
				switch {
				case apierrors.IsNotFound(err):
				case err != nil:
					return fmt.Errorf("cluster: %s: discovery of %s: %w", k.name(), gv, err)
				default:
					for _, r := range list.APIResources {
						names = append(names, r.Name)
					}
				}
				served[gv] = names
			}
			if !slices.Contains(names, gvr.Resource) {
				continue
			}
			inf := k.dynFactory.ForResource(gvr).Informer()
			kind := cr.kind
			_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
				AddFunc:    func(obj any) { k.notify(Added, kind, obj) },
				UpdateFunc: func(_, obj any) { k.notify(Modified, kind, obj) },
				DeleteFunc: func(obj any) { k.notify(Deleted, kind, obj) },
			})
			k.custom = append(k.custom, customInformer{kind: kind, gvr: gvr, informer: inf})
			break
		}
	}
	k.dynFactory.Start(ctx.Done())
	for gvr, ok := range k.dynFactory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cluster: %s: the %s informer did not sync: %w", k.name(), gvr.Resource, context.Cause(ctx))
		}
	}
	return nil
}

type customInformer struct {
	kind     string
	gvr      schema.GroupVersionResource
	informer cache.SharedIndexInformer
}

// CustomKinds are the custom resources the source reads, by kind.
func (k *Kube) CustomKinds() []string {
	var out []string
	for _, c := range k.custom {
		out = append(out, c.kind)
	}
	return out
}

// addCustom adds the custom resources of the informers' caches to s. An
// object that does not convert (which the API server's schema should have
// refused) is a diagnostic, as a file that does not decode is.
func (k *Kube) addCustom(s *Snapshot, origin func(kind, ns, name string) *Origin) {
	for _, c := range k.custom {
		for _, obj := range c.informer.GetStore().List() {
			u, ok := obj.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			o := origin(c.kind, u.GetNamespace(), u.GetName())
			target, into := newObject(c.kind)
			// The converter builds new values: the cache's object is
			// only read, and the snapshot gets a copy of its own.
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
				s.Diagnostics = append(s.Diagnostics, At(Error, o, ObjectName(c.kind, u.GetNamespace(), u.GetName()), "", "cannot decode: %v", err))
				continue
			}
			s.add(c.kind, target, o)
		}
	}
}
