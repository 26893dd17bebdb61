// spec.dnsNames: the addresses each name resolves to now, as the resolver last saw them (a name
// not resolved yet, or failed, contributes none).
import { zoneOf, type AddressSource } from './source.ts';

export const dnsAddresses: AddressSource = {
  field: 'spec.dnsNames',
  addresses: ({ spec, resolutions }) =>
    spec.dnsNames.flatMap((n) =>
      (resolutions.get(n.name)?.ips ?? []).map((ip) => ({
        ip,
        dnsName: n.name,
        ...(n.nodeName !== undefined ? { nodeName: n.nodeName } : {}),
        ...(n.drain === true ? { drain: true } : {}),
        ...zoneOf(n.zone ?? spec.zone),
      })),
    ),
};
