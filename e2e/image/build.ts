// `npm run image`: builds outrigger's container image without a Docker daemon or registry. The
// root file system comes from e2e/image/rootfs.sh (the script the Dockerfile's build stage runs,
// from the same list), packed as one reproducible layer (sorted, fixed times and owners, gzip
// without names or times) into an OCI image layout at .outrigger/image/oci and an archive of it at
// .outrigger/image/outrigger.oci.tar, which `skopeo copy oci-archive:...`, `podman load` or
// `docker load` (containerd image store) take.
//
//   npm run image [-- --out=DIR] [--no-build]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { imageContents } from './contents.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

export interface ImageConfig {
  readonly User?: string;
  readonly Env?: readonly string[];
  readonly Entrypoint?: readonly string[];
  readonly WorkingDir?: string;
}

export interface BuiltImage {
  /** The OCI image layout directory (oci-layout, index.json, blobs/). */
  readonly layout: string;
  readonly archive: string;
  readonly reference: string;
  readonly manifest: Descriptor;
  readonly layer: Descriptor;
  /** Bytes of the root file system, uncompressed. */
  readonly unpackedBytes: number;
  readonly buildMs: number;
}

function run(cmd: string, args: readonly string[], cwd = root): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${String(r.status)})`);
  return r.stdout;
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

function blob(layout: string, mediaType: string, content: Buffer): Descriptor {
  const hex = sha256(content);
  writeFileSync(join(layout, 'blobs', 'sha256', hex), content);
  return { mediaType, digest: `sha256:${hex}`, size: content.length };
}

export function buildImage(opts: { out?: string; build?: boolean } = {}): BuiltImage {
  const started = Date.now();
  const out = opts.out ?? join(root, '.outrigger', 'image');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    version: string;
    license: string;
  };
  const contents = imageContents();
  if (opts.build ?? true) run('npm', ['run', '--silent', 'build']);

  const work = mkdtempSync(join(tmpdir(), 'outrigger-image-'));
  try {
    const rootfs = join(work, 'rootfs');
    run('bash', [join(root, 'e2e/image/rootfs.sh'), rootfs]);
    const unpackedBytes = Number(run('du', ['-sb', rootfs]).split('\t')[0]);
    // A reproducible layer: the same inputs give the same digest.
    const tar = join(work, 'layer.tar');
    run('tar', [
      '--sort=name',
      '--mtime=@0',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--format=posix',
      '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
      '-C',
      rootfs,
      '-cf',
      tar,
      '.',
    ]);
    const diffId = `sha256:${sha256(readFileSync(tar))}`;
    run('gzip', ['-n', '-6', tar]);

    const layout = join(out, 'oci');
    rmSync(layout, { recursive: true, force: true });
    mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const layer = blob(
      layout,
      'application/vnd.oci.image.layer.v1.tar+gzip',
      readFileSync(`${tar}.gz`),
    );
    const config: ImageConfig = {
      User: contents.user,
      Env: contents.env,
      Entrypoint: contents.entrypoint,
      WorkingDir: contents.workdir,
    };
    const configBlob = blob(
      layout,
      'application/vnd.oci.image.config.v1+json',
      Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          config: {
            ...config,
            Labels: {
              'org.opencontainers.image.title': 'outrigger',
              'org.opencontainers.image.version': pkg.version,
              'org.opencontainers.image.licenses': pkg.license,
            },
          },
          rootfs: { type: 'layers', diff_ids: [diffId] },
          history: [{ created_by: 'e2e/image/rootfs.sh (npm run image)' }],
        }),
      ),
    );
    const manifest = blob(
      layout,
      'application/vnd.oci.image.manifest.v1+json',
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: configBlob,
          layers: [layer],
        }),
      ),
    );
    const reference = `outrigger:${pkg.version}`;
    writeFileSync(
      join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { ...manifest, annotations: { 'org.opencontainers.image.ref.name': pkg.version } },
        ],
      }),
    );
    const archive = join(out, 'outrigger.oci.tar');
    run('tar', [
      '--sort=name',
      '--mtime=@0',
      '--owner=0',
      '--group=0',
      '-C',
      layout,
      '-cf',
      archive,
      '.',
    ]);
    return {
      layout,
      archive,
      reference,
      manifest,
      layer,
      unpackedBytes,
      buildMs: Date.now() - started,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export interface UnpackedImage {
  readonly config: ImageConfig;
  readonly rootfs: string;
}

/**
 * Unpacks an OCI image layout's image into `dir/rootfs`, checking every digest on the way: what
 * runs is what the layout holds, not the directory it was built from.
 */
export function unpackImage(layout: string, dir: string): UnpackedImage {
  const read = (d: Descriptor): Buffer => {
    const content = readFileSync(join(layout, 'blobs', 'sha256', d.digest.slice('sha256:'.length)));
    if (`sha256:${sha256(content)}` !== d.digest || content.length !== d.size)
      throw new Error(`blob ${d.digest} does not match its descriptor`);
    return content;
  };
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as {
    manifests: Descriptor[];
  };
  const first = index.manifests[0];
  if (first === undefined) throw new Error('the image index lists no manifest');
  const manifest = JSON.parse(read(first).toString()) as {
    config: Descriptor;
    layers: Descriptor[];
  };
  const config = (JSON.parse(read(manifest.config).toString()) as { config: ImageConfig }).config;
  const rootfs = join(dir, 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  for (const l of manifest.layers) {
    const file = join(dir, 'layer.tar.gz');
    writeFileSync(file, read(l));
    run('tar', ['-xzf', file, '-C', rootfs, '--numeric-owner']);
    rmSync(file);
  }
  return { config, rootfs };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const outArg = args.find((a) => a.startsWith('--out='));
  const image = buildImage({
    ...(outArg ? { out: outArg.slice('--out='.length) } : {}),
    build: !args.includes('--no-build'),
  });
  const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;
  process.stdout.write(
    [
      `image ${image.reference} built in ${(image.buildMs / 1000).toFixed(1)} s`,
      `  manifest ${image.manifest.digest}`,
      `  layer    ${image.layer.digest}: ${mib(image.layer.size)} compressed, ${mib(image.unpackedBytes)} unpacked`,
      `  layout   ${image.layout}`,
      `  archive  ${image.archive} (${mib(statSync(image.archive).size)})`,
      '',
    ].join('\n'),
  );
}
