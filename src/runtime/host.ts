import type { Controller } from './runner.ts';

/**
 * A controller as the manager runs it: started once the caches have synced and the lease is held,
 * checked for a stuck reconcile, and drained on shutdown.
 */
export interface Runnable {
  readonly name: string;
  readonly controller: Controller;
  run(): Promise<void>;
  shutDown(): void | Promise<void>;
}

/**
 * What a controller's setup registers itself with: controller-runtime's SetupWithManager idea, in
 * small. A controller's own folder says what it needs and how it is built; the manager only
 * supplies the caches and settings and runs whatever registered.
 */
export interface ControllerHost {
  add(r: Runnable): void;
}
