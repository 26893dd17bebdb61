// Reads e2e/image/contents.env, the one list of what goes into outrigger's image, for the OCI
// packer (e2e/image/build.ts) and the Dockerfile renderer (e2e/image/dockerfile.ts).
import { readFileSync } from 'node:fs';

export interface ImageContents {
  readonly debianPackages: readonly string[];
  readonly node: string;
  readonly workdir: string;
  readonly user: string;
  readonly env: readonly string[];
  readonly entrypoint: readonly string[];
}

const file = new URL('./contents.env', import.meta.url);

export function imageContents(): ImageContents {
  const vars = new Map<string, string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(?:"([^"]*)"|(\S*))$/.exec(line.trim());
    if (m) vars.set(m[1] ?? '', m[2] ?? m[3] ?? '');
  }
  const need = (k: string): string => {
    const v = vars.get(k);
    if (v === undefined) throw new Error(`e2e/image/contents.env has no ${k}`);
    return v;
  };
  const words = (k: string): string[] => need(k).split(/\s+/).filter(Boolean);
  return {
    debianPackages: words('IMAGE_DEBIAN_PACKAGES'),
    node: need('IMAGE_NODE'),
    workdir: need('IMAGE_WORKDIR'),
    user: need('IMAGE_USER'),
    env: words('IMAGE_ENV'),
    entrypoint: words('IMAGE_ENTRYPOINT'),
  };
}
