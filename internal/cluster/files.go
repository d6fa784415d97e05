package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxFileSize bounds what one manifest file may hold.
const maxFileSize = 16 << 20

// Load reads manifest files and directories (recursively: files ending in
// .yaml, .yml or .json) into one Snapshot. It fails only when a path cannot
// be read at all; everything wrong inside the files becomes a diagnostic.
func Load(paths ...string) (*Snapshot, error) {
	s := &Snapshot{}
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && isManifest(path) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		LoadBytes(f, data, s)
	}
	s.Finish()
	return s, nil
}

func isManifest(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// LoadBytes parses one file's content into s. Call Finish after the last file.
func LoadBytes(file string, data []byte, s *Snapshot) {
	if len(data) > maxFileSize {
		s.Diagnostics = append(s.Diagnostics, Diagnostic{Severity: Error, File: file,
			Message: fmt.Sprintf("file is larger than %d MiB", maxFileSize>>20)})
		return
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			s.Diagnostics = append(s.Diagnostics, yamlError(file, err))
			return // the decoder cannot resynchronise after a syntax error
		}
		if len(doc.Content) == 0 {
			continue
		}
		s.addNode(file, doc.Content[0])
	}
}

// yamlError turns a yaml.v3 error ("yaml: line 7: ...") into a diagnostic.
func yamlError(file string, err error) Diagnostic {
	d := Diagnostic{Severity: Error, File: file, Message: err.Error()}
	var line int
	if _, scanErr := fmt.Sscanf(strings.TrimPrefix(err.Error(), "yaml: "), "line %d:", &line); scanErr == nil {
		d.Line = line
		if i := strings.Index(d.Message, ": "); i >= 0 {
			if j := strings.Index(d.Message[i+2:], ": "); j >= 0 {
				d.Message = d.Message[i+2+j+2:]
			}
		}
	}
	d.Message = "not valid YAML: " + d.Message
	return d
}

// kinds maps a kind to the apiVersion it must have.
var kinds = map[string]string{
	"Namespace": "v1", "Pod": "v1", "Node": "v1", "Service": "v1",
	"NetworkPolicy": "networking.k8s.io/v1",
	"Deployment":    "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "ReplicaSet": "apps/v1",
	"Job": "batch/v1", "CronJob": "batch/v1",
	"ClusterNetworkPolicy":       npaV1alpha2,
	"AdminNetworkPolicy":         npaV1alpha1,
	"BaselineAdminNetworkPolicy": npaV1alpha1,
	"AuthorizationPolicy":        istioV1,
	"EncryptionConfig":           rampartV1alpha1,
	"IPsecPeer":                  rampartV1alpha1,
}

// Istio's AuthorizationPolicy is served as v1 and, with the same schema,
// v1beta1; Rampart's own kinds as v1alpha1.
const (
	istioV1         = "security.istio.io/v1"
	istioV1beta1    = "security.istio.io/v1beta1"
	rampartV1alpha1 = "rampart.dev/v1alpha1"
)

// The API versions of sigs.k8s.io/network-policy-api v0.2.0: v1alpha2
// serves ClusterNetworkPolicy alone, which replaced v1alpha1's
// AdminNetworkPolicy and BaselineAdminNetworkPolicy.
const (
	npaV1alpha1 = "policy.networking.k8s.io/v1alpha1"
	npaV1alpha2 = "policy.networking.k8s.io/v1alpha2"
)

