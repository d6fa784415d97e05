# Rampart's build. `make test` is the one test command; it installs what it
# needs through `make deps`, which is idempotent.

GO       ?= go
BIN      := $(CURDIR)/bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
RAMPART  := $(BIN)/rampart
CNI      := $(BIN)/rampart-cni
ORACLE   := $(BIN)/npguard-oracle
# kube-apiserver and etcd for the real-API-server tests (make kube-bins).
RAMPART_KUBE_BIN ?= $(BIN)/kube

.PHONY: all build deps kube-bins generate test unit e2e-tunnel interop e2e-lab e2e-kube differential fuzz demo bench-analyze bench-tunnel bench-ike bench-agent bench-l7 clean

all: build

build: $(RAMPART) $(CNI)

$(RAMPART): FORCE
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/rampart

$(CNI): FORCE
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/rampart-cni

# deps fetches the Go modules and builds the test-only tools: np-guard's
# netpol-analyzer (an independent NetworkPolicy implementation) lives in a
# module of its own because it pins older Kubernetes libraries. Its
# dependency github.com/np-guard/models is not in the checksum database;
# the committed go.sum pins it. kube-bins builds kube-apiserver and etcd.
deps: $(ORACLE) kube-bins $(BIN)/controller-gen
	$(GO) mod download
	bash scripts/deps.sh

$(ORACLE): tools/npguard-oracle/main.go tools/npguard-oracle/go.mod
	cd tools/npguard-oracle && GONOSUMDB=github.com/np-guard/models $(GO) build -o $(ORACLE) .

# kube-bins builds the kube-apiserver and etcd that e2e-kube runs, from the
# module test/kube (k8s.io/kubernetes v1.37.2, etcd v3.7.0), into
# $(RAMPART_KUBE_BIN). Idempotent: about 10 minutes on 2 cores with an
# empty Go build cache, nothing when the binaries are there with the right
# versions.
kube-bins:
	RAMPART_KUBE_BIN=$(RAMPART_KUBE_BIN) GO=$(GO) bash scripts/kube-bins.sh

# generate rewrites what controller-gen derives from the types in
# api/v1alpha1: zz_generated.deepcopy.go beside them and one CRD per custom
# resource in deploy/crds (old CRD files are removed first, so a renamed
# type leaves none behind). Commit the result: TestGeneratedUpToDate runs
# the same command into a temporary directory and fails when they differ.
generate: $(BIN)/controller-gen
	rm -f deploy/crds/rampart.dev_*.yaml
	$(BIN)/controller-gen object paths=./api/v1alpha1/... crd output:crd:dir=deploy/crds

# controller-gen comes from the module tools/controller-gen, whose go.mod
# pins sigs.k8s.io/controller-tools (v0.23.0), so the main go.mod stays
# free of it; rebuilt when that pin changes.
$(BIN)/controller-gen: tools/controller-gen/go.mod tools/controller-gen/go.sum
	cd tools/controller-gen && $(GO) build -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

# test: unit tests and the privileged end-to-end suites (as root; without
# root they skip, unless RAMPART_REQUIRE_PRIVILEGED=1 as in CI).
test: deps unit e2e-tunnel interop e2e-lab e2e-kube

# unit includes the differential test against np-guard (RAMPART_NPGUARD);
# the tests against a real API server (TestKube*) are e2e-kube's.
unit: $(ORACLE)
	RAMPART_NPGUARD=$(ORACLE) $(GO) test -count=1 -skip '^TestKube' ./...

# e2e-tunnel: two hosts in network namespaces joined by a veth underlay,
# `rampart tunnel run` on both; ping, TCP, UDP, transport mode, a capture
# of the underlay (only ESP, decrypted by tshark), injected replays and
# corrupted packets.
e2e-tunnel: build
	RAMPART_BIN=$(RAMPART) $(GO) test -count=1 -tags e2e -run 'TestPrivilegedTunnel' -v ./internal/datapath/

# interop: Rampart's IKEv2 against a stock strongSwan charon (Debian's
# packages, kernel-libipsec) in network namespaces: the IKE handshake alone
# (ipsec/ike), then `rampart tunnel run` keyed by IKE with ping and TCP
# through the negotiated CHILD_SA (internal/datapath).
interop: build
	$(GO) test -count=1 -run 'TestPrivilegedStrongSwan' -v ./ipsec/ike/
	RAMPART_BIN=$(RAMPART) $(GO) test -count=1 -tags e2e -run 'TestPrivilegedInterop' -v ./internal/datapath/

