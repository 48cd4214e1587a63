/** How the CLI talks to people and scripts: JSON or human text on stdout, one-line errors and progress on stderr. */

import { isLadingError } from '../errors.js';

export type OutputFormat = 'text' | 'json';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export function shortDigest(d: string): string {
  const colon = d.indexOf(':');
  return `${d.slice(0, colon + 13)}`;
}

/** Exit codes: 0 ok, 1 failure, 2 usage error (as skopeo and the conventions say). */
export class UsageError extends Error {}

/** Prints an error as one line (or with its stack under --debug) and returns the exit code. */
export function reportError(e: unknown, debug: boolean): number {
  if (e instanceof UsageError) {
    process.stderr.write(`lading: ${e.message}\n`);
    return 2;
  }
  if (isLadingError(e)) {
    process.stderr.write(`lading: ${e.message}\n`);
    if (debug && e.stack) process.stderr.write(`${e.stack}\n`);
    return e.code === 'USAGE' ? 2 : 1;
  }
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`lading: ${message}${debug ? '' : ' (unexpected error: rerun with --debug for details)'}\n`);
  if (debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return 1;
}
