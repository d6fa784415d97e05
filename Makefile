# Rampart's build. `make test` is the one test command; it installs what it
# needs through `make deps`, which is idempotent.

GO       ?= go
BIN      := $(CURDIR)/bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
RAMPART  := $(BIN)/rampart
CNI      := $(BIN)/rampart-cni
ORACLE   := $(BIN)/npguard-oracle

.PHONY: all build deps test unit e2e-tunnel interop e2e-lab differential fuzz demo bench-analyze bench-tunnel bench-ike bench-agent clean

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
# the committed go.sum pins it.
deps: $(ORACLE)
	$(GO) mod download
	bash scripts/deps.sh

$(ORACLE): tools/npguard-oracle/main.go tools/npguard-oracle/go.mod
	cd tools/npguard-oracle && GONOSUMDB=github.com/np-guard/models $(GO) build -o $(ORACLE) .

# test: unit tests and the privileged end-to-end suites (as root; without
# root they skip, unless RAMPART_REQUIRE_PRIVILEGED=1 as in CI).
test: deps unit e2e-tunnel interop e2e-lab

# unit includes the differential test against np-guard (RAMPART_NPGUARD).
unit: $(ORACLE)
	RAMPART_NPGUARD=$(ORACLE) $(GO) test -count=1 ./...

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
# agent under a TCP transfer, malformed policies refused.
e2e-lab: build
	RAMPART_BIN=$(RAMPART) $(GO) test -count=1 -tags e2e -run 'TestPrivileged' -v ./internal/agent/ ./internal/lab/

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

bench-analyze: deps $(ORACLE)
	RAMPART_NPGUARD=$(ORACLE) bash bench/analyze.sh

clean:
	rm -rf $(BIN)

FORCE:
