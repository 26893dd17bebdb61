#!/usr/bin/env bash
# Builds one binary of the data plane the data-path tests run (a node's kube-proxy, CoreDNS, an
# Ingress controller, etcd's client) from the Go module proxy and caches it outside the repository,
# keyed by version. Prints the path of the binary on its last line of stdout.
#
#   build-data-plane.sh kube-proxy|kubelet|kube-scheduler|pause-image|coredns|etcdctl|traefik|seccomp-default|prometheus|promtool|monitoring-crds
#
# - kube-proxy, kubelet, kube-scheduler: more targets of the Kubernetes wrapper module (see
#   k8s-wrapper.sh); kubelet and kube-scheduler serve the real node (e2e/harness/node.ts).
# - pause-image: not a binary but pause.oci.tar, the sandbox image of the real node's containerd:
#   an OCI image archive holding one static Go program that holds the pod's namespaces open until
#   SIGTERM or SIGINT and reaps orphans meanwhile, named localhost/outrigger/pause:<version>
#   (containerd's sandbox_image; `ctr images import` takes the name from the index).
# - coredns: a plain `go install` (its go.mod has no replaces).
# - etcdctl: a wrapper module, since etcdctl's go.mod replaces its siblings with local paths.
# - traefik: a wrapper module repeating the three `replace` lines and the `exclude` of Traefik's own
#   go.mod (forks of go-http-auth, mux and minheap; a tencentcloud SDK version the proxy refuses).
#   Built without its web UI files, which the tests do not need.
# - prometheus, promtool: a wrapper module repeating Prometheus's own `replace` of
#   cloud.google.com/go and its three `exclude`s; without the web UI's assets (the API, rule
#   evaluation and `promtool test rules` do not need them).
# - seccomp-default: not a server but a file, seccomp-default.json: the seccomp profile containerd
#   applies for `seccompProfile: RuntimeDefault`, printed by containerd's own contrib/seccomp
#   package for a container with every capability dropped (as the chart runs outrigger), in the
#   OCI runtime spec form runc reads.
# - monitoring-crds: not a binary but the Prometheus Operator's ServiceMonitor and PrometheusRule
#   CRDs, monitoring-crds.yaml, from the prometheus-operator module's example/ directory; the chart
#   test installs them so that the API server validates what the chart renders for them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=k8s-wrapper.sh
source "$here/k8s-wrapper.sh"

what="${1:?usage: build-data-plane.sh kube-proxy|kubelet|kube-scheduler|pause-image|coredns|etcdctl|traefik|seccomp-default|prometheus|promtool|monitoring-crds}"
# Bump when the pause program or its image changes (it is the tag the node's containerd is given).
pause_version=1
case "$what" in
  kube-proxy | kubelet | kube-scheduler) version="$KUBERNETES_VERSION" ;;
  pause-image) version="$pause_version" ;;
  coredns) version="$COREDNS_VERSION" ;;
  etcdctl) version="$ETCD_VERSION" ;;
  traefik) version="$TRAEFIK_VERSION" ;;
  seccomp-default) version="containerd-$CONTAINERD_VERSION" ;;
  prometheus | promtool) version="$PROMETHEUS_VERSION" ;;
  monitoring-crds) version="prometheus-operator-$PROMETHEUS_OPERATOR_VERSION" ;;
  *) echo "build-data-plane: unknown binary $what" >&2; exit 2 ;;
esac

cache_root="${OUTRIGGER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/outrigger}"
dest="$cache_root/$what-$version"
file="$what"
[[ "$what" == seccomp-default ]] && file=seccomp-default.json
[[ "$what" == monitoring-crds ]] && file=monitoring-crds.yaml
[[ "$what" == pause-image ]] && file=pause.oci.tar
if [[ -e "$dest/$file" ]]; then
  echo "$dest/$file"
  exit 0
fi
command -v go >/dev/null || { echo "build-data-plane: go is required on PATH" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
log() { echo "build-data-plane: $*" >&2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
log "building $what $version (cold builds take minutes)"

tools() { # DIR IMPORT...: a tools.go that keeps the imports in go.mod through `go mod tidy`
  local dir="$1"; shift
  { echo '//go:build tools'; echo; echo 'package tools'; echo; for i in "$@"; do echo "import _ \"$i\""; done; } >"$dir/tools.go"
}

case "$what" in
  kube-proxy | kubelet | kube-scheduler)
    k8s_wrapper_module "$work/m"
    tools "$work/m" "k8s.io/kubernetes/cmd/$what"
    (cd "$work/m" && go mod tidy >&2 &&
      go build -trimpath -ldflags "$k8s_ldflags" -o "$work/out/$what" "k8s.io/kubernetes/cmd/$what" >&2)
    ;;
  pause-image)
    mkdir -p "$work/m" "$work/rootfs" "$work/oci/blobs/sha256" "$work/out"
    printf 'module outrigger.dev/pause\n\ngo 1.26.0\n' >"$work/m/go.mod"
    cat >"$work/m/main.go" <<'GO'
