import { readFileSync } from 'node:fs';

/** The package version, read once; works from src/ (development) and dist/ (built) alike. */
export const version: string = (() => {
  const raw: unknown = JSON.parse(
    readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
  );
  const v = (raw as { version?: unknown }).version;
  return typeof v === 'string' ? v : 'unknown';
})();

/** What outrigger sends as User-Agent, in client-go's form. */
export const userAgent = `outrigger/${version} (${process.platform}/${process.arch})`;
