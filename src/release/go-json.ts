/**
 * JSON written the way Go's `json.MarshalIndent(v, "", "  ")` writes it, which is how oc writes a
 * release's `image-references` and `release-metadata`: two-space indent, `"key": value`, empty objects
 * and arrays as `{}` and `[]`, no final newline, and Go's string escaping (`<`, `>`, `&`, U+2028 and
 * U+2029 as `\u003c`…). Key order is the caller's: objects standing for Go structs keep their field order
 * as built, objects standing for Go maps must be built with sorted keys (`sortedRecord`).
 *
 * Not canonical-json.ts: that sorts every object and writes no whitespace, for digests; these files are
 * read by people and by OpenShift tools that expect oc's layout.
 */
const GO_ESCAPES: Readonly<Record<string, string>> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

function quote(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c] ?? c);
}

export function goMarshalIndent(value: unknown, indent = ''): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`cannot encode ${value} as JSON`);
    return JSON.stringify(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => inner + goMarshalIndent(v, inner)).join(',\n')}\n${indent}]`;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([k, v]) => `${inner}${quote(k)}: ${goMarshalIndent(v, inner)}`).join(',\n')}\n${indent}}`;
  }
  throw new TypeError(`cannot encode a ${typeof value} as JSON`);
}

/** `value` with every object's keys in Go's map order (sorted by bytes), at every depth: a Go map[string]interface{}. */
export function goMapOrder(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(goMapOrder);
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(record).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) out[key] = goMapOrder(record[key]);
  return out;
}
