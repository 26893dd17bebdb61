import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs, one object per line on stderr (where klog and controller-runtime's zap write),
 * with `level` as a name and `ts` as RFC 3339 so that log pipelines need no pino-specific mapping.
 */
export function createLogger(level: string, destination = 2): Logger {
  return pino(
    {
      level,
      base: null,
      messageKey: 'msg',
      timestamp: () => `,"ts":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: destination, sync: true }),
  );
}
