/**
 * The streaming marker replacer against the situations oc's own table (Test_copyAndReplace in
 * pkg/cli/admin/release/extract_tools_test.go) checks, restated here with our own inputs: tiny markers
 * (`aa`, `bb`) fed in 4-byte reads, so that every position relative to a read boundary is exercised.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { copyReplacing, MarkerReplacer } from '../../src/release/marker-replacer.js';
import type { Replacement } from '../../src/release/markers.js';

const rep = (name: string, marker: string, value: string): Replacement => ({
  name,
  marker: Buffer.from(marker),
  value: Buffer.from(value),
});
const A = rep('rep-A', 'aa', 'A');
const B = rep('rep-B', 'bb', 'B');

/** Feeds `input` in `size`-byte reads; returns the output and what was (not) found. */
async function run(input: string, replacements: Replacement[], size = 4) {
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.length; i += size) chunks.push(Buffer.from(input.slice(i, i + size)));
  const out: Buffer[] = [];
  const r = await copyReplacing(chunks, (b) => void out.push(Buffer.from(b)), replacements);
  return { output: Buffer.concat(out).toString('latin1'), remaining: r.remaining, matches: r.matches };
}

describe('MarkerReplacer (the cases of oc Test_copyAndReplace, in 4-byte reads)', () => {
  const cases: { what: string; input: string; reps: Replacement[]; output: string; remaining?: string[] }[] = [
    { what: 'no replacements: a short input passes through', input: '123', reps: [], output: '123' },
    { what: 'marker at the very start', input: 'aa345678', reps: [A], output: 'A\x00345678' },
    { what: 'marker ending a read', input: '12aa5678', reps: [A], output: '12A\x005678' },
    { what: 'marker split across two reads', input: '123aa678', reps: [A], output: '123A\x00678' },
    { what: 'marker starting a read', input: '1234aa78', reps: [A], output: '1234A\x0078' },
    { what: 'marker at the very end', input: '123456aa', reps: [A], output: '123456A\x00' },
    { what: 'marker in a short last read', input: '12345aa', reps: [A], output: '12345A\x00' },
    { what: 'two markers, A then B, at the start', input: 'aabb5678', reps: [A, B], output: 'A\x00B\x005678' },
    { what: 'two markers, B then A, at the start', input: 'bbaa5678', reps: [A, B], output: 'B\x00A\x005678' },
    { what: 'two markers filling the second read', input: '1234aabb', reps: [A, B], output: '1234A\x00B\x00' },
    { what: 'two markers, one across reads', input: '123aa6bb', reps: [A, B], output: '123A\x006B\x00' },
    { what: 'two markers, B then A, at the end', input: '1234bbaa', reps: [A, B], output: '1234B\x00A\x00' },
    { what: 'a missing marker: bytes unchanged, reported', input: '1234', reps: [A], output: '1234', remaining: ['rep-A'] },
    { what: 'one of two missing: the other replaced', input: '1234bb', reps: [A, B], output: '1234B\x00', remaining: ['rep-A'] },
    { what: 'only the first occurrence is replaced', input: 'aa3aa6aa', reps: [A], output: 'A\x003aa6aa' },
  ];
  for (const c of cases) {
    it(c.what, async () => {
      const r = await run(c.input, c.reps);
      assert.equal(r.output, c.output);
      assert.deepEqual(r.remaining, c.remaining ?? []);
    });
  }

  it('refuses a value longer than its marker less one, before reading anything', () => {
    assert.throws(
      () => new MarkerReplacer([rep('rep-A', 'aa', 'AA')]),
      (e: unknown) => isLadingError(e, 'USAGE') && e.message === 'the rep-A value has 2 bytes, but the maximum replacement length is 1',
    );
  });

  it('a value of exactly marker length - 1 fills the marker, its NUL taking the last byte', async () => {
    const r = await run('12abc5', [rep('r', 'abc', 'XY')]);
    assert.equal(r.output, '12XY\x005');
  });

  // oc refuses reads shorter than the longest marker ("the buffer size must be greater than 5 bytes");
  // this replacer holds back a partial marker across any number of reads, so short reads still find it.
  it('a marker longer than the read size is still found (oc would refuse the buffer size)', async () => {
    const r = await run('12aaaaa89', [rep('rep-A', 'aaaaa', 'A')], 4);
    assert.equal(r.output, '12A\x00aaa89');
    const one = await run('12aaaaa89', [rep('rep-A', 'aaaaa', 'A')], 1);
    assert.equal(one.output, '12A\x00aaa89');
    const missing = await run('1234', [rep('rep-A', 'aaaaa', 'A')], 4);
    assert.deepEqual([missing.output, missing.remaining], ['1234', ['rep-A']]);
  });

  it('gives the same bytes for every read size, and the offsets of the markers', async () => {
    const input = 'xxaayybbzzaa__bb';
    const expected = 'xxA\x00yyB\x00zzaa__bb';
    for (let size = 1; size <= input.length + 1; size++) {
      const r = await run(input, [A, B], size);
      assert.equal(r.output, expected, `read size ${size}`);
      assert.deepEqual(
        r.matches.map((m) => [m.name, m.offset]).sort(),
        [
          ['rep-A', 2],
          ['rep-B', 6],
        ],
        `read size ${size}`,
      );
    }
  });

  it('never changes the chunks it is given (a caller may reuse its read buffer)', () => {
    const chunk = Buffer.from('12aa');
    const replacer = new MarkerReplacer([A]);
    const out = replacer.push(chunk);
    assert.equal(chunk.toString(), '12aa');
    assert.equal(Buffer.concat([out, replacer.end()]).toString('latin1'), '12A\x00');
  });

  it('refuses values with NUL, control characters, quotes, backslashes or non-ASCII', () => {
    for (const value of ['a\x00b', 'a\nb', "a'b", 'a"b', 'a\\b', 'a`b', 'ä']) {
      assert.throws(
        () => new MarkerReplacer([rep('release image', 'a'.repeat(20), value)]),
        (e: unknown) => isLadingError(e, 'USAGE') && /printable ASCII without quotes or backslashes/.test(e.message),
        JSON.stringify(value),
      );
    }
    assert.throws(() => new MarkerReplacer([rep('release image', 'aaaa', '')]), /is empty/);
  });
});
