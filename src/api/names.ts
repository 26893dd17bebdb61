// The label names and values outrigger writes on the objects it owns. They are part of its
// interface: the chart's write guard, kube-proxy, the EndpointSlice mirroring controller and users'
// selectors read them, so they live with the API rather than with the controllers that write them.

export const labelSkipMirror = 'endpointslice.kubernetes.io/skip-mirror';
export const labelServiceName = 'kubernetes.io/service-name';
export const labelSliceManagedBy = 'endpointslice.kubernetes.io/managed-by';
export const labelAppManagedBy = 'app.kubernetes.io/managed-by';
export const labelEndpointsManagedBy = 'endpoints.kubernetes.io/managed-by';
/**
 * Value of the managed-by label on the Endpoints and EndpointSlices outrigger writes. Upstream
 * writes `endpoint-controller`; a different value says truthfully which controller owns the object
 * and lets outrigger's start-up clean-up find its own orphans. Label values cannot hold "/", hence
 * the `<name>.<domain>` form upstream also uses (`endpointslice-controller.k8s.io`).
 */
export const managerName = 'controller.outrigger.dev';
