// The parsed spec of a cached ExternalBackend, parsed once per cached object: the reconciler and
// the cache scopes both read it, and a relist hands thousands of backends to both at once.
import type { CachedExternalBackend } from './resources.ts';
import { externalBackendSpec } from './externalbackend.ts';

export type ParsedSpec = ReturnType<typeof externalBackendSpec.safeParse>;

// Cached objects are frozen and replaced on every change, so the object itself is the key.
const parsed = new WeakMap<CachedExternalBackend, ParsedSpec>();

export function parsedSpec(xb: CachedExternalBackend): ParsedSpec {
  let p = parsed.get(xb);
  if (p === undefined) {
    p = externalBackendSpec.safeParse(xb.spec);
    parsed.set(xb, p);
  }
  return p;
}
