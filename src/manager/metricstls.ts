// The serving certificate of the secure /metrics endpoint: read from files (a mounted Secret, the
// chart's or cert-manager's) and re-read when they change, or, with no files named, a self-signed
// one generated in memory at start, as controller-runtime's metrics server does.
import { readFile } from 'node:fs/promises';
import { X509Certificate, createPrivateKey, webcrypto } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';

export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

export interface CertFiles {
  readonly dir: string;
  readonly certName: string;
  readonly keyName: string;
}

/** Reads and checks a certificate and its key; throws with the path when either is unusable. */
export async function readKeyPair(files: CertFiles): Promise<KeyPair> {
  const certPath = join(files.dir, files.certName);
  const keyPath = join(files.dir, files.keyName);
  const [cert, key] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
  let parsed: X509Certificate;
  try {
    parsed = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`${certPath}: not a PEM certificate`, { cause: err });
  }
  try {
    if (!parsed.checkPrivateKey(createPrivateKey(key)))
      throw new Error('the key does not belong to the certificate');
  } catch (err) {
    throw new Error(`${keyPath}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  return { cert, key };
}

/**
 * Calls `onChange` with the new pair whenever the files' contents change. Polled rather than
 * watched: the kubelet updates a Secret volume by swapping a symlink, which inotify on the files
 * themselves does not report. A pair that does not parse (written half-way, or a key of another
 * certificate) is skipped until the files agree again; `onError` hears about it.
 */
export function watchKeyPair(
  files: CertFiles,
  current: KeyPair,
  onChange: (pair: KeyPair) => void,
  onError: (err: unknown) => void,
  intervalMs = 10_000,
): () => void {
  let last = current;
  let reading = false;
  const timer = setInterval(() => {
    if (reading) return;
    reading = true;
    readKeyPair(files)
      .then((pair) => {
        if (pair.cert === last.cert && pair.key === last.key) return;
        last = pair;
        onChange(pair);
      }, onError)
      .finally(() => {
        reading = false;
      });
  }, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
  };
}

const day = 86_400_000;

/**
 * A self-signed ECDSA P-256 certificate for localhost and this host's name, valid for a year.
 * Scrapers cannot verify it (nothing holds its CA), which is why the chart mounts a certificate
 * instead; this is for running outside a cluster. The X.509 encoder (@peculiar/x509) is loaded only
 * here: node:crypto creates keys but not certificates.
 */
export async function selfSignedKeyPair(): Promise<KeyPair> {
  let x509: typeof import('@peculiar/x509');
  try {
    // @peculiar/x509 resolves its ASN.1 codecs through tsyringe, which needs this polyfill first.
    await import('reflect-metadata');
    x509 = await import('@peculiar/x509');
  } catch (err) {
    throw new Error(
      'no --metrics-cert-path was given and this build cannot generate a self-signed certificate ' +
        '(@peculiar/x509 is not installed): mount a certificate and name its directory with ' +
        '--metrics-cert-path, or serve plain HTTP with --metrics-secure=false',
      { cause: err },
    );
  }
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const names = [...new Set(['localhost', hostname()])];
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    // A leading 01 keeps the serial positive whatever the random bytes are.
    serialNumber: `01${Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex')}`,
    name: 'CN=outrigger-metrics',
    notBefore: new Date(Date.now() - day),
    notAfter: new Date(Date.now() + 365 * day),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...names.map((value) => ({ type: 'dns' as const, value })),
        { type: 'ip', value: '127.0.0.1' },
        { type: 'ip', value: '::1' },
      ]),
    ],
  });
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { cert: cert.toString('pem'), key: x509.PemConverter.encode(der, 'PRIVATE KEY') };
}
