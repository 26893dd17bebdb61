// What the informers keep of each kind: narrow types of their own, so that reading a field the
// transform in transforms.ts drops is a compile error rather than an `undefined` at run time. Every
// field is read-only: cached objects are shared and frozen. The client library's full types
// (V1Pod, V1Service) are assignable to these, so pure functions accept either.
import type {
  V1EndpointSlice,
  V1Endpoints,
  V1OwnerReference,
  V1ServicePort,
} from '@kubernetes/client-node';

/** What every informer needs of an object's metadata. */
export interface CachedObject {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
  };
}

export interface CachedObjectMeta {
  readonly name?: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly creationTimestamp?: Date;
  readonly deletionTimestamp?: Date;
}

export interface CachedContainerPort {
  readonly name?: string;
  readonly containerPort: number;
  readonly protocol?: string;
}

export interface CachedContainer {
  readonly name: string;
  readonly ports?: readonly CachedContainerPort[];
  /** Init containers only: "Always" makes a sidecar. */
  readonly restartPolicy?: string;
}

/** A Pod as an endpoints controller reads it: identity, labels, placement, ports, readiness. */
export interface CachedPod {
  readonly metadata?: CachedObjectMeta;
  readonly spec?: {
    readonly nodeName?: string;
    readonly hostname?: string;
    readonly subdomain?: string;
    readonly containers: readonly CachedContainer[];
    readonly initContainers?: readonly CachedContainer[];
  };
  readonly status?: {
    readonly phase?: string;
    readonly podIP?: string;
    readonly podIPs?: readonly { readonly ip: string }[];
    /** The Ready condition only. */
    readonly conditions?: readonly {
      readonly type: string;
      readonly status: string;
      readonly lastTransitionTime?: Date;
    }[];
  };
}

/** A Service as both controllers read it. */
export interface CachedService {
  readonly metadata?: CachedObjectMeta & {
    /** Tells Services an ExternalBackend created from adopted ones. */
    readonly ownerReferences?: readonly V1OwnerReference[];
  };
  readonly spec?: {
    readonly selector?: Readonly<Record<string, string>>;
    readonly type?: string;
    readonly clusterIP?: string;
    readonly ipFamilies?: readonly string[];
    readonly ports?: readonly V1ServicePort[];
    readonly publishNotReadyAddresses?: boolean;
  };
}

/**
 * Endpoints and EndpointSlices are compared with what outrigger wants and written back, so all of
 * them is kept but managedFields.
 */
export type CachedEndpoints = V1Endpoints;
export type CachedEndpointSlice = V1EndpointSlice;

/**
 * A Secret or ConfigMap labelled for health checks: only its keys, as text (a Secret's values
 * decoded from base64). Never logged; read only to build probes.
 */
export interface CachedProbeSource {
  readonly metadata?: CachedObjectMeta;
  readonly data: Readonly<Record<string, string>>;
  /** Keys whose values were too large to keep (see maxProbeSourceValueBytes). */
  readonly oversized?: readonly string[];
}

/**
 * The largest value kept from a labelled Secret or ConfigMap: what the largest CA bundle a check
 * accepts needs (header values are far shorter). A tenant labels what it likes; this bounds what
 * each key of it costs the operator.
 */
export const maxProbeSourceValueBytes = 256 * 1024;
