// The server's small config files (API keys, prices, routing): read once at start; a bad one
// stops the server with a message that names the file and, for line formats, the line.
import { readFileSync } from 'node:fs';

export class ConfigFileError extends Error {
  override name = 'ConfigFileError';
}

export function readConfigFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigFileError(`cannot read the ${what} file ${path}: ${(e as Error).message}`);
  }
}

/** Lines with their numbers, `#` comments and blank lines left out. */
export function contentLines(text: string): Array<{ n: number; line: string }> {
  return text
    .split(/\r?\n/)
    .map((line, i) => ({ n: i + 1, line: line.replace(/(^|\s)#.*$/, '').trim() }))
    .filter((l) => l.line !== '');
}
