/**
 * Like controller-runtime's SetupSignalHandler: the first SIGTERM or SIGINT aborts the returned signal
 * so that the operator can drain and exit 0; a second one exits at once with status 1.
 */
export function shutdownSignal(onSecond: () => never = () => process.exit(1)): AbortSignal {
  const controller = new AbortController();
  const handler = (): void => {
    if (controller.signal.aborted) onSecond();
    controller.abort();
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return controller.signal;
}

/** Reads the flag through a call so that narrowing does not assume it cannot change in an await. */
export function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

/** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Resolves when `signal` aborts. A pending promise does not keep Node's event loop alive, so an
 * interval timer holds the process open until then.
 */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const keepAlive = setInterval(() => undefined, 1 << 30);
    signal.addEventListener(
      'abort',
      () => {
        clearInterval(keepAlive);
        resolve();
      },
      { once: true },
    );
  });
}
