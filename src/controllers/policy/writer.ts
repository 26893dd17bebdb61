// The one API call of the address-policy compiler: a write of the compiled ExternalBackendPolicy.
// A server-side apply creates it, forced because the object is outrigger's by name (schema.ts
// reserves it). Once it exists, a merge patch replaces its rules whole: an apply would remove
// only the rules outrigger's own field manager set, so a rule written by anyone else (a restore,
// a GitOps copy, `kubectl edit`) would stay in what admission reads, admitting what no grant
// allows, and every later apply would find the object still different.
import { group, version } from '../../api/externalbackend.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import type { Rest } from '../../runtime/rest.ts';
import {
  effectivePolicyName,
  policyKind,
  policyPlural,
  type PolicySpec,
} from '../../api/policy.ts';
import { applyPatch, fieldManager } from '../externalbackend/writer.ts';

export interface PolicyWriter {
  /** Creates the compiled object, or with `replace` (it exists) replaces its rules whole. */
  applyEffective(
    spec: PolicySpec,
    labels: Record<string, string>,
    replace?: boolean,
  ): Promise<void>;
}

export function policyWriter(rest: Rest, metrics: Metrics): PolicyWriter {
  const path = `/apis/${group}/${version}/${policyPlural}/${encodeURIComponent(effectivePolicyName)}`;
  return {
    async applyEffective(spec, labels, replace = false) {
      if (replace) {
        metrics.endpointWrites.inc({ kind: policyKind, operation: 'patch' });
        await rest.request('PATCH', path, {
          query: { fieldManager },
          body: { metadata: { labels }, spec },
          contentType: 'application/merge-patch+json',
        });
        return;
      }
      metrics.endpointWrites.inc({ kind: policyKind, operation: 'apply' });
      await rest.request('PATCH', path, {
        query: { fieldManager, force: 'true' },
        body: {
          apiVersion: `${group}/${version}`,
          kind: policyKind,
          metadata: { name: effectivePolicyName, labels },
          spec,
        },
        contentType: applyPatch,
      });
    },
  };
}
