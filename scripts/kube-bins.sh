#!/usr/bin/env bash
# scripts/kube-bins.sh: build the kube-apiserver and etcd binaries that the
# real-API-server tests run (internal/kubetest), from the Go module
# test/kube (k8s.io/kubernetes v1.37.2, etcd v3.7.0), into
# ${RAMPART_KUBE_BIN:-<repo>/bin/kube}. Called by `make kube-bins`.
#
# Idempotent: when both binaries are there and report the expected
# versions it does nothing (0.1 s). With an empty Go build cache
# kube-apiserver takes about 10 minutes on 2 cores and leaves 2.8 GB in the
# cache; with the cache full, 20 s (mostly the link of a 170 MB binary).
set -euo pipefail

# Keep these in step with test/kube/go.mod.
KUBE_VERSION=v1.37.2
KUBE_MINOR=37
ETCD_VERSION=3.7.0

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${RAMPART_KUBE_BIN:-$repo/bin/kube}
mod=$repo/test/kube
go=${GO:-go}

# have BINARY WANT: the binary exists and its --version output contains WANT.
have() {
  [ -x "$out/$1" ] && "$out/$1" --version 2>/dev/null | grep -qF -- "$2"
}

apiserver_ok=1 etcd_ok=1
have kube-apiserver "Kubernetes $KUBE_VERSION" || apiserver_ok=0
have etcd "etcd Version: $ETCD_VERSION" || etcd_ok=0
if [ $apiserver_ok = 1 ] && [ $etcd_ok = 1 ]; then
  exit 0
fi

# The versions above must be the ones the module pins, or the version check
# would rebuild on every run (or accept a stale binary).
grep -qE "k8s.io/kubernetes $KUBE_VERSION( |\$)" "$mod/go.mod" || {
  echo "kube-bins: $mod/go.mod does not require k8s.io/kubernetes $KUBE_VERSION; update KUBE_VERSION in $0" >&2
  exit 1
}
grep -qE "go.etcd.io/etcd/server/v3 v$ETCD_VERSION( |\$)" "$mod/go.mod" || {
  echo "kube-bins: $mod/go.mod does not pin go.etcd.io/etcd/server/v3 v$ETCD_VERSION; update ETCD_VERSION in $0" >&2
  exit 1
}

mkdir -p "$out"
cd "$mod"
# -mod=readonly: a build never rewrites the committed go.mod/go.sum.
# CGO_ENABLED=0 and -trimpath give a static binary independent of this
# checkout's path. Binaries are written under a temporary name and renamed,
# so an interrupted build never leaves a half-written binary that the
# version check could trip over.
export CGO_ENABLED=0
if [ $etcd_ok = 0 ]; then
  echo "kube-bins: building etcd $ETCD_VERSION into $out" >&2
  "$go" build -mod=readonly -trimpath -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3
  mv -f "$out/etcd.tmp" "$out/etcd"
fi
if [ $apiserver_ok = 0 ]; then
  echo "kube-bins: building kube-apiserver $KUBE_VERSION into $out (with an empty Go build cache about 10 minutes on 2 cores; with a full one 20 s)" >&2
  # kube-apiserver reports its version from these variables; without them
  # it says v0.0.0 and clients' discovery/version checks are confused.
  ldflags="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
  ldflags+=" -X k8s.io/component-base/version.gitMinor=$KUBE_MINOR"
  "$go" build -mod=readonly -trimpath -ldflags "$ldflags" -o "$out/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  mv -f "$out/kube-apiserver.tmp" "$out/kube-apiserver"
fi

have kube-apiserver "Kubernetes $KUBE_VERSION" || {
  echo "kube-bins: $out/kube-apiserver --version does not report $KUBE_VERSION" >&2
  exit 1
}
have etcd "etcd Version: $ETCD_VERSION" || {
  echo "kube-bins: $out/etcd --version does not report $ETCD_VERSION" >&2
  exit 1
}
