/** Test helpers: the three installer markers as bytes, and binaries built around them. */
import { randomBytes } from 'node:crypto';

export const IMAGE = Buffer.concat([Buffer.from('\0_RELEASE_IMAGE_LOCATION_\0', 'latin1'), Buffer.alloc(300, 'X'), Buffer.from([0])]);
export const VERSION = Buffer.concat([Buffer.from('\0_RELEASE_VERSION_LOCATION_\0', 'latin1'), Buffer.alloc(64, 'X'), Buffer.from([0])]);
export const ARCH = Buffer.concat([Buffer.from('\0_RELEASE_ARCHITECTURE_LOCATION_\0', 'latin1'), Buffer.alloc(64, 'X'), Buffer.from([0])]);

/** What oc writes: the value and a NUL over the start of the marker, the rest as it was. */
export function ocPatched(marker: Buffer, value: string): Buffer {
  const out = Buffer.from(marker);
  out.write(value, 0, 'latin1');
  out[value.length] = 0;
  return out;
}

/** Printable filler without NULs or X (like the string table of a Go binary). */
export function text(n: number): Buffer {
  const alphabet = 'abcdefghijklmnopqrstuvwyz0123456789 ./-_';
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = alphabet.charCodeAt(i % alphabet.length);
  return b;
}

/** Random bytes, as in machine code. */
export function noise(n: number): Buffer {
  return randomBytes(n);
}

export const DIGEST_A = `sha256:${'a'.repeat(64)}`;
