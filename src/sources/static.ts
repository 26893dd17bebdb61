// spec.addresses: IPs written in the spec, with their optional nodeName and hostname.
import { zoneOf, type AddressSource } from './source.ts';

export const staticAddresses: AddressSource = {
  field: 'spec.addresses',
  addresses: ({ spec }) =>
    spec.addresses.map((a) => ({
      ip: a.ip,
      ...(a.nodeName !== undefined ? { nodeName: a.nodeName } : {}),
      ...(a.hostname !== undefined ? { hostname: a.hostname } : {}),
      ...(a.drain === true ? { drain: true } : {}),
      ...zoneOf(a.zone ?? spec.zone),
    })),
};
