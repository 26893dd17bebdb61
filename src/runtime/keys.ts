// Work-queue keys: "namespace/name" for namespaced objects, as client-go's MetaNamespaceKeyFunc.
import type { CachedObject } from './cached.ts';

export function objectKey(obj: CachedObject): string {
  const { namespace, name = '' } = obj.metadata ?? {};
  return namespace ? `${namespace}/${name}` : name;
}

/** The inverse of objectKey for namespaced objects: [namespace, name]. */
export function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}
