# syntax=docker/dockerfile:1
#
# The one image of Rampart's deployment (deploy/, docs/deploy.md):
# /usr/local/bin/rampart (the agent, the controller, the CLI) and
# /usr/local/bin/rampart-cni (the CNI plugin, which the agent's init
# container copies into the host's /opt/cni/bin). Both are static Go
# binaries (no cgo: netlink and nftables are spoken from Go, so the image
# needs neither the nft tool nor a libc).
#
#   docker build --build-arg VERSION=v0.1.0 -t ghcr.io/rampartnet/rampart:v0.1.0 .
#
# Not built by the test suite: its machines have no image registry access.

FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# Only the packages the two commands are built from (not bin/, which holds
# the tests' kube-apiserver and etcd, nor examples or docs).
COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/
COPY ipsec/ ipsec/
ENV CGO_ENABLED=0
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/rampart ./cmd/rampart \
 && GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/rampart-cni ./cmd/rampart-cni

# distroless/static: CA certificates, /etc/passwd with root and nonroot
# (65532), no shell or package manager. The image's user is root, which the
# agent needs (with NET_ADMIN and NET_BIND_SERVICE only; see
# deploy/agent/daemonset.yaml); the controller's Deployment runs it as
# 65532.
FROM gcr.io/distroless/static-debian12
COPY --from=build /out/rampart /out/rampart-cni /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/rampart"]
