// CA bundles from tenants' Secrets and ConfigMaps: refused when they are not plainly certificates
// or too large, parsed once however many probes use them, and never turned into text.
import { inspect } from 'node:util';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { CaBundle, maxCaBundleBytes, readCaBundle } from './cabundle.ts';
import { makeCa, refsOf, type Ca } from './kinds.test-helpers.ts';
import { ParsedRefs } from './kind.ts';
import { tlsSettings } from './options.ts';

let ca: Ca;
let other: Ca;

beforeAll(async () => {
  ca = await makeCa();
  other = await makeCa('another');
});

const refused = (pem: string): string => {
  const r = readCaBundle(pem);
  if (r instanceof CaBundle) throw new Error('accepted');
  return r.refused;
};

describe('a CA bundle', () => {
  it('is accepted with several certificates and text between them', () => {
    const b = readCaBundle(`# team CA\n${ca.certPem}\nsubject=another\n${other.certPem}`);
    expect(b).toBeInstanceOf(CaBundle);
    expect((b as CaBundle).certificates).toBe(2);
  });

  it('is refused when a block is no certificate, or not one at all, or never ends', () => {
    const key =
      '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n';
    expect(refused(`${key}${ca.certPem}`)).toBe('block 1 is a PRIVATE KEY, not a CERTIFICATE');
    const broken = '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n';
    expect(refused(`${ca.certPem}${broken}`)).toBe('block 2 is not a valid certificate');
    expect(refused(`${ca.certPem}-----BEGIN CERTIFICATE-----\nMIIB`)).toBe(
      'block 2 is not a complete PEM block',
    );
    expect(refused('just text')).toBe('holds no PEM certificate');
    // A label is the tenant's text: quoted short.
    const long = 'A'.repeat(5000);
    expect(refused(`-----BEGIN ${long}-----\nAAAA\n-----END ${long}-----\n`)).toBe(
      `block 1 is a ${'A'.repeat(32)}…, not a CERTIFICATE`,
    );
  });

  it(`is refused above ${String(maxCaBundleBytes / 1024)} KiB, before anything is parsed`, () => {
    const many = ca.certPem.repeat(Math.ceil(maxCaBundleBytes / ca.certPem.length) + 1);
    expect(refused(many)).toBe(`is larger than ${String(maxCaBundleBytes / 1024)} KiB`);
  });

  it('is parsed once per version of the object that holds it, and only then', () => {
    const memo = new ParsedRefs();
    let parses = 0;
    const parse = (pem: string): ReturnType<typeof readCaBundle> => {
      parses++;
      return readCaBundle(pem);
    };
    const pem = `${ca.certPem}${other.certPem}`;
    const v1 = Object.freeze({ data: { 'ca.crt': pem } });
    const a = memo.get(v1, 'ca.crt', pem, parse);
    const b = memo.get(v1, 'ca.crt', pem, parse);
    expect(b).toBe(a);
    expect((a as CaBundle).context()).toBe((b as CaBundle).context());
    expect(parses).toBe(1);
    // The Secret changed: a new cached object, parsed again.
    const v2 = Object.freeze({ data: { 'ca.crt': pem } });
    expect(memo.get(v2, 'ca.crt', pem, parse)).not.toBe(a);
    expect(parses).toBe(2);
  });

  it('costs one parse per object even when every bundle has the same length', () => {
    // Long strings of one length hash alike: a memo keyed by the text would compare them all.
    const memo = new ParsedRefs();
    let parses = 0;
    const parse = (pem: string): ReturnType<typeof readCaBundle> => {
      parses++;
      return readCaBundle(pem);
    };
    const objects = Array.from({ length: 64 }, (_, i) => {
      const pem = `${ca.certPem}# ${String(i).padStart(4, '0')}\n`.repeat(100);
      return { object: Object.freeze({}), pem };
    });
    for (let address = 0; address < 50; address++)
      for (const { object, pem } of objects) memo.get(object, 'ca.crt', pem, parse);
    expect(parses).toBe(64);
  });

  it('turns into its digest, not its certificates, as JSON and when printed', () => {
    const b = readCaBundle(ca.certPem) as CaBundle;
    const body = ca.certPem.split('\n')[1] ?? '';
    expect(body.length).toBeGreaterThan(10);
    for (const text of [JSON.stringify({ b }), inspect(b)]) {
      expect(text).not.toContain(body);
      expect(text).toContain(`sha256:${b.digest.slice(0, 16)}`);
    }
    expect(JSON.stringify(readCaBundle(other.certPem))).not.toBe(JSON.stringify(b));
  });

  it("refuses a check's caBundle naming the key that holds it, with the reason", () => {
    const refs = refsOf({ 'ConfigMap/ca/ca.crt': `${ca.certPem}-----BEGIN CERTIFICATE-----\n` });
    expect(tlsSettings({ caBundle: { configMapName: 'ca', key: 'ca.crt' } }, refs)).toEqual({
      refused: 'caBundle: ConfigMap ca key ca.crt block 2 is not a complete PEM block',
    });
  });
});
