/**
 * The byte-level pieces of the composefs-dump(5) text format: its backslash escapes (both ways) and
 * its integers, which upstream reads with C `strtoull` (leading blanks and a sign accepted, wrapping
 * modulo 2^64). Kept apart from the line grammar so the parser and writer share one definition.
 */

export class DumpSyntaxError extends Error {}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Decodes `\\`, `\n`, `\r`, `\t` and `\xHH`; any other escape is an error, as upstream. */
export function unescape(field: Uint8Array): Buffer {
  if (!field.includes(0x5c)) return Buffer.from(field);
  const out = Buffer.allocUnsafe(field.length);
  let o = 0;
  for (let i = 0; i < field.length;) {
    const c = field[i++]!;
    if (c !== 0x5c) {
      out[o++] = c;
      continue;
    }
    if (i >= field.length) throw new DumpSyntaxError('a backslash ends the field with nothing after it');
    const e = field[i++]!;
    if (e === 0x5c) out[o++] = 0x5c;
    else if (e === 0x6e) out[o++] = 0x0a;
    else if (e === 0x72) out[o++] = 0x0d;
    else if (e === 0x74) out[o++] = 0x09;
    else if (e === 0x78) {
      if (i + 2 > field.length) throw new DumpSyntaxError('\\x needs two hex digits');
      const hi = hexValue(field[i]!);
      const lo = hexValue(field[i + 1]!);
      if (hi < 0 || lo < 0) throw new DumpSyntaxError('\\x is followed by something that is not two hex digits');
      out[o++] = (hi << 4) | lo;
      i += 2;
    } else {
      throw new DumpSyntaxError(`unsupported escape \\${String.fromCharCode(e)}`);
    }
  }
  return out.subarray(0, o);
}

/** A field where a lone `-` means "absent". */
export function unescapeOptional(field: Uint8Array): Buffer | undefined {
  if (field.length === 1 && field[0] === 0x2d) return undefined;
  return unescape(field);
}

const ISSPACE = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);
const U64 = 1n << 64n;

/** C `strtoull` on the whole field (base 8 or 10), refusing empty fields and trailing garbage. */
export function parseUnsigned(field: Uint8Array, base: 8 | 10, what: string): bigint {
  let i = 0;
  while (i < field.length && ISSPACE.has(field[i]!)) i++;
  let negative = false;
  if (field[i] === 0x2b || field[i] === 0x2d) negative = field[i++] === 0x2d;
  const start = i;
  let v = 0n;
  const b = BigInt(base);
  for (; i < field.length; i++) {
    const d = field[i]! - 0x30;
    if (d < 0 || d >= base) break;
    v = v * b + BigInt(d);
  }
  if (field.length === 0 || i === start || i !== field.length) {
    throw new DumpSyntaxError(`invalid ${what} ${JSON.stringify(Buffer.from(field).toString('latin1'))}`);
  }
  if (v >= U64) return U64 - 1n; // strtoull saturates on overflow
  return negative && v > 0n ? U64 - v : v;
}

/** Hex-escapes what upstream escapes: non-graphic bytes (space included unless `keepSpace`), `\`, and `=` in xattrs. */
export function escape(bytes: Uint8Array, opts: { equal?: boolean; loneDash?: boolean } = {}): string {
  if (opts.loneDash && bytes.length === 1 && bytes[0] === 0x2d) return '\\x2d';
  let s = '';
  for (const c of bytes) {
    if (c === 0x5c) s += '\\\\';
    else if (c === 0x0a) s += '\\n';
    else if (c === 0x0d) s += '\\r';
    else if (c === 0x09) s += '\\t';
    else if ((c === 0x3d && opts.equal) || c <= 0x20 || c >= 0x7f) s += `\\x${c.toString(16).padStart(2, '0')}`;
    else s += String.fromCharCode(c);
  }
  return s;
}
