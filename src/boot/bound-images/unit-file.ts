/**
 * systemd unit files (the quadlet `.image` and `.container` files that declare bound images), read
 * the way systemd's config_parse reads them, so a declaration means here what it means on the booted
 * machine:
 *
 * - Lines end at \n, \r or NUL, or any run of those three with each at most once and NUL last (\r\n,
 *   \n\r, \r\n\0, …), as systemd's read_line. A UTF-8 byte order mark is dropped from the first line
 *   that has one.
 * - A line whose first non-blank character is `#` or `;` is a comment and is skipped entirely, even in
 *   the middle of a continuation (it neither ends nor joins it).
 * - A line ending in an odd number of backslashes continues on the next line: the last backslash
 *   becomes a space and the next line is appended as it is (its leading blanks kept). An empty line ends
 *   a continuation; end of file ends one too.
 * - Blanks (space, tab, CR, LF) around a logical line, a key and a value are removed. `[Name]` opens a
 *   section (a repeated section adds to the first); a header not ending in `]`, or a name holding a
 *   control character, a quote or a backslash, is an error. A line without `=`, with an empty key, or
 *   before any section is ignored with a warning, as systemd does. Text that is not UTF-8 is an error.
 * - Keys are case-sensitive; the last assignment of a key in a section wins.
 *
 * Quoting is not part of the file syntax: each consumer unquotes its own keys. Quadlet (the consumer of
 * `Image=`) removes one pair of double quotes around the whole value and nothing else, and `unquote`
 * does exactly that. Hand-written: no npm INI parser implements systemd's continuation and comment rules.
 */
import { LadingError } from '../../errors.js';

export interface UnitAssignment {
  section: string;
  key: string;
  /** The value with surrounding blanks removed and continuations joined (quotes kept). */
  value: string;
  /** 1-based physical lines the assignment spans (more than one with continuations). */
  firstLine: number;
  lastLine: number;
}

export interface UnitFile {
  /** Every assignment in file order. */
  assignments: UnitAssignment[];
  /** Sections in the order first seen. */
  sections: string[];
  /** Lines systemd would ignore with a warning ("name:line: why"). */
  warnings: string[];
}

/** Unit files are small; systemd's own line limit is 1 MiB (LONG_LINE_MAX). */
export const MAX_UNIT_FILE_BYTES = 1024 * 1024;

const BOM = '\uFEFF';
const EOL = /(?:\r\n?|\n\r?)\0?|\0/g;
const BLANKS = ' \t\n\r';

interface PhysicalLine {
  text: string;
  /** 1-based. */
  number: number;
  /** Offsets in the text: where the line starts and where its terminator starts. */
  start: number;
  end: number;
}

/** Splits text into physical lines as systemd's read_line does. */
export function splitLines(text: string): PhysicalLine[] {
  const lines: PhysicalLine[] = [];
  let start = 0;
  for (const m of text.matchAll(EOL)) {
    lines.push({ text: text.slice(start, m.index), number: lines.length + 1, start, end: m.index });
    start = m.index + m[0].length;
  }
  if (start < text.length) lines.push({ text: text.slice(start), number: lines.length + 1, start, end: text.length });
  return lines;
}

