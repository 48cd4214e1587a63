/** Parsers for option values that many commands share (commander calls them with each value given). */
import { LadingError } from '../errors.js';

/** A repeatable option: every value, in order. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** A count such as --jobs: a whole number of at least 1. */
export function positive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new LadingError('USAGE', `${flag} takes a whole number of at least 1`);
  return n;
}
