/**
 * An image as composefs-rs's composefs tree: which metadata is kept, inline vs external files, the root
 * from /usr, /run emptied, the xattr allowlist, whiteouts, hardlinks, devices, and the bootable variant.
 * Images are written by Lading's layer writer; file digests are checked against the real `fsverity`.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseDump, writeDump } from '../../src/composefs/dump.js';
import { composefsImage } from '../../src/composefs/erofs-writer.js';
import { type ComposefsOptions, erofsOf, imageComposefs, verityOf } from '../../src/composefs/image-digest.js';
import { isLadingError } from '../../src/errors.js';
import { ok } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { BASE, bytes, dumpLines, T, tree, USR_MTIME, withLayout, writeImage } from './image-helpers.js';

const SHA512: Omit<ComposefsOptions, 'bootable'> = { algorithm: 'sha512', formatVersion: 1 };

async function composefs(dir: string, tag: string, options: Partial<ComposefsOptions> = {}) {
  return withLayout(dir, tag, (store, desc) => imageComposefs(store, desc, { ...SHA512, bootable: false, ...options }));
}

describe('composefs tree of an image', () => {
  it('keeps what composefs-rs keeps: inline ≤ 64 bytes, external digests, root from /usr, /run emptied, xattr allowlist', async () => {
    const dir = await tempDir();
    const big = bytes(5000, 1);
    await writeImage(dir, 'os', [
      tree({
        ...BASE,
        run: { type: 'directory', mtime: 5 },
        'run/lock': { type: 'directory' },
        'run/pid': '1\n',
        'usr/bin/tool': {
          data: big,
          mode: 0o4755,
          uid: 10,
          gid: 20,
          mtimeNsec: 999,
          xattrs: new Map([
            ['security.capability', Buffer.from('CAP')],
            ['user.note', Buffer.from('x')],
            ['security.selinux', Buffer.from('l')],
          ]),
        },
        'usr/bin/sixty-four': 'x'.repeat(64),
        'usr/bin/sixty-five': 'y'.repeat(65),
        'usr/bin/empty': '',
        'usr/bin/sh': { type: 'symlink', linkTarget: 'tool' },
        'dev/null': { type: 'char', rdev: 0x103 },
        'dev/sda': { type: 'block', rdev: 0x800 },
        'dev/fifo': { type: 'fifo' },
      }),
    ]);
    const r = await composefs(dir, 'os');
    const lines = dumpLines(writeDump(r.tree));
    // The root takes /usr's mode, owner, mtime and xattrs; /run is empty with /usr's mtime.
    assert.deepEqual(lines.get('/')!.slice(2, 8), ['40755', '8', '0', '0', '0', `${USR_MTIME}.0`]);
    assert.equal(lines.get('/run')![7], `${USR_MTIME}.0`);
    assert.ok(![...lines.keys()].some((p) => p.startsWith('/run/')));
    // External: payload xx/rest and digest = fs-verity SHA-512 of the content (checked by fsverity).
    const tool = lines.get('/usr/bin/tool')!;
    const file = join(dir, 'tool.bin');
    await writeFile(file, big);
    const peer = (await ok('fsverity', 'digest', '--hash-alg', 'sha512', file)).split(' ')[0]!;
    assert.equal(`sha512:${tool[10]}`, peer);
    assert.equal(tool[8], `${tool[10]!.slice(0, 2)}/${tool[10]!.slice(2)}`);
    assert.deepEqual(tool.slice(1, 8), ['5000', '104755', '1', '10', '20', '0', `${T}.0`]); // nanoseconds dropped
    assert.deepEqual(tool.slice(11), ['security.capability=CAP']); // user.* and security.selinux filtered
    // Inline up to 64 bytes, external from 65; empty files have neither.
    assert.deepEqual(lines.get('/usr/bin/sixty-four')!.slice(8), ['-', 'x'.repeat(64), '-']);
    assert.equal(lines.get('/usr/bin/sixty-five')![9], '-');
    assert.equal(lines.get('/usr/bin/sixty-five')![10], verityOf(Buffer.from('y'.repeat(65)), 'sha512'));
    assert.deepEqual(lines.get('/usr/bin/empty')!.slice(8), ['-', '-', '-']);
    assert.deepEqual(lines.get('/usr/bin/sh')!.slice(1, 3), ['4', '120777']);
    assert.deepEqual(lines.get('/dev/null')!.slice(2, 7), ['20644', '1', '0', '0', String(0x103)]);
    assert.deepEqual(lines.get('/dev/sda')!.slice(2, 7), ['60644', '1', '0', '0', String(0x800)]);
    assert.equal(lines.get('/dev/fifo')![2], '10644');
    // The digest is the fs-verity digest of the EROFS image of that tree.
    assert.equal(r.digest, verityOf(r.bytes, 'sha512'));
    assert.equal(r.digest.length, 128);
  });

  it('gives the same digest for layers with whiteouts as for the one layer they amount to', async () => {
    const dir = await tempDir();
    const lower = tree({
      ...BASE,
      'usr/share/doc/a': bytes(300, 2),
      'usr/share/doc/b': 'b',
      'usr/share/old/x': bytes(100, 3),
      'usr/share/old/y': 'y',
      'etc/gone': bytes(200, 4),
      'etc/kept': 'kept',
    });
    const upper = tree({
      usr: { type: 'directory', mtime: USR_MTIME },
      'etc/.wh.gone': '',
      'usr/share/old': { type: 'directory' },
      'usr/share/old/.wh..wh..opq': '',
      'usr/share/old/new': 'new',
      'usr/share/doc/a': bytes(400, 5),
    });
    await writeImage(dir, 'layers', [lower, upper]);
    const flat = tree({
      ...BASE,
      'usr/share/doc/a': bytes(400, 5),
      'usr/share/doc/b': 'b',
      'usr/share/old': { type: 'directory' },
      'usr/share/old/new': 'new',
      'etc/kept': 'kept',
    });
    await writeImage(dir, 'flat', [flat]);
    const layered = await composefs(dir, 'layers');
    const single = await composefs(dir, 'flat');
    const paths = [...dumpLines(writeDump(layered.tree)).keys()];
    assert.ok(!paths.includes('/etc/gone') && !paths.includes('/usr/share/old/x') && !paths.includes('/usr/share/old/y'));
    assert.ok(!paths.some((p) => p.includes('.wh.')));
    assert.equal(writeDump(layered.tree), writeDump(single.tree));
    assert.equal(layered.digest, single.digest);
  });

  it('keeps hardlinks as one inode, also when /boot held the first name', async () => {
    const dir = await tempDir();
    const t = tree({ ...BASE, 'boot/vmlinuz': bytes(1000, 6), 'usr/bin/a': bytes(700, 7) });
    t.set({ ...t.get('usr/bin/a')!, path: 'usr/bin/b', type: 'hardlink', linkTarget: 'usr/bin/a' });
    t.set({ ...t.get('boot/vmlinuz')!, path: 'usr/lib/vmlinuz', type: 'hardlink', linkTarget: 'boot/vmlinuz' });
    await writeImage(dir, 'links', [t]);
    const plain = dumpLines(writeDump((await composefs(dir, 'links')).tree));
    assert.equal(plain.get('/usr/bin/a')![3], '2');
    assert.deepEqual(plain.get('/usr/bin/b')!.slice(2, 4), ['@100644', '2']);
    const boot = await composefs(dir, 'links', { bootable: true });
    const lines = dumpLines(writeDump(boot.tree));
    assert.ok(!lines.has('/boot/vmlinuz'));
    // /usr/lib/vmlinuz keeps the content /boot/vmlinuz held, as its own file now.
    assert.deepEqual(lines.get('/usr/lib/vmlinuz')!.slice(1, 4), ['1000', '100644', '1']);
    assert.equal(lines.get('/usr/lib/vmlinuz')![10], verityOf(bytes(1000, 6), 'sha512'));
    assert.doesNotThrow(() => composefsImage(boot.tree, { formatVersion: 1 }));
  });

  it('--bootable empties /boot and /sysroot with /usr mtime: same digest when they already are, another when /boot has content', async () => {
    const dir = await tempDir();
    const empty = {
      ...BASE,
      boot: { type: 'directory' as const, mtime: USR_MTIME },
      sysroot: { type: 'directory' as const, mtime: USR_MTIME },
      'usr/bin/x': bytes(90, 8),
    };
    await writeImage(dir, 'empty', [tree(empty)]);
    const plain = await composefs(dir, 'empty');
    const bootable = await composefs(dir, 'empty', { bootable: true });
    assert.equal(bootable.digest, plain.digest);

    await writeImage(dir, 'kernel', [
      tree(empty),
      tree({ 'boot/EFI/Linux/x.efi': bytes(500, 9), 'sysroot/ostree': { type: 'directory' } }),
    ]);
    const withBoot = await composefs(dir, 'kernel');
    const withBootBootable = await composefs(dir, 'kernel', { bootable: true });
    assert.notEqual(withBoot.digest, plain.digest);
    assert.notEqual(withBootBootable.digest, withBoot.digest);
    // Emptied, the tree is the empty-/boot one again.
    assert.equal(withBootBootable.digest, plain.digest);

    // /boot with another mtime than /usr: the bootable variant differs from the plain one.
    await writeImage(dir, 'mtime', [tree({ ...empty, boot: { type: 'directory', mtime: 1 } })]);
    assert.notEqual((await composefs(dir, 'mtime')).digest, (await composefs(dir, 'mtime', { bootable: true })).digest);
    assert.equal((await composefs(dir, 'mtime', { bootable: true })).digest, plain.digest);
  });

  it('follows --algorithm and --format-version, and a dump round-trips to the same image', async () => {
    const dir = await tempDir();
    await writeImage(dir, 'os', [
      tree({ ...BASE, 'usr/bin/x': bytes(3000, 10), 'usr/bin/y': 'short', 'dev/wh': { type: 'char', rdev: 0 } }),
    ]);
    const v1 = await composefs(dir, 'os');
    const v0 = await composefs(dir, 'os', { formatVersion: 0 });
    // A user whiteout (char 0/0) raises format 0 to 1, as mkcomposefs and composefs-rs do.
    assert.equal(v0.formatVersion, 1);
    assert.equal(v0.digest, v1.digest);
    const s256 = await composefs(dir, 'os', { algorithm: 'sha256' });
    assert.equal(s256.digest.length, 64);
    assert.equal(dumpLines(writeDump(s256.tree)).get('/usr/bin/x')![10]!.length, 64);
    for (const r of [v1, s256]) {
      const again = parseDump(Buffer.from(writeDump(r.tree)));
      assert.ok(composefsImage(again, { formatVersion: 1 }).equals(r.bytes));
      assert.equal(erofsOf(again, 1, r.algorithm).digest, r.digest);
    }
    await writeImage(dir, 'nowh', [tree({ ...BASE, 'usr/bin/x': bytes(3000, 10) })]);
    const n0 = await composefs(dir, 'nowh', { formatVersion: 0 });
    const n1 = await composefs(dir, 'nowh', { formatVersion: 1 });
    assert.equal(n0.formatVersion, 0);
    assert.notEqual(n0.digest, n1.digest);
  });

  it('refuses what composefs-rs refuses, with the reason', async () => {
    const dir = await tempDir();
    await writeImage(dir, 'nousr', [tree({ etc: { type: 'directory' }, 'etc/x': 'x' })]);
    await writeImage(dir, 'runlink', [tree({ ...BASE, run: { type: 'symlink', linkTarget: '/var/run' } })]);
    await writeImage(dir, 'noboot', [tree({ usr: { type: 'directory' }, sysroot: { type: 'directory' } })]);
    const fails = async (tag: string, bootable: boolean, pattern: RegExp) => {
      await assert.rejects(
        composefs(dir, tag, { bootable }),
        (e: unknown) => isLadingError(e, 'UNSUPPORTED_TREE') && pattern.test(e.message),
      );
    };
    await fails('nousr', false, /no \/usr directory: composefs-rs copies the root directory's metadata from \/usr/);
    await fails('runlink', false, /a symlink at \/run, not a directory/);
    await fails('noboot', true, /no \/boot directory: a bootable image needs/);
    assert.ok((await composefs(dir, 'noboot')).digest.length === 128);
  });
});
