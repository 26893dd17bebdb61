import { describe, expect, it } from '@jest/globals';
import { maxProbeSourceValueBytes } from './cached.ts';
import {
  transformConfigMap,
  transformEndpoints,
  transformPod,
  transformSecret,
  transformService,
} from './transforms.ts';

const managedFields = [{ manager: 'kubelet', operation: 'Update', time: '2026-01-01T00:00:00Z' }];

describe('informer transforms', () => {
  it('keeps only what the endpoints controller reads of a pod, with Date timestamps', () => {
    const raw = {
      metadata: {
        name: 'p',
        namespace: 'ns',
        uid: 'u',
        resourceVersion: '7',
        labels: { app: 'web' },
        annotations: { big: 'x'.repeat(1000) },
        managedFields,
        deletionTimestamp: '2026-01-02T00:00:00Z',
      },
      spec: {
        nodeName: 'n',
        hostname: 'h',
        subdomain: 's',
        volumes: [{ name: 'v' }],
        containers: [
          {
            name: 'c',
            image: 'i',
            env: [{ name: 'A', value: 'B' }],
            ports: [{ name: 'http', containerPort: 80 }],
          },
        ],
        initContainers: [
          {
            name: 'side',
            image: 'i',
            restartPolicy: 'Always',
            ports: [{ name: 'p', containerPort: 81 }],
          },
        ],
      },
      status: {
        phase: 'Running',
        podIP: '10.0.0.1',
        podIPs: [{ ip: '10.0.0.1' }],
        containerStatuses: [{ name: 'c' }],
        conditions: [
          { type: 'PodScheduled', status: 'True' },
          { type: 'Ready', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' },
        ],
      },
    };
    expect(transformPod(raw)).toEqual({
      metadata: {
        name: 'p',
        namespace: 'ns',
        uid: 'u',
        resourceVersion: '7',
        labels: { app: 'web' },
        deletionTimestamp: new Date('2026-01-02T00:00:00Z'),
      },
      spec: {
        nodeName: 'n',
        hostname: 'h',
        subdomain: 's',
        containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 80 }] }],
        initContainers: [
          { name: 'side', restartPolicy: 'Always', ports: [{ name: 'p', containerPort: 81 }] },
        ],
      },
      status: {
        phase: 'Running',
        podIP: '10.0.0.1',
        podIPs: [{ ip: '10.0.0.1' }],
        conditions: [
          { type: 'Ready', status: 'True', lastTransitionTime: new Date('2026-01-01T00:00:00Z') },
        ],
      },
    });
  });

  it('accepts typed list items whose timestamps are already Dates', () => {
    const created = new Date('2026-01-01T00:00:00Z');
    expect(
      transformService({ metadata: { name: 's', creationTimestamp: created } }).metadata
        ?.creationTimestamp,
    ).toEqual(created);
  });

  it('keeps the Service fields that decide membership and ports', () => {
    const raw = {
      metadata: {
        name: 's',
        namespace: 'ns',
        managedFields,
        creationTimestamp: '2026-01-01T00:00:00Z',
      },
      spec: {
        selector: { app: 'web' },
        type: 'ClusterIP',
        clusterIP: '10.96.0.1',
        clusterIPs: ['10.96.0.1'],
        ipFamilies: ['IPv4'],
        ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
        publishNotReadyAddresses: true,
        sessionAffinity: 'None',
      },
    };
    expect(transformService(raw).spec).toEqual({
      selector: { app: 'web' },
      type: 'ClusterIP',
      clusterIP: '10.96.0.1',
      ipFamilies: ['IPv4'],
      ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
      publishNotReadyAddresses: true,
    });
  });

  it('keeps Endpoints whole but for managedFields, because they are written back', () => {
    const raw = {
      metadata: {
        name: 'e',
        namespace: 'ns',
        managedFields,
        annotations: { a: 'b' },
        ownerReferences: [{ uid: 'x' }],
      },
      subsets: [{ addresses: [{ ip: '10.0.0.1' }] }],
    };
    const ep = transformEndpoints(raw);
    expect(ep.metadata).toEqual({
      name: 'e',
      namespace: 'ns',
      annotations: { a: 'b' },
      ownerReferences: [{ uid: 'x' }],
    });
    expect(ep.subsets).toEqual(raw.subsets);
  });

  it('keeps the text keys of labelled Secrets and ConfigMaps, and only names a value too large', () => {
    const big = 'x'.repeat(maxProbeSourceValueBytes + 1);
    const metadata = { name: 's', namespace: 'ns', managedFields, annotations: { a: 'b' } };
    const secret = transformSecret({
      metadata,
      type: 'Opaque',
      data: {
        token: Buffer.from('t0k\n').toString('base64'),
        big: Buffer.from(big).toString('base64'),
      },
    });
    expect(secret).toEqual({
      metadata: { name: 's', namespace: 'ns' },
      data: { token: 't0k\n' },
      oversized: ['big'],
    });
    const cm = transformConfigMap({
      metadata,
      data: { 'ca.crt': 'pem', big },
      binaryData: { b: 'AAAA' },
    });
    expect(cm.data).toEqual({ 'ca.crt': 'pem' });
    expect(cm.oversized).toEqual(['big']);
    expect(transformConfigMap({ metadata, data: { k: 'v' } })).not.toHaveProperty('oversized');
    // Exactly at the limit is kept, whatever the base64 padding.
    for (const n of [0, 1, 2].map((d) => maxProbeSourceValueBytes - d)) {
      const value = Buffer.from('y'.repeat(n)).toString('base64');
      expect(transformSecret({ metadata, data: { v: value } })).not.toHaveProperty('oversized');
    }
  });
});
