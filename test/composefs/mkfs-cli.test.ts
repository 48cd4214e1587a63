/** `lading composefs mkfs`: the mkcomposefs --from-file of the CLI, and its bad inputs. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI, lading, ok } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { ASSETS, RS_SPECIAL_V1 } from './vectors.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const expected = async (name: string) => (await readFile(`${ASSETS}${name}.sha256`, 'utf8')).trim();

describe('lading composefs mkfs', () => {
  it('writes the vector images: default version, --format-version, gzip input, json and --print-digest', async () => {
    const dir = await tempDir();
    const out = join(dir, 'special.img');
    const r = await lading('composefs', 'mkfs', '--from-dump', `${ASSETS}special.dump`, '--strict', '--format-version', '0', out);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(sha256(await readFile(out)), await expected('special.dump'));

    const v1 = join(dir, 'special_v1.img');
    // No --format-version: special.dump holds a whiteout, so mkcomposefs's default raises 0 to 1.
    const digest = await lading('composefs', 'mkfs', '--from-dump', `${ASSETS}special_v1.dump`, '--print-digest', v1);
    assert.equal(digest.code, 0, digest.stderr);
    assert.equal(sha256(await readFile(v1)), await expected('special_v1.dump'));
    // --print-digest prints the image's fs-verity digest, which the real fsverity tool agrees with.
    assert.equal(`sha256:${digest.stdout.trim()} ${v1}\n`, await ok('fsverity', 'digest', v1));

    const gz = join(dir, 'config.img');
    const json = await lading('composefs', 'mkfs', '--from-dump', `${ASSETS}config-with-hard-link.dump.gz`, '-o', 'json', gz);
    assert.equal(json.code, 0, json.stderr);
    const result = JSON.parse(json.stdout) as { path: string; formatVersion: number; bytes: number; sha256: string };
    assert.deepEqual([result.path, result.formatVersion, result.sha256], [gz, 0, await expected('config-with-hard-link.dump.gz')]);
    assert.equal(result.bytes, (await readFile(gz)).length);

    // composefs-rs's legacy format 2 of its own trimmed special dump: an image fsck.erofs reads.
    const v2 = join(dir, 'special_v2.img');
    const legacy = await lading('composefs', 'mkfs', '--from-dump', RS_SPECIAL_V1, '--format-version', '2', '-o', 'json', v2);
    assert.equal(legacy.code, 0, legacy.stderr);
    assert.equal((JSON.parse(legacy.stdout) as { formatVersion: number }).formatVersion, 2);
    await ok('fsck.erofs', v2);
  });

  it('reads the dump from standard input and writes the image to standard output', async () => {
    const script = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} composefs mkfs --from-dump - - < "$1" | sha256sum`;
    const out = await ok('sh', '-c', script, 'sh', `${ASSETS}special.dump`);
    assert.equal(out.split(' ')[0], await expected('special_v1.dump'));
  });

  it('raises the default version to 1 for a tree with a whiteout, and keeps an explicit 0', async () => {
    const dir = await tempDir();
    const dump = join(dir, 'wh.dump');
    await writeFile(dump, '/ 4096 40755 2 0 0 0 0.0 - - -\n/wh 0 20644 1 0 0 0 0.0 - - -\n');
    assert.equal((await lading('composefs', 'mkfs', '--from-dump', dump, join(dir, 'auto.img'))).code, 0);
    assert.equal((await lading('composefs', 'mkfs', '--from-dump', dump, '--format-version', '0', join(dir, 'v0.img'))).code, 0);
    assert.equal((await readFile(join(dir, 'auto.img'))).readUInt32LE(12), 1);
    assert.equal((await readFile(join(dir, 'v0.img'))).readUInt32LE(12), 0);
  });

  it('refuses bad dumps with the line, exits 1 and writes nothing', async () => {
    const dir = await tempDir();
    for (const [name, pattern] of [
      ['should-fail-dot-name.dump', /should-fail-dot-name\.dump, line 2: invalid \. or \.\. in path \/\./],
      ['should-fail-self-hardlink.dump', /line 2: self-referential hardlink/],
      ['should-fail-too-big.dump', /\/bigfile: file of 9500000000000000 bytes is too large for a composefs image/],
    ] as const) {
      const r = await lading('composefs', 'mkfs', '--from-dump', `${ASSETS}${name}`, join(dir, 'out.img'));
      assert.equal(r.code, 1, name);
      assert.match(r.stderr, pattern);
    }
    const strict = await lading('composefs', 'mkfs', '--strict', '--from-dump', `${ASSETS}no-newline.dump`, join(dir, 'out.img'));
    assert.equal(strict.code, 1);
    assert.match(strict.stderr, /no-newline\.dump, line 1: non-zero RDEV/);
    const missing = await lading('composefs', 'mkfs', '--from-dump', join(dir, 'nope.dump'), join(dir, 'out.img'));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read the dump file .*nope\.dump: no such file or directory/);
    const noDir = await lading('composefs', 'mkfs', '--from-dump', `${ASSETS}special.dump`, join(dir, 'no/such/dir/out.img'));
    assert.equal(noDir.code, 1);
    assert.match(noDir.stderr, /cannot write .*out\.img: no such file or directory/);
    assert.deepEqual(await readdir(dir), []);
  });

  it('exits 2 on usage errors', async () => {
    const bad = await lading('composefs', 'mkfs', '--from-dump', `${ASSETS}special.dump`, '--format-version', '3', '/tmp/x.img');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--format-version must be 0, 1 \(mkcomposefs's\) or 2 \(composefs-rs legacy\), not 3/);
    const noDump = await lading('composefs', 'mkfs', '/tmp/x.img');
    assert.equal(noDump.code, 2);
    assert.match(noDump.stderr, /--from-dump/);
  });
});
