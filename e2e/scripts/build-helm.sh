#!/usr/bin/env bash
# Builds the chart's tools from the Go module proxy (a plain `go install` each) and caches them
# outside the repository, keyed by version. Prints the path of the binary on its last line of stdout.
#
#   build-helm.sh [helm|helm-docs]
#
# - helm: installs, lints and renders the chart in the tests.
# - helm-docs: writes the chart's README from the `# --` comments in values.yaml (npm run generate;
#   the chart test fails when the committed README differs).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

what="${1:-helm}"
case "$what" in
  helm)
    version="$HELM_VERSION"
    pkg="helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
    ;;
  helm-docs)
    version="$HELM_DOCS_VERSION"
    pkg="github.com/norwoodj/helm-docs/cmd/helm-docs@$HELM_DOCS_VERSION"
    ldflags="-s -w -X main.version=${HELM_DOCS_VERSION#v}"
    ;;
  *) echo "build-helm: unknown tool $what" >&2; exit 2 ;;
esac

cache_root="${OUTRIGGER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/outrigger}"
dest="$cache_root/$what-$version"
if [[ -x "$dest/$what" ]]; then
  echo "$dest/$what"
  exit 0
fi
command -v go >/dev/null || { echo "build-helm: go is required on PATH" >&2; exit 1; }
started=$(date +%s)
echo "build-helm: building $what $version (a minute or two on 2 cores)" >&2
mkdir -p "$dest.tmp"
GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN="$dest.tmp" go install -trimpath -ldflags "$ldflags" "$pkg" >&2
rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "build-helm: built in $(( $(date +%s) - started ))s into $dest" >&2
echo "$dest/$what"
