// @peculiar/x509 resolves its ASN.1 codecs through tsyringe, which needs this polyfill loaded first.
import 'reflect-metadata';
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface KeyPairPem {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface Pki {
  readonly ca: KeyPairPem;
  readonly server: KeyPairPem;
  readonly admin: KeyPairPem;
  /** Service-account token signing key (private, PKCS#8) and its public half (SPKI). */
  readonly serviceAccount: { readonly privatePem: string; readonly publicPem: string };
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

function serial(): string {
  return webcrypto
    .getRandomValues(new Uint8Array(8))
    .reduce((s, b) => s + b.toString(16).padStart(2, '0'), '7');
}

const day = 86_400_000;

export interface Ca extends KeyPairPem {
  readonly cert: x509.X509Certificate;
  readonly keys: webcrypto.CryptoKeyPair;
}

export interface Leaf extends KeyPairPem {
  /** The certificate's notAfter, ms since epoch (whole seconds, as certificates carry it). */
  readonly notAfter: number;
}

/** A throwaway certificate authority (ECDSA P-256), valid from a day ago for 30 days by default. */
export async function makeCa(
  name = 'outrigger-test-ca',
  o: { readonly notBefore?: Date; readonly notAfter?: Date } = {},
): Promise<Ca> {
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    notBefore: o.notBefore ?? new Date(Date.now() - day),
    notAfter: o.notAfter ?? new Date(Date.now() + 30 * day),
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
  return { certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey), cert, keys };
}

/**
 * A certificate signed by `ca` for the names given (DNS names and IPs): a serving one unless
 * `usage` says otherwise; valid from a day ago for 7 days by default.
 */
export async function makeLeaf(
  ca: Ca,
  o: {
    readonly subject?: string;
    readonly usage?: string;
    readonly dns?: readonly string[];
    readonly ips?: readonly string[];
    readonly notBefore?: Date;
    readonly notAfter?: Date;
  } = {},
): Promise<Leaf> {
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const notAfter = o.notAfter ?? new Date(Date.now() + 7 * day);
  const sans: x509.JsonGeneralName[] = [
    ...(o.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(o.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: o.subject ?? 'CN=outrigger-test-server',
    issuer: ca.cert.subject,
    notBefore: o.notBefore ?? new Date(Date.now() - day),
    notAfter,
    signingKey: ca.keys.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([o.usage ?? x509.ExtendedKeyUsage.serverAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
      ...(sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans)] : []),
    ],
  });
  return {
    certPem: cert.toString('pem'),
    keyPem: await keyPem(keys.privateKey),
    notAfter: Math.floor(notAfter.getTime() / 1000) * 1000,
  };
}

/**
 * A throwaway certificate authority with everything a loopback control plane needs: a serving cert
 * for 127.0.0.1/localhost, an admin client cert in group system:masters, and a service-account key.
 */
export async function generatePki(validDays = 7): Promise<Pki> {
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + validDays * day);
  const ca = await makeCa('outrigger-local-ca', { notBefore, notAfter });
  const server = await makeLeaf(ca, {
    subject: 'CN=kube-apiserver',
    notBefore,
    notAfter,
    ips: [
      '127.0.0.1',
      '::1',
      // The `kubernetes` Service's ClusterIP (the first of the Service range), which in-cluster
      // clients dial: a container on a node namespace of e2e/harness/dataplane.ts does.
      '10.96.0.1',
    ],
    dns: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
  });
  const admin = await makeLeaf(ca, {
    subject: 'CN=outrigger-admin, O=system:masters',
    usage: x509.ExtendedKeyUsage.clientAuth,
    notBefore,
    notAfter,
  });
  const sa = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    ca: { certPem: ca.certPem, keyPem: ca.keyPem },
    server: { certPem: server.certPem, keyPem: server.keyPem },
    admin: { certPem: admin.certPem, keyPem: admin.keyPem },
    serviceAccount: {
      privatePem: sa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      publicPem: sa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    },
  };
}
