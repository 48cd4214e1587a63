/**
 * The PE section-table reader and the composefs kernel arguments: real UKIs made with objcopy from the
 * systemd-boot stub, the same bytes streamed in small chunks, and malformed files (truncated, bad
 * signatures, a section out of bounds) refused with INVALID_UKI.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cmdlineText, composefsKargs, splitCmdline } from '../../src/boot/uki/cmdline.js';
import { PeReader, readPeFile } from '../../src/boot/uki/pe.js';
import { ukiCmdline, wantCmdline } from '../../src/boot/uki/uki.js';
import { isLadingError } from '../../src/errors.js';
import { ok } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { makeUki } from './uki-helpers.js';

const H512 = 'ab'.repeat(64);
const H256 = 'cd'.repeat(32);
const invalid = (pattern: RegExp) => (e: unknown) => isLadingError(e, 'INVALID_UKI') && pattern.test(e.message);

describe('PE section tables', () => {
  it('reads the .cmdline of a real UKI, from a file and streamed in 7-byte chunks', async () => {
    const dir = await tempDir();
    const uki = await makeUki(dir, 'a.efi', `quiet composefs.digest=v1-sha512-12:${H512} rw`);
    const read = await readPeFile(uki, wantCmdline);
    // objdump names the same sections, in the same order.
    const objdump = (await ok('objdump', '-h', uki))
      .split('\n')
      .map((l) => /^\s+\d+\s+(\S+)/.exec(l)?.[1])
      .filter((n) => n !== undefined);
    assert.deepEqual(
      read.pe.sections.map((s) => s.name),
      objdump,
    );
    assert.equal(read.pe.optionalMagic, 0x20b);
    const { cmdlines, kargs } = ukiCmdline(read, uki);
    assert.deepEqual(cmdlines, [`quiet composefs.digest=v1-sha512-12:${H512} rw`]);
    assert.deepEqual(
      kargs.map((k) => [k.version, k.algorithm, k.digest, k.insecure, k.legacy]),
      [[1, 'sha512', H512, false, false]],
    );

    const bytes = await readFile(uki);
    const reader = new PeReader(bytes.length, 'streamed', wantCmdline);
    for (let i = 0; i < bytes.length; i += 7) reader.update(bytes.subarray(i, i + 7));
    assert.deepEqual(ukiCmdline(reader.finish(), 'streamed'), { cmdlines, kargs });
  });

  it('refuses truncated and malformed files with the reason', async () => {
    const dir = await tempDir();
    const goodFile = await makeUki(dir, 'a.efi', `composefs=${H512}`);
    const good = await readFile(goodFile);
    const cmdline = (await readPeFile(goodFile, wantCmdline)).pe.sections.find((s) => s.name === '.cmdline')!;
    const pe = good.readUInt32LE(0x3c);
    const optional = pe + 24;
    const table = optional + good.readUInt16LE(pe + 20);
    const cases: [string, Buffer, RegExp][] = [
      ['empty', Buffer.alloc(0), /truncated: 0 of 0 bytes/],
      ['dos', good.subarray(0, 40), /truncated/],
      ['headers', good.subarray(0, table + 20), /truncated: \d+ bytes, the section table ends at/],
      ['in .cmdline', good.subarray(0, cmdline.rawOffset + 4), /section ".cmdline" .* extends past the end of the \d+-byte file/],
      ['mz', Buffer.concat([Buffer.from('XZ'), good.subarray(2)]), /no "MZ" signature/],
      ['pe', patch(good, pe, Buffer.from('PX\0\0')), /no "PE\\0\\0" signature/],
      ['lfanew', patch32(good, 0x3c, 0x7fffffff), /PE header offset \d+ is out of range/],
      ['magic', patch(good, optional, Buffer.from([0x07, 0x01])), /optional header magic 0x107/],
      ['sections', patch(good, pe + 6, Buffer.from([0, 1])), /256 sections/],
      ['bounds', patch32(good, table + 20, good.length - 8), /section ".text" .* extends past the end of the \d+-byte file/],
    ];
    for (const [name, bytes, pattern] of cases) {
      const file = join(dir, `${name}.efi`);
      await writeFile(file, bytes);
      await assert.rejects(readPeFile(file, wantCmdline), invalid(pattern), name);
    }
    await assert.rejects(readPeFile(join(dir, 'nope.efi'), wantCmdline), (e: unknown) => isLadingError(e, 'IO'));
    // A PE file without .cmdline, and one whose command line names no composefs digest.
    await assert.rejects(
      async () => ukiCmdline(await readPeFile('/usr/lib/systemd/boot/efi/linuxx64.efi.stub', wantCmdline), 'stub'),
      invalid(/has no \.cmdline section/),
    );
    const plain = await makeUki(dir, 'plain.efi', 'root=/dev/sda quiet');
    await assert.rejects(
      async () => ukiCmdline(await readPeFile(plain, wantCmdline), plain),
      invalid(/names no composefs digest .*"root=\/dev\/sda quiet"/),
    );
  });
});

function patch(b: Buffer, at: number, bytes: Buffer): Buffer {
  const c = Buffer.from(b);
  bytes.copy(c, at);
  return c;
}

function patch32(b: Buffer, at: number, value: number): Buffer {
  const c = Buffer.from(b);
  c.writeUInt32LE(value, at);
  return c;
}

describe('composefs kernel arguments', () => {
  it('reads composefs.digest= in all its forms, and composefs= only without them', () => {
    const kargs = composefsKargs(
      `a "b c" composefs.digest=v1-sha512-12:${H512.toUpperCase()} composefs.digest=?v1-sha256-12:${H256} composefs.digest=v2-sha512-12:${H512} composefs=${H256}`,
      'x',
    );
    assert.deepEqual(
      kargs.map((k) => [k.version, k.algorithm, k.digest, k.insecure, k.legacy]),
      [
        [1, 'sha512', H512, false, false],
        [1, 'sha256', H256, true, false],
        [2, 'sha512', H512, false, false],
      ],
    );
    // Legacy composefs=: version 1, algorithm from the length, `?` for insecure.
    assert.deepEqual(
      composefsKargs(`ro composefs=?${H256}`, 'x').map((k) => [k.version, k.algorithm, k.insecure, k.legacy]),
      [[1, 'sha256', true, true]],
    );
    assert.equal(composefsKargs(`composefs=${H512}`, 'x')[0]!.algorithm, 'sha512');
    assert.deepEqual(composefsKargs('root=/dev/sda "composefs.digest=quoted value"', 'x'), []);
    assert.deepEqual(splitCmdline(' a  "b c"\td '), ['a', '"b c"', 'd']);
    assert.equal(cmdlineText(Buffer.from('a b \n\0\0'), 'x'), 'a b');
  });

  it('refuses malformed composefs arguments', () => {
    const bad: [string, RegExp][] = [
      [`composefs.digest=v3-sha512-12:${H512}`, /format version 3/],
      [`composefs.digest=v1-md5-12:${H512}`, /names hash md5/],
      [`composefs.digest=v1-sha512-16:${H512}`, /65536-byte fs-verity blocks/],
      [`composefs.digest=v1-sha512-12:${H256}`, /does not end in 128 hex digits/],
      ['composefs.digest=v1-sha256-12', /is not composefs.digest=vN-<hash>-<blockbits>:<hex>/],
      [`composefs=${H256}0`, /is not 64 or 128 hex digits/],
      [`composefs=${'g'.repeat(64)}`, /does not end in 64 hex digits/],
    ];
    for (const [arg, pattern] of bad) assert.throws(() => composefsKargs(`quiet ${arg}`, 'uki'), invalid(pattern), arg);
    assert.throws(() => cmdlineText(Buffer.from([0x61, 0xff, 0]), 'uki'), invalid(/not UTF-8/));
  });
});
