import type { ControllerHost } from '../../runtime/host.ts';
import type { Rest } from '../../runtime/rest.ts';
import type { Throttle } from '../../runtime/throttle.ts';
import { EndpointsController, type EndpointsControllerOptions } from './controller.ts';
import { endpointsWriter } from './writer.ts';

/** The controller's own options, less the writer, which is built here from the client. */
export interface SelectorSetup extends Omit<EndpointsControllerOptions, 'writer' | 'clock'> {
  readonly rest: Rest;
  readonly throttle: Throttle;
}

/** Builds selector mode's endpoints controller and registers it with the manager. */
export function setupSelector(host: ControllerHost, s: SelectorSetup): EndpointsController {
  const { rest, throttle, ...options } = s;
  const c = new EndpointsController({
    ...options,
    writer: endpointsWriter(rest, s.metrics, throttle),
  });
  host.add({
    name: 'endpoints',
    controller: c.controller,
    run: () => c.run(),
    shutDown: () => {
      c.shutDown();
    },
  });
  return c;
}
