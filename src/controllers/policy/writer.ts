// The one API call of the address-policy compiler: a write of the compiled ExternalBackendPolicy.
// A server-side apply creates it, forced because the object is outrigger's by name (schema.ts
// reserves it). Once it exists, a merge patch replaces its rules whole: an apply would remove
// only the rules outrigger's own field manager set, so a rule written by anyone else (a restore,
// a GitOps copy, `kubectl edit`) would stay in what admission reads, admitting what no grant
// allows, and every later apply would find the object still different.
import {
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { group, version } from '../../api/externalbackend.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import {
  effectivePolicyName,
  policyKind,
  policyPlural,
  type PolicySpec,
} from '../../api/policy.ts';
import { fieldManager } from '../externalbackend/writer.ts';

export interface PolicyWriter {
  /** Creates the compiled object, or with `replace` (it exists) replaces its rules whole. */
  applyEffective(
    spec: PolicySpec,
    labels: Record<string, string>,
    replace?: boolean,
  ): Promise<void>;
}

export function policyWriter(kc: KubeConfig, metrics: Metrics): PolicyWriter {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const applyOptions = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  return {
    async applyEffective(spec, labels, replace = false) {
      if (replace) {
        metrics.endpointWrites.inc({ kind: policyKind, operation: 'patch' });
        await custom.patchClusterCustomObject(
          {
            group,
            version,
            plural: policyPlural,
            name: effectivePolicyName,
            body: { metadata: { labels }, spec },
            fieldManager,
          },
          mergePatch,
        );
        return;
      }
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
