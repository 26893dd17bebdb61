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

/**
 * A throwaway certificate authority with everything a loopback control plane needs: a serving cert
 * for 127.0.0.1/localhost, an admin client cert in group system:masters, and a service-account key.
 */
export async function generatePki(validDays = 7): Promise<Pki> {
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + validDays * 86_400_000);
  const caKeys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=outrigger-local-ca',
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  async function leaf(
    subject: string,
    usage: string,
    sans: x509.JsonGeneralName[] = [],
  ): Promise<KeyPairPem> {
    const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject,
      issuer: caCert.subject,
      notBefore,
      notAfter,
      signingKey: caKeys.privateKey,
      publicKey: keys.publicKey,
      signingAlgorithm: alg,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([usage]),
        await x509.AuthorityKeyIdentifierExtension.create(caCert),
        ...(sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans)] : []),
      ],
    });
    return { certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey) };
  }

  const server = await leaf('CN=kube-apiserver', x509.ExtendedKeyUsage.serverAuth, [
    { type: 'ip', value: '127.0.0.1' },
    { type: 'ip', value: '::1' },
    // The `kubernetes` Service's ClusterIP (the first of the Service range), which in-cluster
    // clients dial: a container on a node namespace of e2e/harness/dataplane.ts does.
    { type: 'ip', value: '10.96.0.1' },
    { type: 'dns', value: 'localhost' },
    { type: 'dns', value: 'kubernetes' },
    { type: 'dns', value: 'kubernetes.default' },
    { type: 'dns', value: 'kubernetes.default.svc' },
  ]);
  const admin = await leaf(
    'CN=outrigger-admin, O=system:masters',
    x509.ExtendedKeyUsage.clientAuth,
  );
  const sa = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    ca: { certPem: caCert.toString('pem'), keyPem: await keyPem(caKeys.privateKey) },
    server,
    admin,
    serviceAccount: {
      privatePem: sa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      publicPem: sa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    },
  };
}
