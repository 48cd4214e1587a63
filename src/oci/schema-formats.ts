/**
 * The two JSON Schema formats the OCI schemas use, which ajv 8 does not ship (see ./schema.ts): shared
 * by the validators compiled at run time and the ones compiled at build time
 * (scripts/gen-schema-validators.mjs), which import this module by name.
 */

/** RFC 3986 absolute URI: a scheme, then no whitespace or control characters, and WHATWG-parseable. */
export function isAbsoluteUri(s: string): boolean {
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  return /^[A-Za-z][A-Za-z0-9+.-]*:[^\s\u0000-\u001f\u007f]*$/.test(s) && URL.canParse(s);
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

/** RFC 3339 date-time (what JSON Schema's `date-time` means), with calendar and clock ranges checked. */
export function isDateTime(s: string): boolean {
  const m = RFC3339.exec(s);
  if (m === null) return false;
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, offH = 0, offM = 0] = m
    .slice(1)
    .map((x) => (x === undefined ? 0 : Number(x)));
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
  return day >= 1 && day <= days && hour <= 23 && minute <= 59 && second <= 60 && offH <= 23 && offM <= 59;
}

/** By format name, as ajv's `formats` option and the generated validators take them. */
export const schemaFormats = { uri: isAbsoluteUri, 'date-time': isDateTime };
