// Package kubetest runs a real kube-apiserver backed by a real etcd, for
// tests that must hold Rampart to the API server itself (admission,
// validation, RBAC, watches, the status subresource) rather than to a fake
// clientset.
//
//	etcd            127.0.0.1:<free client port>, peer port free too,
//	                --unsafe-no-fsync, data under Dir/etcd
//	kube-apiserver  <Address>:<free secure port>, TLS from a CA made here,
//	                token authentication (an admin in system:masters plus
//	                Options.Users), --authorization-mode=Node,RBAC
//
// There is no controller-manager, scheduler or kubelet: Pods stay Pending
// unless a test sets their status through the status subresource,
// namespaces never finish terminating, nothing is garbage collected, and no
// ServiceAccount or token is made for a namespace (the ServiceAccount
// admission plugin is off so Pods need none).
//
// The binaries are built by scripts/kube-bins.sh (`make kube-bins`) from
// the module test/kube into $RAMPART_KUBE_BIN, by default <repo>/bin/kube.
// Start skips its test when they are missing, unless
// RAMPART_REQUIRE_PRIVILEGED=1 (as in CI) turns the skip into a failure.
//
// Run is the same without package testing, for `rampart lab`: it returns a
// stop function that the caller must call. Both processes are stopped by
// PID (SIGTERM, then SIGKILL), never by name.
package kubetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/rampartnet/rampart/internal/netns"
	"k8s.io/client-go/rest"
)

// Versions of the binaries that scripts/kube-bins.sh builds (test/kube's
// go.mod pins them).
const (
	KubeVersion = "v1.37.2"
	EtcdVersion = "3.7.0"
)

// BinDirEnv names the environment variable that points at the directory
// holding kube-apiserver and etcd.
const BinDirEnv = "RAMPART_KUBE_BIN"

// requirePrivilegedEnv is netns.RequirePrivilegedEnv: CI sets it to "1" so
// that missing binaries fail the suite instead of skipping it. It is
// repeated here so that this package, which needs no root, does not pull in
// the namespace code.
const requirePrivilegedEnv = "RAMPART_REQUIRE_PRIVILEGED"

// AdminUser is the name of the user every Cluster has: it is in
// system:masters, which bypasses authorization.
const AdminUser = "rampart-admin"

// User is an identity that the API server accepts through its token file.
type User struct {
	Name   string
	UID    string   // default: "uid-" + Name
	Groups []string // besides system:authenticated, which every user gets
	Token  string   // default: random
}

// Options configure Run and Start. The zero value is a cluster on
// 127.0.0.1 with only the admin user.
type Options struct {
	// BinDir holds kube-apiserver and etcd (default: BinDir()).
	BinDir string
	// Dir receives etcd's data, the certificates, keys, token file,
	// kubeconfig and both processes' logs. Run makes (and its stop
	// removes) a temporary directory when it is empty; Start uses
	// t.TempDir().
	Dir string
	// Address is where kube-apiserver binds and what it advertises
	// (default 127.0.0.1). etcd always stays on 127.0.0.1.
	Address netip.Addr
	// ServiceCIDR is --service-cluster-ip-range (default 198.18.128.0/24:
	// benchmarking space, RFC 2544, never routed; no Service address is
	// ever reached since there is no kube-proxy).
	ServiceCIDR netip.Prefix
	// Users are added to the token file beside AdminUser.
	Users []User
	// ExtraArgs are appended to kube-apiserver's command line (a later
	// flag wins).
	ExtraArgs []string
	// ReadyTimeout bounds the wait for etcd and for /readyz (default 60 s:
	// about 3 s is usual, a loaded 2-core CI machine is slower).
	ReadyTimeout time.Duration
	// StopTimeout is how long stop waits after SIGTERM before SIGKILL
	// (default 10 s).
	StopTimeout time.Duration
	// KillWithParent makes the kernel SIGKILL both processes when the
	// process that started them dies (Pdeathsig), so a test binary that
	// panics on -timeout leaves no API server behind. Start sets it; a
	// command that exits while the cluster runs on (rampart lab up) must
	// not.
	KillWithParent bool
	// Log receives progress lines (nil: none).
	Log io.Writer
	// NetNS, if set, runs etcd and kube-apiserver inside that network
	// namespace (through `ip netns exec`), where Address must be one of
	// its addresses: a lab serves its API server on its underlay, which
	// the node namespaces reach and whose 127.0.0.1 is not theirs. The
	// Cluster's clients dial from inside it (Cluster.Dial).
	NetNS *netns.NS
}

