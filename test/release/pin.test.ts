/**
 * `lading pin` on files: the installer's real markers, written as oc writes them, with every bad input
 * leaving the file system as it was. `lading pin --show` reads back what pinning wrote.
 */
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { copyReplacingFile, pinFile, scanFile } from '../../src/release/pin.js';
import { MARKERS } from '../../src/release/markers.js';
import { showPinned } from '../../src/release/pin-show.js';
import { lading, ladingJson, ladingOk } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { snapshot } from '../helpers/tree.js';
import { ARCH, DIGEST_A, IMAGE, noise, ocPatched, text, VERSION } from './markers.js';

const PULLSPEC = `quay.io/example/release@${DIGEST_A}`;

async function binary(dir: string, parts: Buffer[], mode = 0o755, name = 'tool'): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, Buffer.concat(parts));
  await chmod(path, mode);
  return path;
}

describe('lading pin', () => {
  it('exports markers identical to the installer and oc (327, 93 and 98 bytes)', () => {
    assert.deepEqual(MARKERS.image.bytes, IMAGE);
    assert.deepEqual(MARKERS.version.bytes, VERSION);
    assert.deepEqual(MARKERS.arch.bytes, ARCH);
    assert.deepEqual([IMAGE.length, VERSION.length, ARCH.length], [327, 93, 98]);
  });

  it('writes each value and one NUL over the start of its marker, leaves every other byte, keeps the mode', async () => {
    const dir = await tempDir();
    const head = noise(5000);
    const input = await binary(dir, [head, IMAGE, text(40), ARCH, noise(77), VERSION, noise(3000)], 0o751);
    const out = join(dir, 'pinned');
    const r = await pinFile(input, { releaseImage: PULLSPEC, version: '4.15.0', arch: 'linux/amd64' }, { output: out });
    const expected = Buffer.from(await readFile(input));
    const at = (m: Buffer) => expected.indexOf(m);
    ocPatched(IMAGE, PULLSPEC).copy(expected, at(IMAGE));
    ocPatched(VERSION, '4.15.0').copy(expected, at(VERSION));
    ocPatched(ARCH, 'linux/amd64').copy(expected, at(ARCH));
    assert.deepEqual(await readFile(out), expected);
    assert.equal((await stat(out)).mode & 0o7777, 0o751);
    assert.deepEqual(
      r.pinned.map((p) => [p.kind, p.offset]),
      [
        ['image', 5000],
        ['version', 5000 + 327 + 40 + 98 + 77],
        ['arch', 5000 + 327 + 40],
      ],
    );
    assert.deepEqual(await readdir(dir), ['pinned', 'tool']);
  });

  it('pins the file a symlink names, keeping the symlink', async () => {
    const dir = await tempDir();
    const input = await binary(dir, [noise(10), IMAGE]);
    await symlink('tool', join(dir, 'link'));
    await pinFile(join(dir, 'link'), { releaseImage: PULLSPEC });
    assert.ok((await lstat(join(dir, 'link'))).isSymbolicLink());
    assert.equal((await readFile(input)).indexOf(IMAGE), -1);
  });

  it('pins in place, replacing the file atomically', async () => {
    const dir = await tempDir();
    const input = await binary(dir, [noise(100), IMAGE, noise(100)]);
    await pinFile(input, { releaseImage: 'r.example/x:1' });
    const bytes = await readFile(input);
    assert.equal(bytes.indexOf(IMAGE), -1);
    assert.equal(bytes.subarray(100, 100 + 14).toString('latin1'), 'r.example/x:1\0');
    assert.deepEqual(await readdir(dir), ['tool']);
  });

  it('finds markers split across its 1 MiB reads, and patches only the first occurrence', async () => {
    const dir = await tempDir();
    const boundary = 1 << 20;
    // The image marker straddles the first read boundary; the version marker the second; copies follow.
    const a = noise(boundary - 100);
    const b = noise(2 * boundary - (a.length + IMAGE.length) - 50);
    const input = await binary(dir, [a, IMAGE, b, VERSION, noise(1000), IMAGE, VERSION]);
    const found = await scanFile(input, [
      { name: 'image', marker: IMAGE, value: Buffer.from('x') },
      { name: 'version', marker: VERSION, value: Buffer.from('x') },
    ]);
    assert.deepEqual(
      found.map((m) => [m.name, m.offset]),
      [
        ['image', a.length],
        ['version', a.length + IMAGE.length + b.length],
      ],
    );
    await pinFile(input, { releaseImage: PULLSPEC, version: '4.15.0' });
    const bytes = await readFile(input);
    assert.deepEqual(bytes.subarray(a.length, a.length + IMAGE.length), ocPatched(IMAGE, PULLSPEC));
    // The later copies are untouched, as oc leaves them.
    assert.equal(bytes.indexOf(IMAGE), a.length + IMAGE.length + b.length + VERSION.length + 1000);
  });

  it('streams a copy with reads of any size, patching markers that straddle them, byte for byte', async () => {
    const dir = await tempDir();
    const input = await binary(dir, [noise(1000), IMAGE, noise(3), VERSION, noise(500), IMAGE]);
    const expected = Buffer.from(await readFile(input));
    ocPatched(IMAGE, PULLSPEC).copy(expected, 1000);
    ocPatched(VERSION, '1.0.0').copy(expected, 1000 + 327 + 3);
    const reps = [
      { name: 'release image', marker: IMAGE, value: Buffer.from(PULLSPEC) },
      { name: 'release version', marker: VERSION, value: Buffer.from('1.0.0') },
    ];
    for (const chunk of [1, 2, 7, 92, 93, 326, 327, 328, 1000, 1327, 65536]) {
      const out = join(dir, `out-${chunk}`);
      const found = await copyReplacingFile(input, out, reps, chunk);
      assert.deepEqual(await readFile(out), expected, `read size ${chunk}`);
      assert.deepEqual(
        found.map((m) => m.offset),
        [1000, 1330],
        `read size ${chunk}`,
      );
    }
    await assert.rejects(copyReplacingFile(input, join(dir, 'out-1'), reps), /cannot write .*out-1: already exists/);
  });

  it('patches with small scan reads too (the scan reads of any size find the markers)', async () => {
    const dir = await tempDir();
    const input = await binary(dir, [noise(1000), IMAGE, noise(10)]);
    for (const chunk of [1, 7, 64, 326, 327, 328, 4096]) {
      const found = await scanFile(input, [{ name: 'image', marker: IMAGE, value: Buffer.from('x') }], chunk);
      assert.deepEqual(
        found.map((m) => m.offset),
        [1000],
        `read size ${chunk}`,
      );
    }
  });

  it("refuses a value that does not fit, with oc's message, and touches nothing", async () => {
    const dir = await tempDir();
    const input = await binary(dir, [noise(100), IMAGE]);
    const before = await snapshot(dir);
    const long = `quay.io/${'a'.repeat(392)}`;
    await assert.rejects(
      pinFile(input, { releaseImage: long }),
      (e: unknown) =>
        isLadingError(e, 'USAGE') && e.message === 'the release image value has 400 bytes, but the maximum replacement length is 326',
    );
    await assert.rejects(
      pinFile(input, { version: '1'.repeat(93) }),
      /the release version value has 93 bytes, but the maximum replacement length is 92/,
    );
    await assert.rejects(
      pinFile(input, { arch: 'a'.repeat(98) }),
      /the release architecture value has 98 bytes, but the maximum replacement length is 97/,
    );
    assert.equal(await snapshot(dir), before);
  });

  it('accepts a value of exactly 326 bytes: the value and its NUL fill the marker', async () => {
    const dir = await tempDir();
    const input = await binary(dir, [noise(10), IMAGE, Buffer.from('after')]);
    const value = `q.io/${'a'.repeat(321)}`;
    await pinFile(input, { releaseImage: value });
    const bytes = await readFile(input);
    assert.equal(bytes.subarray(10, 10 + 327).toString('latin1'), `${value}\0`);
    assert.equal(bytes.subarray(337).toString(), 'after');
  });

  it('fails when a requested marker is missing, and writes nothing', async () => {
    const dir = await tempDir();
    const input = await binary(dir, [noise(2000), IMAGE, noise(10)]);
    const before = await snapshot(dir);
    await assert.rejects(
      pinFile(input, { releaseImage: PULLSPEC, version: '4.15.0' }, { output: join(dir, 'out') }),
      (e: unknown) =>
        isLadingError(e, 'MARKER_NOT_FOUND') &&
        e.message === `${input} has no release version marker: it was not built with the placeholder (see lading pin --show)`,
    );
    assert.equal(await snapshot(dir), before);
  });

  it('says so when the binary is pinned already', async () => {
    const dir = await tempDir();
    const input = await binary(dir, [text(500), IMAGE, noise(10)]);
    await pinFile(input, { releaseImage: PULLSPEC });
    await assert.rejects(
      pinFile(input, { releaseImage: 'other.example/x:1' }),
      (e: unknown) => isLadingError(e, 'MARKER_NOT_FOUND') && e.message.includes(`it is pinned already (release image "${PULLSPEC}")`),
    );
  });

  it('refuses to pin a read-only binary in place, but writes a pinned copy with -o keeping its mode', async () => {
    const dir = await tempDir();
    const input = await binary(dir, [noise(10), IMAGE], 0o555);
    const before = await snapshot(dir);
    await assert.rejects(
      pinFile(input, { releaseImage: PULLSPEC }),
      (e: unknown) =>
        isLadingError(e, 'USAGE') &&
        e.message === `${input} is read-only (mode 0555): pass -o OUT to write a pinned copy, or make it writable first`,
    );
    assert.equal(await snapshot(dir), before);
    const out = join(dir, 'copy');
    await pinFile(input, { releaseImage: PULLSPEC }, { output: out });
    assert.equal((await stat(out)).mode & 0o7777, 0o555);
    assert.equal((await readFile(out)).indexOf(IMAGE), -1);
  });

  it('refuses a directory, a missing file and a directory as -o, writing nothing', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'bin'));
    const input = await binary(dir, [IMAGE]);
    const before = await snapshot(dir);
    await assert.rejects(
      pinFile(join(dir, 'bin'), { releaseImage: PULLSPEC }),
      (e: unknown) =>
        isLadingError(e, 'USAGE') && e.message === `${join(dir, 'bin')} is a directory, not a binary: name the executable file to pin`,
    );
    await assert.rejects(
      pinFile(join(dir, 'nope'), { releaseImage: PULLSPEC }),
      (e: unknown) => isLadingError(e, 'IO') && e.message === `cannot read ${join(dir, 'nope')}: no such file or directory`,
    );
    await assert.rejects(
      pinFile(input, { releaseImage: PULLSPEC }, { output: join(dir, 'bin') }),
      /-o .* is a directory: name the file to write/,
    );
    assert.equal(await snapshot(dir), before);
  });
});

