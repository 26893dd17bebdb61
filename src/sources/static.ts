// spec.addresses and spec.backup.addresses: IPs written in the spec, with their optional nodeName
// and hostname.
import type { ExternalBackendSpec } from '../api/externalbackend.ts';
import { zoneOf, type AddressSource, type Candidate } from './source.ts';

function listed(
  list: ExternalBackendSpec['addresses'],
  spec: ExternalBackendSpec,
  backup: boolean,
): Candidate[] {
  return list.map((a) => ({
    ip: a.ip,
    ...(a.nodeName !== undefined ? { nodeName: a.nodeName } : {}),
    ...(a.hostname !== undefined ? { hostname: a.hostname } : {}),
    ...(a.drain === true ? { drain: true } : {}),
    ...zoneOf(a.zone ?? spec.zone),
    ...(backup ? { backup: true as const } : {}),
  }));
}

export const staticAddresses: AddressSource = {
  field: 'spec.addresses',
  addresses: ({ spec }) => listed(spec.addresses, spec, false),
};

export const backupStaticAddresses: AddressSource = {
  field: 'spec.backup.addresses',
  addresses: ({ spec }) => listed(spec.backup?.addresses ?? [], spec, true),
};
