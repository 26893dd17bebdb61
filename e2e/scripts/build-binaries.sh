#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager and kubectl from the Go module proxy and
# caches them outside the repository, keyed by version. k8s.io/kubernetes cannot be `go install`ed
# (its go.mod replaces every staging module with a local path), so each build happens in a throwaway
# wrapper module that requires the release and points the staging modules at their v0.Y.Z tags.
#
# Prints the directory that holds the binaries on its last line of stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=k8s-wrapper.sh
source "$here/k8s-wrapper.sh"

cache_root="${OUTRIGGER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/outrigger}"
dest="$cache_root/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
bins=(etcd kube-apiserver kube-controller-manager kubectl)

have_all() {
  for b in "${bins[@]}"; do [[ -x "$dest/$b" ]] || return 1; done
}

if have_all; then
  echo "$dest"
  exit 0
fi

command -v go >/dev/null || { echo "build-binaries: go is required on PATH" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$dest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
started=$(date +%s)

log() { echo "build-binaries: $*" >&2; }

if [[ ! -x "$dest/kube-apiserver" || ! -x "$dest/kube-controller-manager" || ! -x "$dest/kubectl" ]]; then
  log "building Kubernetes $KUBERNETES_VERSION (cold builds take many minutes)"
  k8s_wrapper_module "$work/k8s"
  cat >"$work/k8s/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (cd "$work/k8s" && go mod tidy >&2 && go build -trimpath -ldflags "$k8s_ldflags" -o "$work/k8s/out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl >&2)
  mv "$work/k8s/out/"* "$dest/"
fi

if [[ ! -x "$dest/etcd" ]]; then
  log "building etcd $ETCD_VERSION"
  mkdir -p "$work/etcd"
  printf 'module outrigger.dev/etcdbuild\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$work/etcd/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$work/etcd/tools.go"
  (cd "$work/etcd" && go mod tidy >&2 && go build -trimpath -ldflags "-s -w" -o "$work/etcd/out/etcd" go.etcd.io/etcd/server/v3 >&2)
  mv "$work/etcd/out/etcd" "$dest/etcd"
fi

have_all || { log "some binaries are missing from $dest"; exit 1; }
log "built in $(( $(date +%s) - started ))s into $dest"
echo "$dest"
