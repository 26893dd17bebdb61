#!/usr/bin/env bash
# Builds helm from the Go module proxy (a plain `go install`) and caches it outside the repository,
# keyed by version. Prints the path of the binary on its last line of stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${OUTRIGGER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/outrigger}"
dest="$cache_root/helm-$HELM_VERSION"
if [[ -x "$dest/helm" ]]; then
  echo "$dest/helm"
  exit 0
fi
command -v go >/dev/null || { echo "build-helm: go is required on PATH" >&2; exit 1; }
started=$(date +%s)
echo "build-helm: building helm $HELM_VERSION (about a minute and a half on 2 cores)" >&2
mkdir -p "$dest"
GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$dest" go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
echo "build-helm: built in $(( $(date +%s) - started ))s into $dest" >&2
echo "$dest/helm"
