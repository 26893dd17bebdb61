// Building blocks of the API schemas (ExternalBackend, ExternalBackendPolicy, and the health-check
// kinds in src/health/kinds/): CEL rules with messages for `kubectl apply`, patterns that fail with
// a readable message, and port references.
import { z } from 'zod';

export interface Rule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: string;
}
export const cel = (...rules: Rule[]) => ({ 'x-kubernetes-validations': rules });

/**
 * A string that must match `pattern`, refused at admission with `message`. A bare OpenAPI pattern
 * error shows only the regular expression, so the CRD carries a CEL rule instead (crd.ts drops the
 * pattern that the rule repeats); zod checks the same pattern at run time.
 */
export function matching(base: z.ZodString, pattern: RegExp, message: string, ...more: Rule[]) {
  if (pattern.source.includes('"')) throw new Error('pattern must not contain a double quote');
  // One meta() with every rule: a later .meta() would replace this one's rules, not add to them.
  return base
    .regex(pattern, message)
    .meta(cel({ rule: `self.matches(r"${pattern.source}")`, message }, ...more));
}

export const dnsLabelPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const dnsLabelMessage =
  'must be a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit';
export const dnsLabel = matching(z.string().min(1).max(63), dnsLabelPattern, dnsLabelMessage);

/** A port by number or by the name of an entry in spec.ports (Kubernetes int-or-string). */
export const portRef = z
  .union([
    z.int().min(1).max(65535),
    z.string().min(1).max(63).regex(dnsLabelPattern, dnsLabelMessage),
  ])
  .meta({ 'x-kubernetes-int-or-string': true });
