// Kubernetes label-selector matching, shared by the Service selector (selector mode) and the
// policy's namespace and Service selectors.

export type Labels = Readonly<Record<string, string>>;

/** A Service selects pods only when it has a selector; an empty selector selects every pod. */
export function selectorMatches(selector: Labels | undefined, labels: Labels | undefined): boolean {
  if (selector === undefined) return false;
  for (const [k, v] of Object.entries(selector)) if (labels?.[k] !== v) return false;
  return true;
}

export interface LabelSelector {
  readonly matchLabels?: Labels | undefined;
  readonly matchExpressions?:
    | readonly {
        readonly key: string;
        readonly operator: string;
        readonly values?: readonly string[] | undefined;
      }[]
    | undefined;
}

/**
 * metav1.LabelSelector semantics: every matchLabels pair and every expression must hold; an empty
 * selector matches everything. An unknown operator matches nothing (fail closed).
 */
export function labelSelectorMatches(selector: LabelSelector, labels: Labels | undefined): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {}))
    if (labels?.[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = labels !== undefined && Object.hasOwn(labels, e.key);
    const value = labels?.[e.key];
    const inValues = has && (e.values ?? []).includes(value ?? '');
    const ok =
      e.operator === 'In'
        ? inValues
        : e.operator === 'NotIn'
          ? !inValues
          : e.operator === 'Exists'
            ? has
            : e.operator === 'DoesNotExist'
              ? !has
              : false;
    if (!ok) return false;
  }
  return true;
}