// wrongVersion is the diagnostic for a known kind under another apiVersion.
// The network-policy-api kinds get a message of their own: the v1alpha1
// and v1alpha2 groups look alike, but serve different kinds.
func wrongVersion(o *Origin, kind, name, apiVersion, want string) Diagnostic {
	obj := kind + " " + name
	switch {
	case (kind == "AdminNetworkPolicy" || kind == "BaselineAdminNetworkPolicy") && apiVersion == npaV1alpha2:
		tier := "Admin"
		if kind == "BaselineAdminNetworkPolicy" {
			tier = "Baseline"
		}
		return At(Error, o, obj, "apiVersion", "%s is not served as %s: network-policy-api v0.2.0 serves only ClusterNetworkPolicy there",
			kind, apiVersion).
			WithHint("use apiVersion: %s for kind %s, or write it as apiVersion: %s, kind: ClusterNetworkPolicy with spec.tier: %s (rule action Allow becomes Accept)",
				want, kind, npaV1alpha2, tier)
	case kind == "ClusterNetworkPolicy" && apiVersion == npaV1alpha1:
		return At(Error, o, obj, "apiVersion", "ClusterNetworkPolicy is not served as %s: it exists only in v1alpha2", apiVersion).
			WithHint("use apiVersion: %s (v1alpha1's kinds are AdminNetworkPolicy and BaselineAdminNetworkPolicy)", want)
	}
	if kind == "AuthorizationPolicy" {
		return At(Error, o, obj, "apiVersion", "AuthorizationPolicy is not served as %s", apiVersion).
			WithHint("use apiVersion: %s (or %s, the same schema)", istioV1, istioV1beta1)
	}
	return At(Error, o, obj, "apiVersion", "%s is not served as %s", kind, apiVersion).WithHint("use apiVersion: %s", want)
}

func scalar(n *yaml.Node, key string) (string, *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return "", nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1].Value, n.Content[i+1]
		}
	}
	return "", nil
}

func (s *Snapshot) addNode(file string, n *yaml.Node) {
	o := NewOrigin(file, n)
	if n.Kind != yaml.MappingNode {
		s.Diagnostics = append(s.Diagnostics, At(Error, o, "", "", "a manifest document must be an object"))
		return
	}
	apiVersion, _ := scalar(n, "apiVersion")
	kind, _ := scalar(n, "kind")
	name, _ := scalar(mapping(n, "metadata"), "name")
	if items := mapping(n, "items"); items != nil && items.Kind == yaml.SequenceNode && strings.HasSuffix(kind, "List") {
		for _, it := range items.Content {
			s.addNode(file, it)
		}
		return
	}
	if apiVersion == "" || kind == "" {
		s.Diagnostics = append(s.Diagnostics, At(Error, o, name, "", "missing apiVersion or kind").
			WithHint("every manifest needs apiVersion and kind, e.g. apiVersion: networking.k8s.io/v1, kind: NetworkPolicy"))
		return
	}
	want, known := kinds[kind]
	spec := mapping(n, "spec")
	// A cluster-wide policy has a subject; a NetworkPolicy a podSelector.
	looksLikeClusterPolicy := spec != nil && mapping(spec, "subject") != nil
	looksLikePolicy := spec != nil && (mapping(spec, "podSelector") != nil || mapping(spec, "ingress") != nil ||
		mapping(spec, "egress") != nil || mapping(spec, "policyTypes") != nil)
	switch {
	case known && (apiVersion == want || kind == "AuthorizationPolicy" && apiVersion == istioV1beta1):
	case known:
		s.Diagnostics = append(s.Diagnostics, wrongVersion(o, kind, name, apiVersion, want))
		return
	case looksLikeClusterPolicy:
		s.Diagnostics = append(s.Diagnostics, At(Error, o, kind+" "+name, "kind",
			"%s %s has the spec of a cluster-wide network policy", apiVersion, kind).
			WithHint("did you mean apiVersion: %s, kind: ClusterNetworkPolicy?", npaV1alpha2))
		return
	case looksLikePolicy:
		s.Diagnostics = append(s.Diagnostics, At(Error, o, kind+" "+name, "kind",
			"%s %s has a NetworkPolicy spec", apiVersion, kind).
			WithHint("did you mean apiVersion: networking.k8s.io/v1, kind: NetworkPolicy?"))
		return
	default:
		s.Diagnostics = append(s.Diagnostics, At(Note, o, kind+" "+name, "",
			"skipped: Rampart does not use kind %s", kind))
		return
	}
	target, decodeInto := newObject(kind)
	if d, ok := decodeStrict(n, decodeInto, o, kind+" "+name); !ok {
		s.Diagnostics = append(s.Diagnostics, d)
		return
	}
	s.add(kind, target, o)
}

