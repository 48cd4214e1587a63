/**
 * `lading pin --show`: reads back what a binary's markers hold, streaming it (any size, bounded memory).
 *
 * An untouched marker is found whole. A pinned one no longer starts with the marker's name, so it is
 * found by what pinning left intact at its end: the `X` padding and the final NUL. From there the
 * marker's full length is read backwards and interpreted as the program would (markers.ts): the value
 * runs up to the first NUL, and everything after that NUL must still be the marker's own bytes. A value
 * with no NUL before the padding is reported as an error, as the installer reports it.
 *
 * Limits, by construction: a value that fills its marker completely (so no `X` is left: 325 or 326 bytes
 * for the release image) cannot be found this way, and a binary pinned with the installer's old sed
 * script (which turns the final NUL into an `X`) is recognised only when a NUL happens to follow it.
 * When one tail could belong to two markers (a very long value leaves as few `X` as another marker's
 * padding), the marker found elsewhere wins; if neither is, the result says it is ambiguous.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { fsError, LadingError } from '../errors.js';
import { MARKER_KINDS, MARKERS, type MarkerKind, type MarkerSpec } from './markers.js';

export type ShownValue =
  | { state: 'unpatched'; offset: number }
  | { state: 'pinned'; value: string; offset: number }
  | { state: 'missing' }
  | { state: 'invalid'; offset: number; message: string };

export interface ShowResult {
  path: string;
  values: Record<MarkerKind, ShownValue>;
}

interface Candidate {
  kind: MarkerKind;
  /** Offset of the marker's first byte. */
  offset: number;
  /** Offset of the final NUL (the anchor several markers may claim). */
  end: number;
  value: ShownValue;
  /** How much of the marker is known to be intact: more means less likely to be a coincidence. */
  strength: number;
}

const CHUNK = 1 << 20;
const ANCHOR = Buffer.from([0x58, 0]); // "X" NUL: where the padding meets the final NUL
const MAX_LENGTH = Math.max(...MARKER_KINDS.map((k) => MARKERS[k].bytes.length));

/** Reads the markers of the file at `path`. */
export async function showPinned(path: string): Promise<ShowResult> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
    if ((await fh.stat()).isDirectory()) {
      await fh.close();
      throw new LadingError('USAGE', `${path} is a directory, not a binary: name the executable file`, { path });
    }
  } catch (e) {
    throw fsError(e, 'read', path);
  }
  const scanner = new PinnedScanner();
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      scanner.push(buf.subarray(0, bytesRead));
    }
  } catch (e) {
    throw fsError(e, 'read', path);
  } finally {
    await fh.close();
  }
  return { path, values: scanner.result() };
}

/** The streaming part of showPinned, usable on any byte source. */
export class PinnedScanner {
  /** The last MAX_LENGTH - 1 bytes seen: enough to look back a whole marker from an anchor in the next chunk. */
  private carry = Buffer.alloc(0);
  private position = 0;
  private readonly candidates: Candidate[] = [];

  push(chunk: Uint8Array): void {
    const window = Buffer.concat([this.carry, chunk]);
    const base = this.position - this.carry.length;
    // Anchors whose final NUL lies in the carry were examined with the previous chunk.
    for (let at = window.indexOf(ANCHOR, Math.max(0, this.carry.length - 1)); at !== -1; at = window.indexOf(ANCHOR, at + 1)) {
      this.examine(window, at + 1, base);
    }
    const keep = Math.min(window.length, MAX_LENGTH - 1);
    this.carry = Buffer.from(window.subarray(window.length - keep));
    this.position += chunk.length;
  }

  /** Looks at the tail ending with the NUL at window[end] as the end of each marker. */
  private examine(window: Buffer, end: number, base: number): void {
    let xs = 0;
    while (end - 1 - xs >= 0 && window[end - 1 - xs] === 0x58 && xs <= 300) xs++;
    for (const kind of MARKER_KINDS) {
      const m = MARKERS[kind];
      if (xs > m.padding) continue;
      const start = end - m.bytes.length + 1;
      if (start < 0) continue;
      const c = interpret(window.subarray(start, end + 1), m, xs, base + start);
      if (c) this.candidates.push({ kind, offset: base + start, end: base + end, ...c });
    }
  }

  result(): Record<MarkerKind, ShownValue> {
    const out = {} as Record<MarkerKind, ShownValue>;
    for (const kind of MARKER_KINDS) {
      const mine = this.candidates.filter((c) => c.kind === kind);
      // A tail that another marker explains at least as well belongs to this one only when that marker
      // is found, more surely, somewhere else.
      const rivalsOf = (c: Candidate) =>
        this.candidates.filter((r) => r.kind !== kind && r.end === c.end && r.strength >= c.strength && !this.strongerElsewhere(r));
      const best = pickBest(mine.filter((c) => rivalsOf(c).length === 0));
      if (best) {
        out[kind] = best.value;
        continue;
      }
      const tied = pickBest(mine.filter((c) => rivalsOf(c).every((r) => r.strength === c.strength)));
      out[kind] = tied
        ? {
            state: 'invalid',
            offset: tied.offset,
            message: `the tail at offset ${tied.offset} could end the ${MARKERS[kind].name} marker or the ${rivalsOf(tied)
              .map((r) => MARKERS[r.kind].name)
              .join(' or ')} marker: cannot tell which`,
          }
        : { state: 'missing' };
    }
    return out;
  }

  /** True when `c`'s marker has a candidate stronger than `c` at another place. */
  private strongerElsewhere(c: Candidate): boolean {
    return this.candidates.some((o) => o.kind === c.kind && o.end !== c.end && o.strength > c.strength);
  }
}

/** The strongest candidate, the earliest among equals. */
function pickBest(cs: readonly Candidate[]): Candidate | undefined {
  let best: Candidate | undefined;
  for (const c of cs) if (!best || c.strength > best.strength) best = c;
  return best;
}

/** What a marker-long window ending in its padding and final NUL says, or undefined if it is not this marker. */
function interpret(w: Buffer, m: MarkerSpec, xs: number, offset: number): Pick<Candidate, 'value' | 'strength'> | undefined {
  const length = m.bytes.length;
  if (w.equals(m.bytes)) return { value: { state: 'unpatched', offset }, strength: length + 1 };
  const nul = w.indexOf(0);
  if (nul === 0) return undefined;
  if (nul === length - 1) {
    // No NUL before the final one: the value was written without its terminator, running into the padding.
    if (!printable(w.subarray(0, length - 1 - xs))) return undefined;
    const message = `the ${m.name} at offset ${offset} was replaced but without a NUL terminator: the value runs into the ${xs} X of padding left`;
    return { value: { state: 'invalid', offset, message }, strength: xs + 1 };
  }
  if (!w.subarray(nul + 1).equals(m.bytes.subarray(nul + 1))) return undefined;
  const value = w.subarray(0, nul);
  if (!printable(value)) return undefined;
  return { value: { state: 'pinned', value: value.toString('latin1'), offset }, strength: length - nul };
}

/** Printable ASCII: what pull specs, versions and architectures are made of. */
function printable(b: Uint8Array): boolean {
  for (const c of b) if (c < 0x20 || c > 0x7e) return false;
  return true;
}
