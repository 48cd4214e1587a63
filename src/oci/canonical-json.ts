/**
 * Canonical JSON for the manifests, indexes and index.json files Lading writes: a digest names bytes, so
 * the same content must always serialize to the same bytes. Keys are sorted by UTF-16 code unit order at
 * every depth (the order of `Array.prototype.sort`, as in RFC 8785), there is no whitespace, arrays keep
 * their order and `undefined` properties are left out.
 *
 * Strings are escaped like Go's encoding/json (Go 1.22 and later), not like JSON.stringify: `<`, `>`, `&`,
 * U+2028 and U+2029 become `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`; `"`, `\`, \b \f \n \r \t get
 * their short escapes and other control characters `\u00xx` (lowercase hex). Registries, containerd,
 * skopeo and crane are Go programs, so a string such as an annotation holding `a<b&c` encodes to the same
 * bytes whichever tool wrote it. (Go writes struct fields in declaration order and sorts map keys by UTF-8
 * bytes, so byte identity with a Go tool is about escaping, not key order.)
 *
 * Hand-written rather than a library: this is ~100 lines, the escaping differs from every RFC 8785
 * implementation on purpose, and what we refuse (non-plain objects, NaN, lone surrogates) is a decision.
 */

const HTML_AND_SEPARATORS = /[<>&\u2028\u2029]/g;
const ESCAPES: Readonly<Record<string, string>> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};
// In a /u regex a surrogate pair is one code point, so this matches only lone (unpaired) surrogates.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Serializes `value` canonically. Accepts plain objects (prototype Object.prototype or null), arrays,
 * strings, booleans, null, finite numbers (integers must be safe integers: larger ones have already lost
 * precision) and bigints (written as integers). Throws TypeError on anything else: Map, Set, Date, Buffer,
 * typed arrays, class instances, functions, symbols, NaN, ±Infinity, `undefined` as a value (other than as
 * an object property, which is omitted), strings with lone surrogates, and cycles.
 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  write(value, out, new Set(), '$');
  return out.join('');
}

/** `canonicalJson` encoded as UTF-8: the bytes a digest is computed over. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJson(value));
}

function write(value: unknown, out: string[], stack: Set<object>, path: string): void {
  switch (typeof value) {
    case 'string':
      out.push(quote(value, path));
      return;
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'number':
      out.push(number(value, path));
      return;
    case 'bigint':
      out.push(value.toString());
      return;
    case 'object':
      break;
    default:
      throw new TypeError(`canonical JSON: cannot encode ${typeof value} at ${path}`);
  }
  if (value === null) {
    out.push('null');
    return;
  }
  if (stack.has(value)) throw new TypeError(`canonical JSON: cycle at ${path}`);
  stack.add(value);
  if (Array.isArray(value)) {
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(',');
      const item: unknown = value[i];
      if (item === undefined) throw new TypeError(`canonical JSON: undefined array element at ${path}[${i}]`);
      write(item, out, stack, `${path}[${i}]`);
    }
    out.push(']');
  } else {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
      throw new TypeError(`canonical JSON: cannot encode ${typeof name === 'string' ? name : 'non-plain object'} at ${path}`);
    }
    const record = value as Record<string, unknown>;
    out.push('{');
    let first = true;
    for (const key of Object.keys(record).sort()) {
      const v = record[key];
      if (v === undefined) continue;
      if (!first) out.push(',');
      first = false;
      out.push(quote(key, path), ':');
      write(v, out, stack, `${path}.${key}`);
    }
    out.push('}');
  }
  stack.delete(value);
}

function quote(s: string, path: string): string {
  if (LONE_SURROGATE.test(s)) {
    throw new TypeError(`canonical JSON: string with an unpaired surrogate at ${path} has no UTF-8 encoding`);
  }
  // JSON.stringify already escapes `"`, `\` and control characters exactly as Go 1.22+ does; its output
  // never contains the five characters below except as themselves, so replacing them afterwards is safe.
  return JSON.stringify(s).replace(HTML_AND_SEPARATORS, (c) => ESCAPES[c] ?? c);
}

function number(n: number, path: string): string {
  if (!Number.isFinite(n)) throw new TypeError(`canonical JSON: ${n} at ${path} is not a finite number`);
  if (Number.isInteger(n) && !Number.isSafeInteger(n)) {
    throw new TypeError(`canonical JSON: ${n} at ${path} is beyond 2^53 and has lost precision; use a bigint`);
  }
  // -0 is written as 0, as JSON.stringify and RFC 8785 do.
  return JSON.stringify(n);
}
