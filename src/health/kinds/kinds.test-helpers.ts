// What the kinds' tests share: throwaway certificates (made with WebCrypto, as e2e/harness/pki.ts
// does), refs from a map, and waiting for what a server sees.
// @peculiar/x509 resolves its ASN.1 codecs through tsyringe, which needs this polyfill first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const day = 86_400_000;

export interface Ca {
  readonly certPem: string;
  readonly cert: x509.X509Certificate;
  readonly keys: webcrypto.CryptoKeyPair;
}

export interface Leaf {
  readonly certPem: string;
  readonly keyPem: string;
  /** The certificate's notAfter, ms since epoch (whole seconds, as certificates carry it). */
  readonly notAfter: number;
}

function serial(): string {
  return webcrypto
    .getRandomValues(new Uint8Array(8))
    .reduce((s, b) => s + b.toString(16).padStart(2, '0'), '7');
}

export async function makeCa(name = 'outrigger-test-ca'): Promise<Ca> {
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - day),
    notAfter: new Date(Date.now() + 30 * day),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), cert, keys };
}

/** A serving certificate signed by `ca` for the names given (DNS names and IPs). */
export async function makeLeaf(
  ca: Ca,
  o: { dns?: readonly string[]; ips?: readonly string[]; notBefore?: Date; notAfter?: Date } = {},
): Promise<Leaf> {
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const notAfter = o.notAfter ?? new Date(Date.now() + 7 * day);
  const sans: x509.JsonGeneralName[] = [
    ...(o.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(o.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: 'CN=outrigger-test-server',
    issuer: ca.cert.subject,
    notBefore: o.notBefore ?? new Date(Date.now() - day),
    notAfter,
    signingKey: ca.keys.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
      ...(sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans)] : []),
    ],
  });
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return {
    certPem: cert.toString('pem'),
    keyPem: x509.PemConverter.encode(der, 'PRIVATE KEY'),
    notAfter: Math.floor(notAfter.getTime() / 1000) * 1000,
  };
}

/** Refs that read from a plain map keyed "Secret/name/key" or "ConfigMap/name/key". */
export function refsOf(entries: Record<string, string>): {
  read(ref: { kind: string; name: string; key: string }): string | undefined;
} {
  return { read: (r) => entries[`${r.kind}/${r.name}/${r.key}`] };
}

/** Waits until `cond` holds: a server learns of a connection after the client is done with it. */
export async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Established TCP connections (either end) whose remote port is one of `ports`, from /proc. */
export function establishedTo(ports: readonly number[]): number {
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const [, , remote, state] = line.trim().split(/\s+/);
      const port = Number.parseInt(remote?.split(':')[1] ?? '', 16);
      if (state === '01' && ports.includes(port)) n++;
    }
  }
  return n;
}