describe('lading pin --show', () => {
  it('reports unpatched markers, then the values pinned, with their offsets', async () => {
    const dir = await tempDir();
    const input = await binary(dir, [text(700), IMAGE, text(33), VERSION, text(5), ARCH, noise(100)]);
    const shown = await showPinned(input);
    assert.deepEqual(shown.values, {
      image: { state: 'unpatched', offset: 700 },
      version: { state: 'unpatched', offset: 700 + 327 + 33 },
      arch: { state: 'unpatched', offset: 700 + 327 + 33 + 93 + 5 },
    });
    await pinFile(input, { releaseImage: PULLSPEC, version: '4.16.0-0.nightly-2024-03-13-061822', arch: 'multi (linux/amd64)' });
    assert.deepEqual((await showPinned(input)).values, {
      image: { state: 'pinned', value: PULLSPEC, offset: 700 },
      version: { state: 'pinned', value: '4.16.0-0.nightly-2024-03-13-061822', offset: 700 + 327 + 33 },
      arch: { state: 'pinned', value: 'multi (linux/amd64)', offset: 700 + 327 + 33 + 93 + 5 },
    });
  });

  it('reads values of every length that leaves some padding, next to printable text', async () => {
    const dir = await tempDir();
    for (const len of [1, 10, 24, 25, 26, 27, 100, 261, 262, 300, 324]) {
      const value = `r/${'v'.repeat(len - 2 > 0 ? len - 2 : 0)}`.slice(0, len);
      const input = await binary(dir, [text(400), ocPatched(IMAGE, value), text(20), VERSION, ARCH, text(3)], 0o755, `t${len}`);
      const shown = await showPinned(input);
      assert.deepEqual(shown.values.image, { state: 'pinned', value, offset: 400 }, `length ${len}`);
      assert.deepEqual(shown.values.version, { state: 'unpatched', offset: 400 + 327 + 20 }, `length ${len}`);
      assert.deepEqual(shown.values.arch, { state: 'unpatched', offset: 400 + 327 + 20 + 93 }, `length ${len}`);
    }
  });

  it('reports a tail two markers explain equally, and nothing else tells apart, as ambiguous', async () => {
    const dir = await tempDir();
    // A 300-byte image value leaves 25 X: also the tail of a 71-byte architecture value, and no arch marker is elsewhere.
    const value = `r/${'v'.repeat(298)}`;
    const input = await binary(dir, [text(400), ocPatched(IMAGE, value), VERSION]);
    const shown = await showPinned(input);
    assert.equal(shown.values.image.state, 'invalid');
    assert.equal(shown.values.arch.state, 'invalid');
    assert.match(
      JSON.stringify(shown.values.arch),
      /could end the release architecture marker or the release image marker: cannot tell which/,
    );
    assert.deepEqual(shown.values.version, { state: 'unpatched', offset: 727 });
  });

  it('reports a value with no NUL before the padding as an error', async () => {
    const dir = await tempDir();
    const broken = Buffer.from(VERSION);
    broken.write('4.15.0-without-terminator-xyz', 0, 'latin1'); // 29 bytes, no NUL: runs into the X padding
    const input = await binary(dir, [noise(50), IMAGE, broken, noise(5)]);
    const shown = await showPinned(input);
    assert.equal(shown.values.version.state, 'invalid');
    const r = await lading('pin', '--show', input);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /the release version at offset 377 was replaced but without a NUL terminator: the value runs into the 63 X of padding left/,
    );
    assert.match(r.stdout, /^release image: +unpatched {2}\(offset 50\)$/m);
  });

  it('says which markers are missing, and fails when none is there', async () => {
    const dir = await tempDir();
    const input = await binary(dir, [text(100), VERSION]);
    assert.deepEqual((await showPinned(input)).values, {
      image: { state: 'missing' },
      version: { state: 'unpatched', offset: 100 },
      arch: { state: 'missing' },
    });
    const none = await binary(dir, [noise(5000), Buffer.from('XXXX\0')], 0o644, 'plain');
    const r = await lading('pin', '--show', none);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `lading: ${none} holds none of the release markers: it was not built to be pinned\n`);
  });

  it('finds the markers across its read boundary', async () => {
    const dir = await tempDir();
    const a = noise((1 << 20) - 200);
    const input = await binary(dir, [a, ocPatched(IMAGE, PULLSPEC), noise(100)]);
    assert.deepEqual((await showPinned(input)).values.image, { state: 'pinned', value: PULLSPEC, offset: a.length });
  });
});

