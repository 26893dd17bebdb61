// What happens to an error nothing else handled. Every reconcile, probe and watch handler runs
// inside a "concern" (the object it works on, kept in AsyncLocalStorage, which follows timers and
// promises), so the last-resort handlers can say which object an escaped error came from.
//
// When the process exits:
// - an error that concerns an object (thrown while reconciling it, probing one of its addresses or
//   handling its watch event) is contained: logged with the object, counted, and the process keeps
//   serving every other object. Exiting would let one hostile object crash every replica that takes
//   the lease, in a loop;
// - an uncaught exception with no object is a bug in outrigger's own machinery (leader election,
//   servers, informer loops): logged, counted, and the process exits 1 so that Kubernetes restarts
//   it in a known state;
// - an unhandled rejection with no object is logged and counted only: a rejected promise leaves no
//   half-run synchronous code behind, and its caller has already moved on.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from './log.ts';

/** The object an operation works on, e.g. { controller: 'externalbackend', object: 'ns/name' }. */
export type Concern = Readonly<Record<string, string>>;

const store = new AsyncLocalStorage<Concern>();

/** Runs `fn` (and everything it schedules) as work on behalf of `concern`. */
export function withConcern<T>(concern: Concern, fn: () => T): T {
  return store.run(concern, fn);
}

export function currentConcern(): Concern | undefined {
  return store.getStore();
}

/** Where an error came from; a bounded label value. */
export type ErrorSource =
  'uncaughtException' | 'unhandledRejection' | 'probe' | 'informer-transform' | 'informer-handler';

export type ErrorReporter = (source: ErrorSource, err: unknown) => void;

export function errorReporter(log: Logger, count: (source: ErrorSource) => void): ErrorReporter {
  return (source, err) => {
    count(source);
    log.error(
      {
        source,
        concern: currentConcern(),
        err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err),
      },
      'unhandled error',
    );
  };
}

/**
 * Installs process-wide handlers for uncaught exceptions and unhandled rejections; returns a
 * function that removes them. `exit` is called for an uncaught exception that concerns no object.
 */
export function installLastResort(
  report: ErrorReporter,
  exit: (code: number) => void = (code) => process.exit(code),
): () => void {
  const onException = (err: unknown): void => {
    const concerned = currentConcern() !== undefined;
    report('uncaughtException', err);
    if (!concerned) exit(1);
  };
  const onRejection = (err: unknown): void => {
    report('unhandledRejection', err);
  };
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}
