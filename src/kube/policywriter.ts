// The one API call of the address-policy compiler: a server-side apply of the compiled
// ExternalBackendPolicy. Forced, because the object is outrigger's by name (schema.ts reserves it);
// an apply replaces only the fields outrigger sets.
import {
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { group, version } from '../externalbackend/schema.ts';
import type { Metrics } from '../metrics.ts';
import {
  effectivePolicyName,
  policyKind,
  policyPlural,
  type PolicySpec,
} from '../policy/schema.ts';
import { fieldManager } from './backendwriter.ts';

export interface PolicyWriter {
  applyEffective(spec: PolicySpec, labels: Record<string, string>): Promise<void>;
}

export function policyWriter(kc: KubeConfig, metrics: Metrics): PolicyWriter {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const applyOptions = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
  return {
    async applyEffective(spec, labels) {
      metrics.endpointWrites.inc({ kind: policyKind, operation: 'apply' });
      await custom.patchClusterCustomObject(
        {
          group,
          version,
          plural: policyPlural,
          name: effectivePolicyName,
          body: {
            apiVersion: `${group}/${version}`,
            kind: policyKind,
            metadata: { name: effectivePolicyName, labels },
            spec,
          },
          fieldManager,
          force: true,
        },
        applyOptions,
      );
    },
  };
}