describe('lading pin (CLI)', () => {
  it('pins with -o, and --show -o json reads it back', async () => {
    const dir = await tempDir();
    const input = await binary(dir, [noise(10), IMAGE, VERSION, ARCH]);
    const out = join(dir, 'out');
    const stdout = await ladingOk(
      'pin',
      input,
      '--release-image',
      PULLSPEC,
      '--release-version',
      '4.15.0',
      '--arch',
      'linux/amd64',
      '-o',
      out,
    );
    assert.match(stdout, new RegExp(`^pinned ${input} into ${out}\\n  release image +${PULLSPEC}  \\(offset 10\\)`));
    const shown = await ladingJson<{ values: Record<string, { state: string; value?: string }> }>('pin', '--show', out, '-o', 'json');
    assert.deepEqual(
      Object.values(shown.values).map((v) => v.value),
      [PULLSPEC, '4.15.0', 'linux/amd64'],
    );
  });

  it("takes --version as the issue spells it (not lading's own --version)", async () => {
    const dir = await tempDir();
    const input = await binary(dir, [IMAGE, VERSION]);
    await ladingOk('pin', input, '--release-image', PULLSPEC, '--version', '4.16.1');
    const shown = await showPinned(input);
    assert.deepEqual(shown.values.version, { state: 'pinned', value: '4.16.1', offset: IMAGE.length });
    assert.equal((await ladingOk('--version')).trim(), '0.1.0');
  });

  it('exits 2 on usage errors, 1 on a value too long, and writes nothing', async () => {
    const dir = await tempDir();
    const input = await binary(dir, [IMAGE]);
    const before = await snapshot(dir);
    const none = await lading('pin', input);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /nothing to pin/);
    const both = await lading('pin', '--show', input, '--release-image', 'x');
    assert.equal(both.code, 2);
    const long = await lading('pin', input, '--release-image', 'x'.repeat(327));
    assert.equal(long.code, 2);
    assert.equal(long.stderr, 'lading: the release image value has 327 bytes, but the maximum replacement length is 326\n');
    const showDir = await lading('pin', '--show', dir);
    assert.equal(showDir.code, 2);
    assert.equal(showDir.stderr, `lading: ${dir} is a directory, not a binary: name the executable file\n`);
    const dirArg = await lading('pin', dir, '--release-image', 'x');
    assert.equal(dirArg.code, 2);
    assert.match(dirArg.stderr, /is a directory, not a binary/);
    assert.equal(await snapshot(dir), before);
  });
});