/** Parses a unit file; `name` is used in messages. Throws INVALID_BOUND_IMAGE on what systemd refuses. */
export function parseUnitFile(input: Uint8Array | string, name: string): UnitFile {
  const text = typeof input === 'string' ? input : decode(input, name);
  const unit: UnitFile = { assignments: [], sections: [], warnings: [] };
  let section: string | undefined;
  let continuation: { text: string; firstLine: number } | undefined;
  let bomSeen = false;

  const logical = (raw: string, firstLine: number, lastLine: number): void => {
    const l = strip(raw);
    if (l === '') return;
    const where = `${name}:${lastLine}`;
    if (l.startsWith('[')) {
      if (!l.endsWith(']')) throw invalid(`invalid section header '${l}' in ${where}`, name);
      const header = l.slice(1, -1);
      if (!isSafe(header)) throw invalid(`bad characters in section header '${l}' in ${where}`, name);
      section = header;
      if (!unit.sections.includes(header)) unit.sections.push(header);
      return;
    }
    if (section === undefined) {
      unit.warnings.push(`${where}: assignment outside of a section, ignored`);
      return;
    }
    const eq = l.indexOf('=');
    if (eq < 0) {
      unit.warnings.push(`${where}: missing '=', line ignored`);
      return;
    }
    if (eq === 0) {
      unit.warnings.push(`${where}: missing key name before '=', line ignored`);
      return;
    }
    unit.assignments.push({ section, key: strip(l.slice(0, eq)), value: strip(l.slice(eq + 1)), firstLine, lastLine });
  };

  const lines = splitLines(text);
  for (const line of lines) {
    if (line.text.length > MAX_UNIT_FILE_BYTES) throw invalid(`line ${line.number} of ${name} is too long`, name);
    const first = skipBlanks(line.text);
    if (first !== '' && (first[0] === '#' || first[0] === ';')) continue;
    let l = line.text;
    if (!bomSeen && l.startsWith(BOM)) {
      l = l.slice(BOM.length);
      bomSeen = true;
    }
    const joined = continuation === undefined ? l : continuation.text + l;
    if (endsEscaped(joined)) {
      continuation = { text: `${joined.slice(0, -1)} `, firstLine: continuation?.firstLine ?? line.number };
      continue;
    }
    logical(joined, continuation?.firstLine ?? line.number, line.number);
    continuation = undefined;
  }
  if (continuation !== undefined) logical(continuation.text, continuation.firstLine, lines.length);
  return unit;
}

/** The last assignment of `key` in `section`, or undefined. */
export function lookupLast(unit: UnitFile, section: string, key: string): UnitAssignment | undefined {
  for (let i = unit.assignments.length - 1; i >= 0; i--) {
    const a = unit.assignments[i]!;
    if (a.section === section && a.key === key) return a;
  }
  return undefined;
}

/** Quadlet's unquoting of a single value: one pair of double quotes around the whole value goes. */
export function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
}

/**
 * Replaces the physical lines of `assignment` with `replacement` (one line, no terminator), keeping
 * every other byte of the file as it was, line terminators included.
 */
export function replaceAssignment(text: string, assignment: UnitAssignment, replacement: string): string {
  const lines = splitLines(text);
  const first = lines[assignment.firstLine - 1];
  const last = lines[assignment.lastLine - 1];
  if (first === undefined || last === undefined) throw new Error(`lines ${assignment.firstLine}-${assignment.lastLine} not in the file`);
  // A byte order mark stays in front of the file.
  const bom = first.start === 0 && text.startsWith(BOM) ? BOM : '';
  return text.slice(0, first.start) + bom + replacement + text.slice(last.end);
}

function decode(bytes: Uint8Array, name: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw invalid(`${name} is not valid UTF-8`, name);
  }
}

/** True when the text ends in a backslash that is not itself escaped by one before it. */
function endsEscaped(text: string): boolean {
  let escaped = false;
  for (const c of text) {
    if (escaped) escaped = false;
    else if (c === '\\') escaped = true;
  }
  return escaped;
}

function skipBlanks(s: string): string {
  let i = 0;
  while (i < s.length && BLANKS.includes(s[i]!)) i++;
  return s.slice(i);
}

function strip(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && BLANKS.includes(s[a]!)) a++;
  while (b > a && BLANKS.includes(s[b - 1]!)) b--;
  return s.slice(a, b);
}

/** systemd's string_is_safe: no control characters, quotes or backslashes. */
function isSafe(s: string): boolean {
  for (const c of s) {
    const code = c.codePointAt(0)!;
    if (code < 0x20 || code === 0x7f || c === '"' || c === "'" || c === '\\') return false;
  }
  return true;
}

function invalid(message: string, file: string): LadingError {
  return new LadingError('INVALID_BOUND_IMAGE', message, { file });
}