# e2e-lab: the node agents (tunnel keyed by their certificates, the guard:
# SIGKILL drops, never leaks, recovery, a false pod CIDR claim refused) and
# `rampart lab`: the e2e model on three nodes with every upstream case
# applied live and probed for real, the underlay capture, SIGKILL of an
# agent under a TCP transfer, malformed policies refused; and `lab up
# --apiserver`, the agents reading a real kube-apiserver on the underlay;
# and the DaemonSet's capabilities: `agent install` and `agent run` under
# setpriv with exactly the manifest's capability set (deploy/).
e2e-lab: build kube-bins
	RAMPART_BIN=$(RAMPART) RAMPART_KUBE_BIN=$(RAMPART_KUBE_BIN) $(GO) test -count=1 -tags e2e -run 'TestPrivileged' -v ./internal/agent/ ./internal/lab/ ./deploy/ ./internal/l7/

# e2e-kube: a real etcd and kube-apiserver (internal/kubetest, no root
# needed): the harness itself (list, watch, status, RBAC between
# identities); the live cluster source (the e2e model through the API
# gives the same reach and findings as its files; events in order); the
# CRDs' validation.
KUBE_PKGS := ./internal/kubetest/ ./internal/cluster/ ./api/v1alpha1/ ./internal/agent/ ./internal/certs/ ./deploy/
e2e-kube: build kube-bins
	RAMPART_KUBE_BIN=$(RAMPART_KUBE_BIN) $(GO) test -count=1 -run '^TestKube' -v $(KUBE_PKGS)

# differential runs only the comparison with np-guard on thousands of
# random policies, verbosely (it also runs in `make unit`).
differential: $(ORACLE)
	RAMPART_NPGUARD=$(ORACLE) $(GO) test -count=1 -run Differential -v ./internal/policy/

# fuzz runs each fuzz target for a while (not part of `make test`; the
# committed seed corpora run in `make unit`).
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run XXX -fuzz FuzzLoad -fuzztime $(FUZZTIME) ./internal/cluster/

# demo is the README's first command: what one compromised WordPress pod
# reaches in a cluster without policy, and in the same cluster hardened.
demo: build
	@echo '$$ rampart analyze examples/wordpress/open --compromised web/wordpress'
	@$(RAMPART) analyze examples/wordpress/open --compromised web/wordpress; test $$? -le 1
	@echo
	@echo '$$ rampart analyze examples/wordpress/hardened --compromised web/wordpress'
	@$(RAMPART) analyze examples/wordpress/hardened --compromised web/wordpress; test $$? -le 1

# bench-tunnel: iperf3 through our tunnel beside the plain underlay,
# wireguard-go and strongSwan's kernel-libipsec (not part of make test).
bench-tunnel: build
	bash bench/tunnel/deps.sh
	RAMPART=$(RAMPART) bash bench/tunnel/run.sh

# bench-ike: IKE handshakes per second and memory per IKE SA, Rampart's
# responder beside strongSwan's charon, both driven by the same initiator
# (Rampart's, with many identities) in network namespaces (not part of
# make test). bench/ike/run.sh lists its knobs (N_LIST, ROUNDS, PROFILE=1).
bench-ike:
	bash scripts/deps.sh
	$(GO) build -trimpath -o $(BIN)/ike-bench ./bench/ike
	IKE_BENCH=$(BIN)/ike-bench bash bench/ike/run.sh

# bench-agent: issue 5's figures (docs/performance.md, "Node agent and
# lab"): ruleset sync, policy change and pod churn at 5,000 pods and 1,000
# policies on one node (bench/nft), throughput with the ruleset in force
# against none, and pod-to-pod TCP across two lab nodes in ESP beside one
# node and the plain underlay (not part of make test). bench/agent/run.sh
# lists its knobs (DURATION, N, NFT_ARGS, SKIP_NFT, SKIP_LAB, WAIT_PGREP).
bench-agent: build
	bash scripts/deps.sh
	bash bench/tunnel/deps.sh
	bash bench/agent/run.sh

# bench-l7: what the L7 authorization proxy (internal/l7) costs: wrk in a
# pod against a server pod, on a port the node only forwards and on one
# steered through the proxy, requests/s and latency side by side with
# their ratios (not part of make test). Needs root; installs Debian's wrk
# when it is missing. L7_BENCH_ARGS passes flags (-duration, -connections,
# -threads).
bench-l7:
	command -v wrk >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk; }
	$(GO) build -trimpath -o $(BIN)/l7-bench ./bench/l7
	$(BIN)/l7-bench $(L7_BENCH_ARGS)

bench-analyze: deps $(ORACLE)
	RAMPART_NPGUARD=$(ORACLE) bash bench/analyze.sh

clean:
	rm -rf $(BIN)

FORCE:
