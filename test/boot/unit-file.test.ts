/**
 * The systemd unit-file reader and the specifier rules. The specifier table is bootc's
 * `test_parse_spec_value` (crates/lib/src/boundimage.rs), case for case; the unit-file cases follow
 * systemd's config_parse (src/shared/conf-parser.c) and read_line (src/basic/fileio.c).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unescapeSpecifiers } from '../../src/boot/bound-images/specifiers.js';
import { lookupLast, parseUnitFile, replaceAssignment, splitLines, unquote } from '../../src/boot/bound-images/unit-file.js';
import { isLadingError } from '../../src/errors.js';

function value(text: string | Uint8Array, section: string, key: string): string | undefined {
  return lookupLast(parseUnitFile(text, 'test.image'), section, key)?.value;
}

function fails(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isLadingError(e, 'INVALID_BOUND_IMAGE'), String(e));
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

describe("bootc's test_parse_spec_value", () => {
  const good: [string, string][] = [
    ['quay.io/foo/foo:latest', 'quay.io/foo/foo:latest'],
    ['quay.io/foo/%%foo:latest', 'quay.io/foo/%foo:latest'],
    ['quay.io/foo/%%foo:%%latest', 'quay.io/foo/%foo:%latest'],
    ['%%quay.io/foo/foo:latest%%', '%quay.io/foo/foo:latest%'],
    ['quay.io/foo/%%%%foo:latest', 'quay.io/foo/%%foo:latest'],
  ];
  for (const [input, expected] of good) it(`${input} -> ${expected}`, () => assert.equal(unescapeSpecifiers(input), expected));

  const bad = [
    'quay.io/foo/%foo:latest',
    'quay.io/foo/%%%foo:latest',
    'quay.io/foo/%f%ooo:latest',
    '%fquay.io/foo/foo:latest',
    'quay.io/foo/foo:latest%f',
  ];
  for (const input of bad) {
    it(`${input} is refused as a specifier`, () =>
      fails(() => unescapeSpecifiers(input), `Systemd specifiers are not supported by bound images: ${input}`));
  }
  it('quay.io/foo/foo:latest% is unterminated', () =>
    fails(() => unescapeSpecifiers('quay.io/foo/foo:latest%'), 'Unterminated % in quay.io/foo/foo:latest%'));
  it('a lone % is unterminated, an empty value is fine', () => {
    fails(() => unescapeSpecifiers('%'), 'Unterminated % in %');
    assert.equal(unescapeSpecifiers(''), '');
    assert.equal(unescapeSpecifiers('%%'), '%');
  });
});

describe('unit files: sections, keys, comments, whitespace', () => {
  it('reads bootc test strings (no trailing newline)', () => {
    assert.equal(value('[Image]\nImage=quay.io/foo/foo:latest', 'Image', 'Image'), 'quay.io/foo/foo:latest');
    assert.equal(value('[Container]\nImage=quay.io/foo/foo:latest', 'Container', 'Image'), 'quay.io/foo/foo:latest');
    assert.equal(value('[Image]\n', 'Image', 'Image'), undefined);
  });

  it('strips blanks around lines, keys and values, but not inside', () => {
    assert.equal(value('  [Image]  \n \t Image \t=  quay.io/a b  \t\n', 'Image', 'Image'), 'quay.io/a b');
  });

  it('the last assignment wins, also across a repeated section', () => {
    const text = '[Image]\nImage=one\nImage=two\n[Service]\nImage=other\n[Image]\nImage=three\n';
    assert.equal(value(text, 'Image', 'Image'), 'three');
    assert.equal(value(text, 'Service', 'Image'), 'other');
    assert.deepEqual(parseUnitFile(text, 'x').sections, ['Image', 'Service']);
  });

  it('keys and sections are case-sensitive', () => {
    assert.equal(value('[image]\nImage=a\n[Image]\nimage=b\n', 'Image', 'Image'), undefined);
  });

  it('skips # and ; comment lines, also indented ones, and keeps # inside values', () => {
    const text = '# header\n[Image]\n  ; Image=commented\n\t# Image=also\nImage=quay.io/x#frag ;not a comment\n';
    assert.equal(value(text, 'Image', 'Image'), 'quay.io/x#frag ;not a comment');
  });

  it('splits the value at the first =', () => assert.equal(value('[A]\nK = a=b=c\n', 'A', 'K'), 'a=b=c'));

  it('an empty value is an empty string, not a missing key', () => assert.equal(value('[A]\nK=\n', 'A', 'K'), ''));

  it('ignores with a warning: no =, an empty key, an assignment before any section', () => {
    const unit = parseUnitFile('Early=1\n[A]\njunk line\n=value\nK=v\n', 'u.image');
    assert.deepEqual(
      unit.assignments.map((a) => `${a.section}.${a.key}=${a.value}`),
      ['A.K=v'],
    );
    assert.deepEqual(unit.warnings, [
      'u.image:1: assignment outside of a section, ignored',
      "u.image:3: missing '=', line ignored",
      "u.image:4: missing key name before '=', line ignored",
    ]);
  });

  it('refuses a section header without ], and one with quotes, backslashes or control characters', () => {
    fails(() => parseUnitFile('[Image\nImage=x\n', 'u.image'), "invalid section header '[Image' in u.image:1");
    fails(() => parseUnitFile('[Image] # c\n', 'u.image'), "invalid section header '[Image] # c' in u.image:1");
    fails(() => parseUnitFile('[Im"age]\n', 'u.image'), `bad characters in section header '[Im"age]' in u.image:1`);
    fails(() => parseUnitFile('[Im\\age]\n', 'u.image'), "bad characters in section header '[Im\\age]' in u.image:1");
    fails(() => parseUnitFile('[Im\x01age]\n', 'u.image'), /bad characters in section header/);
  });

  it('refuses text that is not UTF-8', () => {
    const bytes = Uint8Array.from([...Buffer.from('[Image]\nImage=quay.io/'), 0xff, 0xfe, 0x0a]);
    fails(() => parseUnitFile(bytes, 'u.image'), 'u.image is not valid UTF-8');
  });
});

describe('unit files: line endings and continuations as systemd joins them', () => {
  it('ends lines at \\n, \\r, \\r\\n, \\n\\r and NUL, each marker once per ending', () => {
    assert.deepEqual(
      splitLines('a\nb\r\nc\rd\n\re\0f\r\n\0g\n\nh').map((l) => l.text),
      ['a', 'b', 'c', 'd', 'e', 'f', 'g', '', 'h'],
    );
    assert.equal(value('[Image]\r\nImage=quay.io/crlf:1\r\n', 'Image', 'Image'), 'quay.io/crlf:1');
    assert.equal(value('[Image]\rImage=quay.io/cr:1\r', 'Image', 'Image'), 'quay.io/cr:1');
  });

  it('replaces the backslash-newline with a space and keeps the next line as it is', () => {
    assert.equal(value('[A]\nK=one \\\n  two\\\nthree\n', 'A', 'K'), 'one    two three');
    assert.equal(value('[Image]\nImage=quay.io/foo\\\n/bar:1\n', 'Image', 'Image'), 'quay.io/foo /bar:1');
  });

  it('a continued key works too', () => assert.equal(value('[A]\nK\\\n=v\n', 'A', 'K'), 'v'));

  it('comment lines inside a continuation are skipped, not joined and not ending it', () => {
    assert.equal(value('[A]\nK=one\\\n# a comment\\\n  ; another\ntwo\n', 'A', 'K'), 'one two');
  });

  it('an empty line ends a continuation', () => {
    const unit = parseUnitFile('[A]\nK=one\\\n\nL=two\n', 'u');
    assert.equal(lookupLast(unit, 'A', 'K')?.value, 'one');
    assert.equal(lookupLast(unit, 'A', 'L')?.value, 'two');
  });

  it('an escaped backslash at the end is no continuation; an odd run is', () => {
    const unit = parseUnitFile('[A]\nK=a\\\\\nL=b\\\\\\\nc\n', 'u');
    assert.equal(lookupLast(unit, 'A', 'K')?.value, 'a\\\\');
    assert.equal(lookupLast(unit, 'A', 'L')?.value, 'b\\\\ c');
  });

  it('a continuation still open at the end of the file is parsed', () => {
    const unit = parseUnitFile('[A]\nK=tail\\', 'u');
    assert.equal(lookupLast(unit, 'A', 'K')?.value, 'tail');
  });

  it('records which physical lines an assignment spans', () => {
    const a = lookupLast(parseUnitFile('[A]\n# c\nK=one\\\n# inside\n two\nL=x\n', 'u'), 'A', 'K');
    assert.deepEqual([a?.firstLine, a?.lastLine], [3, 5]);
  });

  it('drops a byte order mark in front of the first line', () => {
    assert.equal(value('\uFEFF[Image]\nImage=quay.io/bom:1\n', 'Image', 'Image'), 'quay.io/bom:1');
    assert.equal(value(Buffer.from('\uFEFF[Image]\nImage=quay.io/bom:1\n'), 'Image', 'Image'), 'quay.io/bom:1');
  });
});

describe('unquote (quadlet Lookup)', () => {
  it('removes one pair of double quotes around the whole value, nothing else', () => {
    assert.equal(unquote('"quay.io/a:1"'), 'quay.io/a:1');
    assert.equal(unquote('""'), '');
    assert.equal(unquote('"'), '"');
    assert.equal(unquote("'quay.io/a:1'"), "'quay.io/a:1'");
    assert.equal(unquote('"a" "b"'), 'a" "b');
    assert.equal(unquote('quay.io/"a"'), 'quay.io/"a"');
  });
});

describe('replaceAssignment', () => {
  it('rewrites exactly the lines of one assignment, keeping every other byte', () => {
    const text = '\uFEFF# keep\r\n[Image]\r\nImage=old\\\r\n# in\r\n  more\r\nAuthFile=/a.json\r\n';
    const a = lookupLast(parseUnitFile(text, 'u'), 'Image', 'Image')!;
    assert.equal(replaceAssignment(text, a, 'Image=new'), '\uFEFF# keep\r\n[Image]\r\nImage=new\r\nAuthFile=/a.json\r\n');
    const first = '[Image]\nImage=x';
    assert.equal(replaceAssignment(first, lookupLast(parseUnitFile(first, 'u'), 'Image', 'Image')!, 'Image=y'), '[Image]\nImage=y');
  });
});
