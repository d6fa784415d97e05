package kubetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRDs creates the CustomResourceDefinitions in files (YAML, one
// or more documents each) and waits until every one is established and its
// first version's resource is served, or ctx ends.
func (c *Cluster) InstallCRDs(ctx context.Context, files ...string) error {
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	var served []schema.GroupVersionResource
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
		for {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("kubetest: %s: %w", f, err)
			}
			if m == nil {
				continue
			}
			u := &unstructured.Unstructured{Object: m}
			if _, err := dyn.Resource(crdResource).Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("kubetest: %s: CRD %s: %w", f, u.GetName(), err)
			}
			group, _, _ := unstructured.NestedString(m, "spec", "group")
			plural, _, _ := unstructured.NestedString(m, "spec", "names", "plural")
			versions, _, _ := unstructured.NestedSlice(m, "spec", "versions")
			if len(versions) == 0 {
				return fmt.Errorf("kubetest: %s: CRD %s has no versions", f, u.GetName())
			}
			v, _ := versions[0].(map[string]any)["name"].(string)
			served = append(served, schema.GroupVersionResource{Group: group, Version: v, Resource: plural})
		}
	}
	// Served means a list answers (not 404): established and in discovery.
	for _, gvr := range served {
		for {
			_, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("kubetest: %s not served: %w (last: %v)", gvr, ctx.Err(), err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}
