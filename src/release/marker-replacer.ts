/**
 * The streaming core of pinning: finds the first occurrence of each marker in a byte stream of any size
 * and writes its value and one NUL over the start of it, as `oc adm release extract` does, holding only
 * one chunk plus the last (longest marker - 1) bytes in memory.
 *
 * A marker may be split across any number of chunks: the bytes that could still begin a marker are held
 * back and searched again with the next chunk. Unlike oc's copyAndReplace, which needs its read buffer to
 * be at least as long as the longest marker, this works with chunks of any size (one byte included).
 * Once every marker has been found the rest passes through untouched.
 */
import { LadingError } from '../errors.js';
import { checkReplacement, type Replacement } from './markers.js';

export interface MarkerMatch {
  name: string;
  /** Byte offset of the marker's first byte in the stream. */
  offset: number;
}

/**
 * Feed it chunks with `push`, then call `end`; each returns the bytes that are final. Chunks handed to
 * `push` are never modified (a chunk holding a marker is copied before it is patched) and may be reused
 * by the caller once `push` returns.
 */
export class MarkerReplacer {
  private carry: Buffer = Buffer.alloc(0);
  /** Stream offset of carry[0]. */
  private position = 0;
  private readonly pending: Replacement[];
  readonly matches: MarkerMatch[] = [];

  /** `patch: false` only locates the markers (the bytes come back unchanged). */
  constructor(
    replacements: readonly Replacement[],
    private readonly patch = true,
  ) {
    for (const r of replacements) if (patch) checkReplacement(r);
    for (const r of replacements) {
      if (r.marker.length === 0) throw new LadingError('USAGE', `the ${r.name} marker is empty`);
    }
    this.pending = [...replacements];
  }

  /** Names of the markers not found yet, sorted. */
  get remaining(): string[] {
    return this.pending.map((r) => r.name).sort();
  }

  get done(): boolean {
    return this.pending.length === 0;
  }

  push(chunk: Uint8Array): Buffer {
    if (chunk.length === 0) return Buffer.alloc(0);
    const input = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.pending.length === 0) return input;
    // The window is always a copy when it may be patched, so the caller's chunk is never changed.
    const window = this.carry.length > 0 || this.patch ? Buffer.concat([this.carry, input]) : input;
    const keep = matchWindow(window, this.pending, this.position, this.patch, this.matches);
    const cut = window.length - keep;
    // The held-back bytes are copied: `window` may be the caller's chunk, which it may reuse.
    this.carry = keep === 0 ? Buffer.alloc(0) : Buffer.from(window.subarray(cut));
    this.position += cut;
    return window.subarray(0, cut);
  }

  end(): Buffer {
    const rest = this.carry;
    this.position += rest.length;
    this.carry = Buffer.alloc(0);
    return rest;
  }
}

/**
 * Finds (and with `patch`, replaces) each of `pending` in `window`, whose first byte is at stream offset
 * `base`: the found ones move from `pending` to `matches`. Returns how many bytes at the end of the window
 * must be searched again with the next bytes (a marker still pending may begin there).
 */
export function matchWindow(window: Buffer, pending: Replacement[], base: number, patch: boolean, matches: MarkerMatch[]): number {
  for (let i = 0; i < pending.length;) {
    const r = pending[i]!;
    const at = window.indexOf(r.marker);
    if (at === -1) {
      i++;
      continue;
    }
    if (patch) {
      window.set(r.value, at);
      window[at + r.value.length] = 0;
    }
    matches.push({ name: r.name, offset: base + at });
    pending.splice(i, 1);
  }
  let keep = 0;
  for (const r of pending) keep = Math.max(keep, r.marker.length - 1);
  return Math.min(keep, window.length);
}

/**
 * Copies `source` to `write`, replacing markers on the way. Returns what was found; the caller decides
 * whether markers still missing are an error (pin) or a warning (extract).
 */
export async function copyReplacing(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  write: (bytes: Buffer) => Promise<void> | void,
  replacements: readonly Replacement[],
): Promise<{ matches: MarkerMatch[]; remaining: string[]; bytes: number }> {
  const replacer = new MarkerReplacer(replacements);
  let bytes = 0;
  for await (const chunk of source) {
    const out = replacer.push(chunk);
    if (out.length > 0) await write(out);
    bytes += chunk.length;
  }
  const tail = replacer.end();
  if (tail.length > 0) await write(tail);
  return { matches: replacer.matches, remaining: replacer.remaining, bytes };
}