// newObject makes an empty object of kind for s.add, and says what its
// manifest decodes into: the object itself, or for the kinds that carry
// an Origin beside the API type, that embedded type.
func newObject(kind string) (target, decodeInto any) {
	switch kind {
	case "Namespace":
		target = &corev1.Namespace{}
	case "Pod":
		target = &corev1.Pod{}
	case "Node":
		target = &corev1.Node{}
	case "Service":
		target = &corev1.Service{}
	case "Deployment":
		target = &appsv1.Deployment{}
	case "StatefulSet":
		target = &appsv1.StatefulSet{}
	case "DaemonSet":
		target = &appsv1.DaemonSet{}
	case "ReplicaSet":
		target = &appsv1.ReplicaSet{}
	case "Job":
		target = &batchv1.Job{}
	case "CronJob":
		target = &batchv1.CronJob{}
	case "NetworkPolicy":
		p := &NetworkPolicy{}
		return p, &p.NetworkPolicy
	case "ClusterNetworkPolicy":
		p := &ClusterNetworkPolicy{}
		return p, &p.ClusterNetworkPolicy
	case "AdminNetworkPolicy":
		p := &AdminNetworkPolicy{}
		return p, &p.AdminNetworkPolicy
	case "BaselineAdminNetworkPolicy":
		p := &BaselineAdminNetworkPolicy{}
		return p, &p.BaselineAdminNetworkPolicy
	case "AuthorizationPolicy":
		p := &AuthorizationPolicy{}
		return p, &p.AuthorizationPolicy
	case "EncryptionConfig":
		p := &EncryptionConfig{}
		return p, &p.EncryptionConfig
	case "IPsecPeer":
		p := &IPsecPeer{}
		return p, &p.IPsecPeer
	}
	return target, target
}

func mapping(n *yaml.Node, key string) *yaml.Node {
	if n == nil {
		return nil
	}
	_, v := scalar(n, key)
	return v
}

// decodeStrict decodes the node into a typed object, refusing unknown
// fields as kubectl's default --validate=strict does: a typo such as
// "form:" for "from:" would otherwise widen a rule silently.
func decodeStrict(n *yaml.Node, target any, o *Origin, object string) (Diagnostic, bool) {
	var generic any
	if err := n.Decode(&generic); err != nil {
		return At(Error, o, object, "", "cannot decode: %v", err), false
	}
	raw, err := json.Marshal(generic)
	if err != nil {
		return At(Error, o, object, "", "cannot decode: %v", err), false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(target); err != nil {
		msg := err.Error()
		path := ""
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			path = te.Field
			msg = fmt.Sprintf("wrong type: a %s where %s is expected", te.Value, te.Type)
		} else if strings.HasPrefix(msg, "json: unknown field ") {
			field := strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)
			path = findKey(n, field, "")
			msg = fmt.Sprintf("unknown field %q", field)
			d := At(Error, o, object, path, "%s", msg)
			return d.WithHint("kubectl apply refuses unknown fields; check the spelling against the API reference"), false
		}
		return At(Error, o, object, path, "%s", msg), false
	}
	return Diagnostic{}, true
}

// findKey returns the field path of the first mapping key named field.
func findKey(n *yaml.Node, field, prefix string) string {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			if k == field {
				return p
			}
			if r := findKey(n.Content[i+1], field, p); r != "" {
				return r
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if r := findKey(c, field, fmt.Sprintf("%s[%d]", prefix, i)); r != "" {
				return r
			}
		}
	}
	return ""
}

