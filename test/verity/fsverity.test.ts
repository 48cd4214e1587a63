/** fs-verity digests: upstream vectors, and agreement with the real `fsverity digest` on a table of sizes. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { FsVerityHasher, fsverityDigest, type VerityAlgorithm } from '../../src/verity/fsverity.js';
import { lading, ok } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

const hex = (data: Uint8Array, alg: VerityAlgorithm = 'sha256') => {
  const h = new FsVerityHasher(alg);
  h.update(data);
  return h.digest().toString('hex');
};

/** `fsverity digest` output for files, one `alg:hex path` line each. */
async function peer(alg: VerityAlgorithm, files: string[]): Promise<string> {
  return ok('fsverity', 'digest', '--hash-alg', alg, ...files);
}

describe('fs-verity digest', () => {
  it('matches the upstream vectors (composefs-rs digest.rs, composefs test-units.sh)', () => {
    assert.equal(hex(Buffer.from('hello world')), '1e2eaa4202d750a41174ee454970b92c1bc2f925b1e35076d8c7d5f56362ba64');
    assert.equal(
      hex(Buffer.from('hello world'), 'sha512'),
      '18430270729d162d4e469daca123ae61893db4b0583d8f7081e3bf4f92b88ba514e7982f10733fb6aa895195c5ae8fd2eb2c47a8be05513ce5a0c51a6f570409',
    );
    assert.equal(hex(Buffer.from('hello world\n')), '37061ef2ac4c21bec68489b56138c5780306a4ad7fe6676236ecdf2c9027cd92');
    assert.equal(hex(Buffer.from('foo bar baz\n')), '91e7d88cb7bc9cf6d8db3b0ecf89af4abf204bef5b3ade5113d5b62ef374e70b');
    assert.equal(hex(new Uint8Array(0)), '3d248ca542a24fc62d1c43b916eae5016878e2533c88238480b26128a1f1af95');
    assert.equal(hex(new Uint8Array(4096)), 'babc284ee4ffe7f449377fbf6692715b43aec7bc39c094a95878904d34bac97e');
  });

  it('agrees with `fsverity digest` on the table of sizes, for SHA-256 and SHA-512', async () => {
    const dir = await tempDir();
    // Edges of the data blocks and of each tree level (128 SHA-256 / 64 SHA-512 digests per block),
    // then sizes spread up to 64 MiB.
    const sizes = [
      0,
      1,
      4095,
      4096,
      4097,
      64 * 4096,
      64 * 4096 + 1,
      128 * 4096,
      128 * 4096 + 1,
      (1 << 20) + 1,
      128 * 128 * 4096,
      128 * 128 * 4096 + 4096,
      5_242_881,
      17_000_003,
      33_554_431,
      64 << 20,
    ];
    const files: string[] = [];
    for (const size of sizes) {
      const file = join(dir, `f${size}`);
      await writeFile(file, randomBytes(size));
      files.push(file);
    }
    for (const alg of ['sha256', 'sha512'] as const) {
      const expected = await peer(alg, files);
      const lines: string[] = [];
      for (const file of files) lines.push(`${alg}:${(await fsverityDigest(file, alg)).toString('hex')} ${file}`);
      assert.equal(`${lines.join('\n')}\n`, expected, `${alg} digests differ from fsverity's`);
    }
  });

  it('gives the same digest however the bytes are chunked, from a stream or a path', async () => {
    const dir = await tempDir();
    const data = randomBytes(3 * 128 * 4096 + 777);
    const file = join(dir, 'data');
    await writeFile(file, data);
    const whole = (await fsverityDigest(file, 'sha512')).toString('hex');
    for (const step of [1, 7, 4095, 4096, 4097, 65536 + 3]) {
      const h = new FsVerityHasher('sha512');
      for (let i = 0; i < data.length; i += step) h.update(data.subarray(i, i + step));
      assert.equal(h.digest().toString('hex'), whole, `chunks of ${step}`);
    }
    const fromStream = await fsverityDigest(Readable.from([data.subarray(0, 10_000), data.subarray(10_000)]), 'sha512');
    assert.equal(fromStream.toString('hex'), whole);
    assert.equal(`sha512:${whole} ${file}\n`, await peer('sha512', [file]));
  });

  it('refuses a second digest and a missing file', async () => {
    const h = new FsVerityHasher();
    h.digest();
    assert.throws(() => h.digest(), /twice/);
    assert.throws(() => h.update(new Uint8Array(1)), /after digest/);
    await assert.rejects(
      fsverityDigest('/nonexistent/file'),
      (e) => isLadingError(e, 'IO') && /\/nonexistent\/file: no such file/.test(e.message),
    );
  });
});

describe('lading fsverity digest', () => {
  it('prints exactly what `fsverity digest` prints', async () => {
    const dir = await tempDir();
    const files = [join(dir, 'a'), join(dir, 'b b'), join(dir, 'empty')];
    await writeFile(files[0]!, randomBytes(100_000));
    await writeFile(files[1]!, 'hello world');
    await writeFile(files[2]!, '');
    for (const alg of ['sha256', 'sha512'] as const) {
      const r = await lading('fsverity', 'digest', '--hash-alg', alg, ...files);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, await peer(alg, files));
    }
    const def = await lading('fsverity', 'digest', files[1]!);
    assert.equal(def.stdout, `sha256:1e2eaa4202d750a41174ee454970b92c1bc2f925b1e35076d8c7d5f56362ba64 ${files[1]}\n`);
    const json = await lading('fsverity', 'digest', '-o', 'json', files[1]!);
    assert.deepEqual(JSON.parse(json.stdout), [
      { file: files[1], digest: 'sha256:1e2eaa4202d750a41174ee454970b92c1bc2f925b1e35076d8c7d5f56362ba64' },
    ]);
  });

  it('exits 1 for a missing file and 2 for a bad --hash-alg', async () => {
    const missing = await lading('fsverity', 'digest', '/nonexistent/x');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot open \/nonexistent\/x: no such file or directory/);
    const bad = await lading('fsverity', 'digest', '--hash-alg', 'md5', '/etc/hostname');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--hash-alg must be sha256 or sha512, not md5/);
  });
});
