package lab

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/rampartnet/rampart/internal/agent"
	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/kubetest"
	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/internal/policy"
)

// With --apiserver the lab runs a real etcd and kube-apiserver (built by
// `make kube-bins`, run by internal/kubetest) in its underlay namespace, on
// the bridge address every node reaches (198.18.0.1; a node's 127.0.0.1 is
// its own). The lab writes its cluster there (namespaces, one Pod per
// endpoint with its node and lab address in the status, the policies), the
// agents read it through client-go instead of manifest files, and the
// expected side of `lab probe` is read from it too: a NetworkPolicy created
// with any client changes both what the agents enforce and what the probe
// expects.

// APIServerState is the lab's API server.
type APIServerState struct {
	URL string `json:"url"`
	// Kubeconfig authenticates as the admin: the lab's own writes. The
	// agents and the controller have their ServiceAccounts' tokens
	// (identities.go).
	Kubeconfig string `json:"kubeconfig"`
	Etcd       Proc   `json:"etcd"`
	Server     Proc   `json:"server"`
	// Controller is `rampart controller`, which signs the nodes'
	// certificates (identities.go).
	Controller Proc `json:"controller"`
}

// generationAnnotation, on namespace default, is bumped after each change
// the lab writes: its resourceVersion is then newer than every write of the
// change (a deletion has none of its own), and the agents' informers see it.
const generationAnnotation = "lab.rampart.dev/generation"

// startAPIServer runs etcd and kube-apiserver in the underlay namespace and
// records them in the state.
func (l *Lab) startAPIServer(ctx context.Context, binDir string) error {
	st := l.st
	ul, err := netns.Open(st.Underlay)
	if err != nil {
		return err
	}
	defer ul.Close()
	c, _, err := kubetest.Run(ctx, kubetest.Options{BinDir: binDir, Dir: filepath.Join(st.Dir, "kube"), NetNS: ul,
		Address: UnderlayGW, Log: l.log})
	if err != nil {
		return fmt.Errorf("lab: API server: %w", err)
	}
	// The stop function is not kept: `lab down` stops both by PID.
	procs := make([]Proc, len(c.PIDs))
	for i, pid := range c.PIDs {
		start, _ := procStart(pid)
		procs[i] = Proc{PID: pid, Start: start}
	}
	st.APIServer = &APIServerState{URL: c.URL, Kubeconfig: c.Kubeconfig, Etcd: procs[0], Server: procs[1]}
	procs[0].Log, procs[1].Log = c.EtcdLog, c.APIServerLog
	st.APIServer.Etcd.Log, st.APIServer.Server.Log = c.EtcdLog, c.APIServerLog
	fmt.Fprintf(l.log, "API server %s (kubeconfig %s)\n", c.URL, c.Kubeconfig)
	return st.save()
}

// KubeClient is a client of the lab's API server that dials from inside
// the underlay namespace; close releases the namespace's handle.
func (l *Lab) KubeClient() (_ kubernetes.Interface, close func(), err error) {
	if l.st.APIServer == nil {
		return nil, nil, fmt.Errorf("lab: %s was not made with --apiserver", l.st.Name)
	}
	ul, err := netns.Open(l.st.Underlay)
	if err != nil {
		return nil, nil, err
	}
	rc, _, err := cluster.KubeConfig{Path: l.st.APIServer.Kubeconfig}.RESTConfig()
	if err != nil {
		ul.Close()
		return nil, nil, err
	}
	rc.Dial = kubetest.DialIn(ul)
	rc.QPS, rc.Burst = 500, 500
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		ul.Close()
		return nil, nil, err
	}
	return client, func() { ul.Close() }, nil
}

// createNodes registers the lab's nodes with the API server, as kubelets
// would, with the pod CIDR a node controller would give them: the agents
// learn the other nodes there (spec.nodesFrom: apiserver).
func (l *Lab) createNodes(ctx context.Context) error {
	client, closeNS, err := l.KubeClient()
	if err != nil {
		return err
	}
	defer closeNS()
	for _, n := range l.st.Nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name},
			Spec: corev1.NodeSpec{PodCIDR: n.PodCIDR.String(), PodCIDRs: []string{n.PodCIDR.String()}}}
		made, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("lab: node %s: %w", n.Name, err)
		}
		made.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.Address.String()}}
		if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, made, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("lab: status of node %s: %w", n.Name, err)
		}
	}
	return nil
}