// The sandbox process of a pod: it only holds the pod's namespaces, so it waits for the runtime's
// stop signal, and as the pod's PID 1 (when the pod shares one PID namespace) it reaps orphans.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
GO
    (cd "$work/m" && go build -trimpath -ldflags "-s -w" -o "$work/rootfs/pause" . >&2)
    blob() { # FILE MEDIATYPE: moves FILE into the layout's blobs; prints its descriptor
      local digest size
      digest="$(sha256sum "$1" | cut -d' ' -f1)"
      size="$(stat -c %s "$1")"
      mv "$1" "$work/oci/blobs/sha256/$digest"
      printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$2" "$digest" "$size"
    }
    tar --sort=name --mtime=@0 --owner=65535 --group=65535 --numeric-owner -C "$work/rootfs" -cf "$work/layer.tar" pause
    diff_id="$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
    layer="$(blob "$work/layer.tar" application/vnd.oci.image.layer.v1.tar)"
    printf '{"architecture":"%s","os":"linux","config":{"User":"65535:65535","Entrypoint":["/pause"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
      "$(go env GOARCH)" "$diff_id" >"$work/config.json"
    config="$(blob "$work/config.json" application/vnd.oci.image.config.v1+json)"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
      "$config" "$layer" >"$work/manifest.json"
    manifest="$(blob "$work/manifest.json" application/vnd.oci.image.manifest.v1+json)"
    printf '{"schemaVersion":2,"manifests":[%s]}' \
      "${manifest%\}},\"annotations\":{\"io.containerd.image.name\":\"localhost/outrigger/pause:$pause_version\",\"org.opencontainers.image.ref.name\":\"$pause_version\"}}" \
      >"$work/oci/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/oci" -cf "$work/out/pause.oci.tar" .
    ;;
  coredns)
    GOBIN="$work/out" go install -trimpath \
      -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
      "github.com/coredns/coredns@$COREDNS_VERSION" >&2
    ;;
  etcdctl)
    mkdir -p "$work/m"
    printf 'module outrigger.dev/etcdctlbuild\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/etcdctl/v3 %s\n' "$ETCD_VERSION" >"$work/m/go.mod"
    tools "$work/m" go.etcd.io/etcd/etcdctl/v3
    (cd "$work/m" && go mod tidy >&2 &&
      go build -trimpath -ldflags "-s -w" -o "$work/out/etcdctl" go.etcd.io/etcd/etcdctl/v3 >&2)
    ;;
  traefik)
    mkdir -p "$work/m"
    cat >"$work/m/go.mod" <<GOMOD
module outrigger.dev/traefikbuild

go 1.26.0

require github.com/traefik/traefik/v3 $TRAEFIK_VERSION

replace (
	github.com/abbot/go-http-auth => github.com/containous/go-http-auth v0.4.1-0.20200324110947-a37a7636d23e
	github.com/gorilla/mux => github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59
	github.com/mailgun/minheap => github.com/containous/minheap v0.0.0-20190809180810-6e71eb837595
)

exclude github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible
GOMOD
    tools "$work/m" github.com/traefik/traefik/v3/cmd/traefik
    (cd "$work/m" && go mod tidy >&2 &&
      go build -trimpath \
        -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
        -o "$work/out/traefik" github.com/traefik/traefik/v3/cmd/traefik >&2)
    ;;
  prometheus | promtool)
    mkdir -p "$work/m"
    cat >"$work/m/go.mod" <<GOMOD
module outrigger.dev/prometheusbuild

go 1.26.0

require github.com/prometheus/prometheus $PROMETHEUS_VERSION

exclude github.com/linode/linodego v1.0.0

exclude (
	github.com/grpc-ecosystem/grpc-gateway v1.14.7
	google.golang.org/api v0.30.0
)

replace cloud.google.com/go => cloud.google.com/go v0.123.0
GOMOD
    tools "$work/m" github.com/prometheus/prometheus/cmd/$what
    v="${PROMETHEUS_VERSION#v0.}"
    # Prometheus 3.x versions its Go module v0.3XY.Z for release 3.XY.Z.
    release="3.${v:1:2}.${v#*.}"
    ldflags="-s -w -X github.com/prometheus/common/version.Version=$release -X github.com/prometheus/common/version.Branch=HEAD"
    (cd "$work/m" && go mod tidy >&2 &&
      go build -trimpath -ldflags "$ldflags" -o "$work/out/$what" "github.com/prometheus/prometheus/cmd/$what" >&2)
    ;;
  seccomp-default)
    mkdir -p "$work/m" "$work/out"
    printf 'module outrigger.dev/seccompdefault\n\ngo 1.26.0\n\nrequire github.com/containerd/containerd/v2 %s\n' "$CONTAINERD_VERSION" >"$work/m/go.mod"
    cat >"$work/m/main.go" <<'GO'
// Prints containerd's RuntimeDefault seccomp profile for a container without capabilities.
package main

import (
	"encoding/json"
	"os"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

func main() {
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(seccomp.DefaultProfile(spec)); err != nil {
		os.Exit(1)
	}
}
GO
    (cd "$work/m" && go mod tidy >&2 && go run . >"$work/out/seccomp-default.json")
    ;;
  monitoring-crds)
    mkdir -p "$work/out"
    mod="$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [[ -n "$mod" ]] || { log "go mod download gave no directory"; exit 1; }
    for kind in servicemonitors prometheusrules; do
      cat "$mod/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml"
      echo '---'
    done >"$work/out/monitoring-crds.yaml"
    ;;
esac

mkdir -p "$dest"
mv "$work/out/$file" "$dest/$file"
log "built $what in $(( $(date +%s) - started ))s into $dest"
echo "$dest/$file"
