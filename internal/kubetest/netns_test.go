package kubetest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/kubetest"
	"github.com/rampartnet/rampart/internal/netns"
)

// TestKubeInNetNS serves the API server inside a network namespace, on an
// address only that namespace has, as `rampart lab up --apiserver` does on
// its underlay: the clients kubetest gives dial from inside it, and the
// live source reads through them.
func TestKubeInNetNS(t *testing.T) {
	netns.RequirePrivileged(t)
	kubetest.RequireBinaries(t)
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	ns, err := netns.New("kt-" + hex.EncodeToString(b[:]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			t.Error(err)
		}
	})
	addr := netip.MustParseAddr("198.18.250.1")
	if err := ns.AddLoopbackAddr(netip.PrefixFrom(addr, 32)); err != nil {
		t.Fatal(err)
	}
	c := kubetest.Start(t, kubetest.Options{NetNS: ns, Address: addr})
	if !strings.HasPrefix(c.URL, "https://198.18.250.1:") || c.Dial == nil || len(c.PIDs) != 2 {
		t.Fatalf("cluster %s, dial %v, pids %v", c.URL, c.Dial != nil, c.PIDs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "inside"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	k := cluster.NewKube(client, cluster.KubeOptions{Name: "netns"})
	if err := k.Start(ctx); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range k.Snapshot().Namespaces {
		found = found || n.Name == "inside"
	}
	if !found {
		t.Error("the live source through the namespace does not see namespace inside")
	}
}
