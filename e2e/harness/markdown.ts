// Writes a generated page as the formatter would, so that a page regenerated from a run passes
// `npm run format:check` as committed (the CI run checks every Markdown file in the tree).
import { writeFileSync } from 'node:fs';
import { format, resolveConfig } from 'prettier';

export async function writeFormatted(file: string, text: string): Promise<void> {
  const options = (await resolveConfig(file)) ?? {};
  writeFileSync(file, await format(text, { ...options, filepath: file }));
}
