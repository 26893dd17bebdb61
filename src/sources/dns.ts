// spec.dnsNames and spec.backup.dnsNames: the addresses each name resolves to now, as the resolver
// last saw them (a name not resolved yet, or failed, contributes none).
import type { ExternalBackendSpec } from '../api/externalbackend.ts';
import { zoneOf, type AddressSource, type Candidate, type SourceInput } from './source.ts';

function resolved(
  names: ExternalBackendSpec['dnsNames'],
  { spec, resolutions }: SourceInput,
  backup: boolean,
): Candidate[] {
  return names.flatMap((n) =>
    (resolutions.get(n.name)?.ips ?? []).map((ip) => ({
      ip,
      dnsName: n.name,
      ...(n.nodeName !== undefined ? { nodeName: n.nodeName } : {}),
      ...(n.drain === true ? { drain: true } : {}),
      ...zoneOf(n.zone ?? spec.zone),
      ...(backup ? { backup: true as const } : {}),
    })),
  );
}

export const dnsAddresses: AddressSource = {
  field: 'spec.dnsNames',
  addresses: (input) => resolved(input.spec.dnsNames, input, false),
};

export const backupDnsAddresses: AddressSource = {
  field: 'spec.backup.dnsNames',
  addresses: (input) => resolved(input.spec.backup?.dnsNames ?? [], input, true),
};