func (s *Snapshot) add(kind string, obj any, o *Origin) {
	endpoint := func(meta metav1.ObjectMeta, tmpl corev1.PodTemplateSpec, specPath, labelsPath string) {
		p := &Pod{Kind: kind, SpecPath: specPath, LabelsPath: labelsPath, Origin: o}
		p.Name, p.Namespace = meta.Name, meta.Namespace
		p.Labels = tmpl.Labels
		p.Spec = tmpl.Spec
		s.Pods = append(s.Pods, p)
	}
	switch v := obj.(type) {
	case *corev1.Namespace:
		s.Namespaces = append(s.Namespaces, &Namespace{Namespace: *v, Declared: true, Origin: o})
	case *corev1.Pod:
		s.Pods = append(s.Pods, &Pod{Pod: *v, Kind: "Pod", SpecPath: "spec", LabelsPath: "metadata.labels", Origin: o})
	case *corev1.Node:
		s.Nodes = append(s.Nodes, &Node{Node: *v, Origin: o})
	case *corev1.Service:
		s.Services = append(s.Services, &Service{Service: *v, Origin: o})
	case *NetworkPolicy:
		v.Origin = o
		s.NetworkPolicies = append(s.NetworkPolicies, v)
	case *ClusterNetworkPolicy:
		v.Origin = o
		s.ClusterNetworkPolicies = append(s.ClusterNetworkPolicies, v)
	case *AdminNetworkPolicy:
		v.Origin = o
		s.AdminNetworkPolicies = append(s.AdminNetworkPolicies, v)
	case *BaselineAdminNetworkPolicy:
		v.Origin = o
		s.BaselineAdminNetworkPolicies = append(s.BaselineAdminNetworkPolicies, v)
	case *AuthorizationPolicy:
		v.Origin = o
		s.AuthorizationPolicies = append(s.AuthorizationPolicies, v)
	case *EncryptionConfig:
		v.Origin = o
		s.EncryptionConfigs = append(s.EncryptionConfigs, v)
	case *IPsecPeer:
		v.Origin = o
		s.IPsecPeers = append(s.IPsecPeers, v)
	case *appsv1.Deployment:
		endpoint(v.ObjectMeta, v.Spec.Template, "spec.template.spec", "spec.template.metadata.labels")
	case *appsv1.StatefulSet:
		endpoint(v.ObjectMeta, v.Spec.Template, "spec.template.spec", "spec.template.metadata.labels")
	case *appsv1.DaemonSet:
		endpoint(v.ObjectMeta, v.Spec.Template, "spec.template.spec", "spec.template.metadata.labels")
	case *appsv1.ReplicaSet:
		endpoint(v.ObjectMeta, v.Spec.Template, "spec.template.spec", "spec.template.metadata.labels")
	case *batchv1.Job:
		endpoint(v.ObjectMeta, v.Spec.Template, "spec.template.spec", "spec.template.metadata.labels")
	case *batchv1.CronJob:
		endpoint(v.ObjectMeta, v.Spec.JobTemplate.Spec.Template,
			"spec.jobTemplate.spec.template.spec", "spec.jobTemplate.spec.template.metadata.labels")
	}
}

// uniqueObjects keeps the first object of each name of kind (namespace
// and name when namespaced), reports the others through dup, and orders
// the rest by namespace and name.
func uniqueObjects[T interface {
	GetNamespace() string
	GetName() string
}](list []T, kind string, namespaced bool, origin func(T) *Origin, dup func(string, *Origin) bool) []T {
	key := func(o T) (ns, name string) {
		if namespaced {
			ns = o.GetNamespace()
		}
		return ns, o.GetName()
	}
	var out []T
	for _, o := range list {
		if ns, name := key(o); !dup(ObjectName(kind, ns, name), origin(o)) {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		ni, ai := key(out[i])
		nj, aj := key(out[j])
		return ni+"/"+ai < nj+"/"+aj
	})
	return out
}

