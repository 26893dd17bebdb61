# Sourced by the build scripts: writes the go.mod of a throwaway module that requires
# k8s.io/kubernetes $KUBERNETES_VERSION and points every staging module at its v0.Y.Z tag
# (k8s.io/kubernetes's own go.mod replaces them with local paths, so it cannot be built directly).
# Usage: k8s_wrapper_module DIR; then `go build` k8s.io/kubernetes/cmd/... inside DIR.
# Also sets k8s_ldflags to the version stamps kubectl version / --version print.

k8s_staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client cri-streaming csi-translation-lib dynamic-resource-allocation endpointslice externaljwt
  kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller streaming)

k8s_wrapper_module() {
  local dir="$1" staging_version="v0.${KUBERNETES_VERSION#v1.}" minor
  minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  mkdir -p "$dir"
  {
    echo "module outrigger.dev/k8sbuild"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    for m in "${k8s_staging[@]}"; do echo "	k8s.io/$m => k8s.io/$m $staging_version"; done
    echo ")"
  } >"$dir/go.mod"
  k8s_ldflags="-s -w"
  local kv
  for kv in "gitVersion=$KUBERNETES_VERSION" "gitMajor=1" "gitMinor=$minor" \
    "gitTreeState=clean" "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
    k8s_ldflags+=" -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
  done
}