// syncAPI makes the API server hold the lab's manifests: its cluster
// (created once) and the policy set in force (created, updated and deleted
// to match). It returns the resourceVersion that the agents must reach.
func (l *Lab) syncAPI(ctx context.Context, withCluster bool) (string, error) {
	client, closeNS, err := l.KubeClient()
	if err != nil {
		return "", err
	}
	defer closeNS()
	s, err := cluster.Load(l.st.clusterFile(), l.st.policiesFile())
	if err != nil {
		return "", err
	}
	if withCluster {
		for _, n := range s.Namespaces {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels}}
			if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return "", fmt.Errorf("lab: namespace %s: %w", n.Name, err)
			}
		}
		for _, p := range s.Pods {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels, Annotations: p.Annotations},
				Spec: p.Spec}
			for i := range pod.Spec.Containers {
				if pod.Spec.Containers[i].Image == "" {
					pod.Spec.Containers[i].Image = "lab.invalid/none" // never pulled: there is no kubelet
				}
			}
			made, err := client.CoreV1().Pods(p.Namespace).Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				return "", fmt.Errorf("lab: pod %s/%s: %w", p.Namespace, p.Name, err)
			}
			// No kubelet: the lab reports what it wired.
			made.Status = p.Status
			made.Status.Phase = corev1.PodRunning
			if _, err := client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, made, metav1.UpdateOptions{}); err != nil {
				return "", fmt.Errorf("lab: status of pod %s/%s: %w", p.Namespace, p.Name, err)
			}
		}
	}
	want := map[string]*networkingv1.NetworkPolicy{}
	for _, np := range s.NetworkPolicies {
		want[np.Namespace+"/"+np.Name] = np.NetworkPolicy.DeepCopy()
	}
	have, err := client.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("lab: list policies: %w", err)
	}
	for _, np := range have.Items {
		key := np.Namespace + "/" + np.Name
		w, ok := want[key]
		if !ok {
			if err := client.NetworkingV1().NetworkPolicies(np.Namespace).Delete(ctx, np.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return "", fmt.Errorf("lab: delete policy %s: %w", key, err)
			}
			continue
		}
		w.ResourceVersion = np.ResourceVersion
		if _, err := client.NetworkingV1().NetworkPolicies(np.Namespace).Update(ctx, w, metav1.UpdateOptions{}); err != nil {
			return "", fmt.Errorf("lab: update policy %s: %w", key, err)
		}
		delete(want, key)
	}
	for key, w := range want {
		w.ResourceVersion = ""
		if _, err := client.NetworkingV1().NetworkPolicies(w.Namespace).Create(ctx, w, metav1.CreateOptions{}); err != nil {
			return "", fmt.Errorf("lab: create policy %s: %w", key, err)
		}
	}
	return bumpGeneration(ctx, client, l.st.Generation)
}

// bumpGeneration writes the generation on namespace default and returns
// the resourceVersion of that write.
func bumpGeneration(ctx context.Context, client kubernetes.Interface, gen int) (string, error) {
	ns, err := client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("lab: namespace default: %w", err)
	}
	if ns.Annotations == nil {
		ns.Annotations = map[string]string{}
	}
	ns.Annotations[generationAnnotation] = strconv.Itoa(gen) + "." + strconv.FormatInt(time.Now().UnixNano(), 10)
	ns, err = client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{})
	if err != nil {
		return "", fmt.Errorf("lab: namespace default: %w", err)
	}
	return ns.ResourceVersion, nil
}

// waitVersion waits until every agent reports a view of the API server at
// least as new as version, and returns the errors of those that refused
// it.
func (l *Lab) waitVersion(ctx context.Context, nodes []NodeState, version string) ([]error, error) {
	want, err := strconv.ParseUint(version, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("lab: resourceVersion %q: %w", version, err)
	}
	return l.waitAgents(ctx, nodes, "resourceVersion "+version, func(s agent.PolicyStatus) bool {
		got, err := strconv.ParseUint(s.SourceVersion, 10, 64)
		return err == nil && got >= want
	})
}

// apiModel is the cluster as the API server holds it now.
func (l *Lab) apiModel(ctx context.Context) (*policy.Model, error) {
	client, closeNS, err := l.KubeClient()
	if err != nil {
		return nil, err
	}
	defer closeNS()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	k := cluster.NewKube(client, cluster.KubeOptions{Name: l.st.Name})
	if err := k.Start(ctx); err != nil {
		return nil, fmt.Errorf("lab: reading the API server: %w", err)
	}
	m, diags, err := policy.FromSnapshot(k.Snapshot(), false)
	if err != nil {
		return nil, fmt.Errorf("lab: the API server's objects: %w", &InvalidError{Diagnostics: diags})
	}
	return m, nil
}