// Finish completes a snapshot after its last file: default namespaces,
// the automatic namespace label, namespaces referred to but not declared,
// duplicates, and a deterministic order.
func (s *Snapshot) Finish() {
	for _, p := range s.Pods {
		if p.Namespace == "" {
			p.Namespace = metav1.NamespaceDefault
		}
	}
	for _, sv := range s.Services {
		if sv.Namespace == "" {
			sv.Namespace = metav1.NamespaceDefault
		}
	}
	for _, np := range s.NetworkPolicies {
		if np.Namespace == "" {
			np.Namespace = metav1.NamespaceDefault
		}
	}
	seen := map[string]*Origin{}
	dup := func(name string, o *Origin) bool {
		if first, ok := seen[name]; ok {
			s.Diagnostics = append(s.Diagnostics, At(Error, o, name, "metadata.name",
				"declared twice; the first is at %s", first.Pos("metadata.name")).
				WithHint("names are unique per kind and namespace (pods and workloads share one namespace of endpoint names); pass one example directory at a time"))
			return true
		}
		seen[name] = o
		return false
	}
	var nss []*Namespace
	for _, n := range s.Namespaces {
		if dup(ObjectName("Namespace", "", n.Name), n.Origin) {
			continue
		}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[corev1.LabelMetadataName] = n.Name
		nss = append(nss, n)
	}
	var pods []*Pod
	for _, p := range s.Pods {
		if dup("endpoint "+p.Namespace+"/"+p.Name, p.Origin) {
			continue
		}
		pods = append(pods, p)
	}
	var nodes []*Node
	for _, n := range s.Nodes {
		if !dup(ObjectName("Node", "", n.Name), n.Origin) {
			nodes = append(nodes, n)
		}
	}
	var svcs []*Service
	for _, sv := range s.Services {
		if !dup(ObjectName("Service", sv.Namespace, sv.Name), sv.Origin) {
			svcs = append(svcs, sv)
		}
	}
	var nps []*NetworkPolicy
	for _, np := range s.NetworkPolicies {
		if !dup(ObjectName("NetworkPolicy", np.Namespace, np.Name), np.Origin) {
			nps = append(nps, np)
		}
	}
	// The cluster-wide policies and Rampart's kinds are cluster-scoped:
	// unique by name per kind.
	s.ClusterNetworkPolicies = uniqueObjects(s.ClusterNetworkPolicies, "ClusterNetworkPolicy", false, func(p *ClusterNetworkPolicy) *Origin { return p.Origin }, dup)
	s.AdminNetworkPolicies = uniqueObjects(s.AdminNetworkPolicies, "AdminNetworkPolicy", false, func(p *AdminNetworkPolicy) *Origin { return p.Origin }, dup)
	s.BaselineAdminNetworkPolicies = uniqueObjects(s.BaselineAdminNetworkPolicies, "BaselineAdminNetworkPolicy", false, func(p *BaselineAdminNetworkPolicy) *Origin { return p.Origin }, dup)
	for _, p := range s.AuthorizationPolicies {
		if p.Namespace == "" {
			p.Namespace = metav1.NamespaceDefault
		}
	}
	s.AuthorizationPolicies = uniqueObjects(s.AuthorizationPolicies, "AuthorizationPolicy", true, func(p *AuthorizationPolicy) *Origin { return p.Origin }, dup)
	s.EncryptionConfigs = uniqueObjects(s.EncryptionConfigs, "EncryptionConfig", false, func(e *EncryptionConfig) *Origin { return e.Origin }, dup)
	s.IPsecPeers = uniqueObjects(s.IPsecPeers, "IPsecPeer", false, func(p *IPsecPeer) *Origin { return p.Origin }, dup)
	aps := s.AuthorizationPolicies

	declared := map[string]bool{}
	for _, n := range nss {
		declared[n.Name] = true
	}
	refer := func(ns string) {
		if !declared[ns] {
			declared[ns] = true
			n := &Namespace{}
			n.Name = ns
			n.Labels = map[string]string{corev1.LabelMetadataName: ns}
			nss = append(nss, n)
		}
	}
	for _, p := range pods {
		refer(p.Namespace)
	}
	for _, sv := range svcs {
		refer(sv.Namespace)
	}
	for _, np := range nps {
		refer(np.Namespace)
	}
	for _, ap := range aps {
		refer(ap.Namespace)
	}
	sort.Slice(nss, func(i, j int) bool { return nss[i].Name < nss[j].Name })
	sort.Slice(pods, func(i, j int) bool {
		return pods[i].Namespace+"/"+pods[i].Name < pods[j].Namespace+"/"+pods[j].Name
	})
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	sort.Slice(svcs, func(i, j int) bool {
		return svcs[i].Namespace+"/"+svcs[i].Name < svcs[j].Namespace+"/"+svcs[j].Name
	})
	sort.Slice(nps, func(i, j int) bool {
		return nps[i].Namespace+"/"+nps[i].Name < nps[j].Namespace+"/"+nps[j].Name
	})
	s.Namespaces, s.Pods, s.Nodes, s.Services, s.NetworkPolicies = nss, pods, nodes, svcs, nps
}