func (o *Options) defaults() error {
	if o.BinDir == "" {
		d, err := BinDir()
		if err != nil {
			return err
		}
		o.BinDir = d
	}
	if !o.Address.IsValid() {
		o.Address = netip.MustParseAddr("127.0.0.1")
	}
	if !o.ServiceCIDR.IsValid() {
		o.ServiceCIDR = netip.MustParsePrefix("198.18.128.0/24")
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	seen := map[string]bool{AdminUser: true}
	for i := range o.Users {
		u := &o.Users[i]
		if u.Name == "" {
			return fmt.Errorf("kubetest: Options.Users[%d]: empty name", i)
		}
		if seen[u.Name] {
			return fmt.Errorf("kubetest: Options.Users[%d]: user %q named twice (or AdminUser)", i, u.Name)
		}
		seen[u.Name] = true
		if u.UID == "" {
			u.UID = "uid-" + u.Name
		}
		if u.Token == "" {
			u.Token = randomToken()
		}
		for _, s := range append([]string{u.Name, u.UID, u.Token}, u.Groups...) {
			// The token file is CSV with the groups in one quoted field:
			// these characters cannot be written into it unambiguously.
			if strings.ContainsAny(s, ",\"\n\r") {
				return fmt.Errorf("kubetest: Options.Users[%d] (%q): %q holds a comma, quote or newline, which the token file cannot carry", i, u.Name, s)
			}
		}
	}
	return nil
}

// logf writes one progress line to o.Log. Under Start it goes straight to
// t.Logf, so the line is attributed to this file rather than to fmt.
func (o *Options) logf(format string, args ...any) {
	if w, ok := o.Log.(logWriter); ok {
		w.t.Helper()
		w.t.Logf(format, args...)
		return
	}
	fmt.Fprintf(o.Log, format+"\n", args...)
}

// Binaries are the paths of the two programs a Cluster runs.
type Binaries struct {
	APIServer, Etcd string
}

// FindBinaries returns the binaries in dir, or an error saying which is
// missing and how to build it.
func FindBinaries(dir string) (Binaries, error) {
	b := Binaries{APIServer: filepath.Join(dir, "kube-apiserver"), Etcd: filepath.Join(dir, "etcd")}
	var missing []string
	for _, p := range []string{b.APIServer, b.Etcd} {
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return b, fmt.Errorf("kubetest: %s not found or not executable: build them with `make kube-bins` (about 10 minutes on 2 cores with an empty Go build cache) or point %s at a directory holding kube-apiserver %s and etcd %s",
			strings.Join(missing, " and "), BinDirEnv, KubeVersion, EtcdVersion)
	}
	return b, nil
}

// BinDir is where the binaries are looked for: $RAMPART_KUBE_BIN; else
// bin/kube in the Rampart checkout that holds the working directory (go
// test runs in the package's directory); else kube/ beside the running
// executable (`make build` puts rampart in bin/, `make kube-bins` the
// binaries in bin/kube).
func BinDir() (string, error) {
	if d := os.Getenv(BinDirEnv); d != "" {
		return d, nil
	}
	if wd, err := os.Getwd(); err == nil {
		if root, ok := repoRoot(wd); ok {
			return filepath.Join(root, "bin", "kube"), nil
		}
	}
	if exe, err := os.Executable(); err == nil {
		return filepath.Join(filepath.Dir(exe), "kube"), nil
	}
	return "", fmt.Errorf("kubetest: no %s, no Rampart checkout above the working directory and no executable path: set %s", BinDirEnv, BinDirEnv)
}

// repoRoot walks up from dir to the directory whose go.mod declares the
// module github.com/rampartnet/rampart (not test/kube's nested module).
func repoRoot(dir string) (string, bool) {
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && f[1] == "github.com/rampartnet/rampart" {
					return dir, true
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// Cluster is a running etcd and kube-apiserver.
type Cluster struct {
	// URL is the API server's address, https://<Address>:<port>.
	URL string
	// EtcdURL is etcd's client URL (http, loopback only).
	EtcdURL string
	// Config authenticates as AdminUser; Client is a clientset on it.
	Config *rest.Config
	Client kubernetes.Interface
	// Kubeconfig is a kubeconfig file with a context per user, the admin's
	// current (kubectl --kubeconfig ... --context <user>).
	Kubeconfig string
	// Dial is how this process's clients reach the API server: from
	// inside Options.NetNS when set (DialIn), else nil (directly).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// PIDs are etcd's and kube-apiserver's, for a caller that outlives
	// the stop function (rampart lab down stops them by PID).
	PIDs []int
	// Dir is Options.Dir. CAFile and CAKeyFile are the CA that signed the
	// serving certificate and that kube-apiserver trusts for client
	// certificates (--client-ca-file): a test can issue a client
	// certificate that authenticates as CN=user, O=group.
	Dir, CAFile, CAKeyFile string
	// APIServerLog and EtcdLog are the processes' output files.
	APIServerLog, EtcdLog string
	// Ready is how long the start took, until /readyz answered ok.
	Ready time.Duration

	caPEM  []byte
	tokens map[string]string // user name → token
}

// Token returns the bearer token of a user given in Options.Users (or
// AdminUser).
func (c *Cluster) Token(user string) (string, error) {
	tok, ok := c.tokens[user]
	if !ok {
		return "", fmt.Errorf("kubetest: no user %q: list it in Options.Users", user)
	}
	return tok, nil
}

// ConfigForToken returns a client configuration that presents token.
func (c *Cluster) ConfigForToken(token string) *rest.Config {
	return &rest.Config{
		Host:            c.URL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.caPEM},
		// The API server here serves one test: client-go's default
		// throttle (5 QPS) only slows the tests down.
		QPS:   1000,
		Burst: 1000,
		Dial:  c.Dial,
	}
}

// DialIn returns a dial function whose connections start inside ns (nil:
// this process's namespace), for clients of an API server that only ns
// reaches. A socket belongs to the namespace it was made in, whatever
// thread uses it later.
func DialIn(ns *netns.NS) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if ns == nil {
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := ns.Do(func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// ConfigAs returns a client configuration authenticated as user.
func (c *Cluster) ConfigAs(user string) (*rest.Config, error) {
	tok, err := c.Token(user)
	if err != nil {
		return nil, err
	}
	return c.ConfigForToken(tok), nil
}

// ClientAs returns a clientset authenticated as user.
func (c *Cluster) ClientAs(user string) (kubernetes.Interface, error) {
	cfg, err := c.ConfigAs(user)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// Run starts etcd and kube-apiserver and waits until the API server is
// ready. The returned stop function stops both (kube-apiserver first),
// removes Dir if Run made it, and reports what went wrong; it may be called
// more than once, also concurrently. ctx bounds the start only: the
// processes run on until stop. On error nothing is left running.
func Run(ctx context.Context, opts Options) (c *Cluster, stop func() error, err error) {
	begin := time.Now()
	if err := opts.defaults(); err != nil {
		return nil, nil, err
	}
	bins, err := FindBinaries(opts.BinDir)
	if err != nil {
		return nil, nil, err
	}
	madeDir := false
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "rampart-kube-")
		if err != nil {
			return nil, nil, fmt.Errorf("kubetest: %w", err)
		}
		opts.Dir, madeDir = d, true
	}

	var procs []*proc // in start order; stopped in reverse
	var launcher *launcher
	stopAll := sync.OnceValue(func() error {
		var errs []error
		for i := len(procs) - 1; i >= 0; i-- {
			errs = append(errs, procs[i].stop(opts.StopTimeout))
		}
		if launcher != nil {
			launcher.close()
		}
		if madeDir {
			errs = append(errs, os.RemoveAll(opts.Dir))
		}
		return errors.Join(errs...)
	})
	defer func() {
		if err != nil {
			stopAll() // the error already says what failed
		}
	}()
	if opts.KillWithParent {
		launcher = newLauncher()
	}

	// Everything below that touches the network does it from inside
	// opts.NetNS, when set: finding free ports, the processes, the probes.
	inNS := func(f func() error) error {
		if opts.NetNS == nil {
			return f()
		}
		return opts.NetNS.Do(f)
	}
	start := func(path, log string, args ...string) (*proc, error) {
		if opts.NetNS != nil {
			args = append([]string{"netns", "exec", opts.NetNS.Name, path}, args...)
			path = "ip"
		}
		return startProc(launcher, path, log, opts.KillWithParent, args...)
	}
	dial := DialIn(opts.NetNS)
	transport := func(t *http.Transport) *http.Transport {
		if dial != nil {
			t.DialContext = dial
		}
		return t
	}

	c = &Cluster{
		Dial:         dial,
		Dir:          opts.Dir,
		APIServerLog: filepath.Join(opts.Dir, "kube-apiserver.log"),
		EtcdLog:      filepath.Join(opts.Dir, "etcd.log"),
		tokens:       map[string]string{AdminUser: randomToken()},
	}
	for _, u := range opts.Users {
		c.tokens[u.Name] = u.Token
	}
	f, err := writeFiles(opts, c)
	if err != nil {
		return nil, nil, err
	}

	// etcd.
	loopback := netip.MustParseAddr("127.0.0.1")
	var ports []uint16
	if err := inNS(func() (err error) { ports, err = freePorts(loopback, 2); return err }); err != nil {
		return nil, nil, err
	}
	clientURL := "http://" + netip.AddrPortFrom(loopback, ports[0]).String()
	peerURL := "http://" + netip.AddrPortFrom(loopback, ports[1]).String()
	c.EtcdURL = clientURL
	etcd, err := start(bins.Etcd, c.EtcdLog,
		"--name=kubetest",
		"--data-dir="+filepath.Join(opts.Dir, "etcd"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL,
		"--initial-cluster-state=new",
		// The data lives for one test: fsync only makes every write
		// wait for the disk.
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return nil, nil, err
	}
	procs = append(procs, etcd)
	opts.logf("kubetest: etcd pid %d on %s", etcd.pid(), clientURL)
	readyCtx, cancel := context.WithTimeout(ctx, opts.ReadyTimeout)
	defer cancel()
	if err := waitHTTP(readyCtx, etcd, &http.Client{Transport: transport(&http.Transport{}), Timeout: 5 * time.Second}, clientURL+"/health", ""); err != nil {
		return nil, nil, fmt.Errorf("kubetest: etcd at %s not healthy: %w\n%s", clientURL, err, tailFile(c.EtcdLog, 30))
	}

	// kube-apiserver.
	if err := inNS(func() (err error) { ports, err = freePorts(opts.Address, 1); return err }); err != nil {
		return nil, nil, err
	}
	c.URL = "https://" + netip.AddrPortFrom(opts.Address, ports[0]).String()
	args := []string{
		"--etcd-servers=" + clientURL,
		"--bind-address=" + opts.Address.String(),
		"--advertise-address=" + opts.Address.String(),
		"--secure-port=" + strconv.Itoa(int(ports[0])),
		"--tls-cert-file=" + f.serverCert,
		"--tls-private-key-file=" + f.serverKey,
		"--client-ca-file=" + c.CAFile,
		"--token-auth-file=" + f.tokens,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + f.saKey,
		"--service-account-signing-key-file=" + f.saKey,
		"--service-cluster-ip-range=" + opts.ServiceCIDR.String(),
		// Node lets kubelet-like identities (system:node:<name> in
		// system:nodes) be authorized as the node authorizer would in a
		// real cluster; it is inert for every other user.
		"--authorization-mode=Node,RBAC",
		// There is no controller-manager to create the namespaces'
		// default ServiceAccounts this plugin would require.
		"--disable-admission-plugins=ServiceAccount",
		// The default reconciler writes the API server's address into
		// the kubernetes Service's endpoints: nothing here reads them.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
	}
	args = append(args, opts.ExtraArgs...)
	apiserver, err := start(bins.APIServer, c.APIServerLog, args...)
	if err != nil {
		return nil, nil, err
	}
	procs = append(procs, apiserver)
	opts.logf("kubetest: kube-apiserver pid %d on %s", apiserver.pid(), c.URL)

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.caPEM)
	hc := &http.Client{
		Transport: transport(&http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}),
		Timeout:   5 * time.Second,
	}
	defer hc.CloseIdleConnections()
	// /readyz waits for etcd, the RBAC bootstrap roles and every other
	// post-start hook; as the admin (system:masters) the probe does not
	// depend on the very RBAC roles it waits for.
	if err := waitHTTP(readyCtx, apiserver, hc, c.URL+"/readyz", c.tokens[AdminUser]); err != nil {
		return nil, nil, fmt.Errorf("kubetest: kube-apiserver at %s not ready: %w\n%s", c.URL, err, tailFile(c.APIServerLog, 40))
	}

	c.Config = c.ConfigForToken(c.tokens[AdminUser])
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, nil, fmt.Errorf("kubetest: clientset for %s: %w", c.URL, err)
	}
	if err := writeKubeconfig(c, opts.Users); err != nil {
		return nil, nil, err
	}
	c.PIDs = []int{etcd.pid(), apiserver.pid()}
	c.Ready = time.Since(begin)
	opts.logf("kubetest: kube-apiserver ready in %v", c.Ready.Round(time.Millisecond))
	return c, stopAll, nil
}

// waitHTTP polls url until it answers 200, the process exits, or ctx ends.
func waitHTTP(ctx context.Context, p *proc, hc *http.Client, url, token string) error {
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited (%v) before it was ready; last answer: %s", filepath.Base(p.cmd.Path), p.err, last)
		case <-ctx.Done():
			return fmt.Errorf("%w; last answer: %s", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freePorts returns n distinct TCP ports free on addr now. They are found
// by listening on port 0 and closing, so another process could take one
// before ours binds it; on a test machine that race is rare enough.
func freePorts(addr netip.Addr, n int) ([]uint16, error) {
	var ports []uint16
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		if err != nil {
			return nil, fmt.Errorf("kubetest: no free TCP port on %s: %w", addr, err)
		}
		ls = append(ls, l) // held open until all are found, so they differ
		ports = append(ports, uint16(l.Addr().(*net.TCPAddr).Port))
	}
	return ports, nil
}
