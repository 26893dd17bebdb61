// The per-backend metric series: set from what a reconcile planned (finish.ts), removed when the
// backend goes. outrigger_backend_ready_status has one series per backend whose labels change with
// its Ready reason, so the previous one is remembered (in the backend's state) and removed.
import type { Metrics } from '../../runtime/metrics.ts';
import { addressStates, type Observed } from './finish.ts';
import type { ReadySeries } from './state.ts';

type BackendMetrics = Pick<
  Metrics,
  'backendAddresses' | 'backendReady' | 'certificateExpiry' | 'backupsActive'
>;

/** Sets the backend's series; returns the Ready series it now shows. */
export function observe(
  metrics: BackendMetrics,
  namespace: string,
  name: string,
  previous: ReadySeries | undefined,
  o: Observed,
): ReadySeries {
  for (const state of addressStates)
    metrics.backendAddresses.set(
      { namespace, name, state: state.toLowerCase() },
      o.addresses[state],
    );
  const ready = { namespace, name, status: o.ready.status, reason: o.ready.reason };
  if (
    previous !== undefined &&
    (previous.status !== ready.status || previous.reason !== ready.reason)
  )
    metrics.backendReady.remove(previous);
  metrics.backendReady.set(ready, 1);
  if (o.certificateExpiry === undefined) metrics.certificateExpiry.remove({ namespace, name });
  else metrics.certificateExpiry.set({ namespace, name }, o.certificateExpiry);
  if (o.backupsActive === undefined) metrics.backupsActive.remove({ namespace, name });
  else metrics.backupsActive.set({ namespace, name }, o.backupsActive ? 1 : 0);
  return ready;
}

/** Removes every series of a backend that is gone. */
export function unobserve(
  metrics: BackendMetrics,
  namespace: string,
  name: string,
  ready: ReadySeries | undefined,
): void {
  for (const state of addressStates)
    metrics.backendAddresses.remove({ namespace, name, state: state.toLowerCase() });
  if (ready !== undefined) metrics.backendReady.remove(ready);
  metrics.certificateExpiry.remove({ namespace, name });
  metrics.backupsActive.remove({ namespace, name });
}
