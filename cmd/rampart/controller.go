package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/rampartnet/rampart/internal/certs"
	"github.com/rampartnet/rampart/internal/cluster"
)

// podNamespaceFile is where a pod's service-account volume holds its
// namespace: the default namespace of the Lease in a cluster.
const podNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

func newControllerCmd() *cobra.Command {
	var (
		kubeconfig, kubeContext     string
		caSecret, agentSA, selector string
		maxLifetime                 time.Duration
		leaderElect                 bool
		leaseNamespace, leaseName   string
		verbose                     bool
	)
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Approve and sign the nodes' IKE certificate requests (signer rampart.dev/ipsec)",
		Long: `controller is the cluster side of the node certificates: it watches the
CertificateSigningRequests of the signer rampart.dev/ipsec, approves one
only when it comes from an agent pod (the agents' service account, with the
pod's own token, bound to a pod on a node) and names exactly that node,
denies the others with the reason, and signs the approved ones with the CA
of a kubernetes.io/tls Secret. It publishes the CA in the ClusterTrustBundle
rampart.dev:ipsec:ca. Run it as a Deployment: with --leader-elect (the
default) only the holder of a Lease signs. docs/security.md lists the RBAC
it needs.

It runs until SIGINT or SIGTERM, then stops signing and releases the Lease.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			caNS, caName, err1 := splitNamespaced("--ca-secret", caSecret)
			saNS, saName, err2 := splitNamespaced("--agent-service-account", agentSA)
			sel, err3 := labels.Parse(selector)
			if err3 != nil {
				err3 = fmt.Errorf("--agent-pod-selector %q: %w", selector, err3)
			}
			if err := errors.Join(err1, err2, err3); err != nil {
				return err
			}
			if leaseNamespace == "" {
				leaseNamespace = caNS
				if b, err := os.ReadFile(podNamespaceFile); err == nil && strings.TrimSpace(string(b)) != "" {
					leaseNamespace = strings.TrimSpace(string(b))
				}
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))

			// In a pod with no --kubeconfig: the pod's service account;
			// elsewhere kubectl's rules ($KUBECONFIG, ~/.kube/config).
			kc := cluster.KubeConfig{Path: kubeconfig, Context: kubeContext,
				InCluster: kubeconfig == "" && kubeContext == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != ""}
			rc, where, err := kc.RESTConfig()
			if err != nil {
				return err
			}
			rc.UserAgent = "rampart-controller/" + version
			client, err := kubernetes.NewForConfig(rc)
			if err != nil {
				return fmt.Errorf("client for %s: %w", rc.Host, err)
			}
			host, _ := os.Hostname()
			cfg := certs.ControllerConfig{
				CASecretNamespace: caNS, CASecretName: caName,
				Policy: certs.Policy{AgentNamespace: saNS, AgentServiceAccount: saName,
					AgentPods: sel, MaxLifetime: maxLifetime},
				LeaderElect: leaderElect, LeaseNamespace: leaseNamespace, LeaseName: leaseName,
				Identity: host + "_" + strconv.Itoa(os.Getpid()),
				Logger:   log,
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log.Info("rampart controller starting", "version", version, "apiserver", rc.Host, "via", where,
				"caSecret", caSecret, "agentServiceAccount", agentSA, "agentPodSelector", sel.String(), "leaderElect", leaderElect)
			return certs.RunController(ctx, client, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in a pod its service account, else $KUBECONFIG, then ~/.kube/config)")
	f.StringVar(&kubeContext, "context", "", "the kubeconfig context to use (default: the current one)")
	f.StringVar(&caSecret, "ca-secret", "rampart-system/rampart-ipsec-ca", "NAMESPACE/NAME of the kubernetes.io/tls Secret holding the CA (tls.crt, tls.key, optional ca.crt)")
	f.StringVar(&agentSA, "agent-service-account", "rampart-system/rampart-agent", "NAMESPACE/NAME of the ServiceAccount the agents run as: only it may get node certificates")
	f.StringVar(&selector, "agent-pod-selector", "app.kubernetes.io/name=rampart-agent", "label selector of the agent pods (in the service account's namespace)")
	f.DurationVar(&maxLifetime, "max-lifetime", certs.DefaultMaxLifetime, "longest certificate lifetime issued, and the lifetime when a request asks for none")
	f.BoolVar(&leaderElect, "leader-elect", true, "sign only while holding the Lease (run several replicas safely)")
	f.StringVar(&leaseNamespace, "leader-elect-namespace", "", "namespace of the Lease (default: the pod's namespace, else the CA secret's)")
	f.StringVar(&leaseName, "leader-elect-name", certs.DefaultLeaseName, "name of the Lease")
	f.BoolVarP(&verbose, "verbose", "v", false, "log debug messages")
	return cmd
}

// splitNamespaced reads NAMESPACE/NAME.
func splitNamespaced(flag, s string) (string, string, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%s %q: want NAMESPACE/NAME", flag, s)
	}
	return ns, name, nil
}
