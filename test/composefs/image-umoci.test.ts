/**
 * An image built by umoci (init, new, unpack, repack twice: the second layer deletes a file and adds
 * others), exported by Lading, checked against independent tools: `umoci unpack` gives the root the
 * image stands for, `fsck.erofs --extract` unpacks Lading's EROFS image, and the two must agree on every
 * path, type, mode, owner, mtime, symlink target and inline content; every external file's digest in
 * the dump must be what `fsverity digest` says of the unpacked file. (C mkcomposefs would be the direct
 * peer, but Debian 12 has no composefs package.)
 */
import assert from 'node:assert/strict';
import { chmod, chown, link, lstat, mkdir, readdir, readFile, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeDump } from '../../src/composefs/dump.js';
import { erofsOf } from '../../src/composefs/image-digest.js';
import { exportComposefs } from '../../src/composefs/object-store.js';
import { ok } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { bytes, dumpLines, withLayout } from './image-helpers.js';

interface Seen {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  target?: string;
  small?: string;
  size: number;
}

/** Every path under `root` (root itself left out) with what both sides must agree on. */
async function walk(root: string, skip: (path: string) => boolean = () => false): Promise<Map<string, Seen>> {
  const out = new Map<string, Seen>();
  const visit = async (dir: string, rel: string) => {
    for (const name of (await readdir(dir)).sort()) {
      const path = `${rel}/${name}`;
      if (skip(path)) continue;
      const full = join(dir, name);
      const st = await lstat(full);
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
      const seen: Seen = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), size: st.size };
      if (type === 'symlink') seen.target = await readlink(full);
      if (type === 'file' && st.size <= 64) seen.small = (await readFile(full)).toString('latin1');
      out.set(path, seen);
      if (type === 'dir') await visit(full, path);
    }
  };
  await visit(root, '');
  return out;
}

describe('composefs export of an image built by umoci', () => {
  it('agrees with umoci unpack, fsck.erofs --extract and fsverity on every file', async () => {
    const work = await tempDir('lading-cfs-umoci-');
    const layout = join(work, 'layout');
    const bundle = join(work, 'bundle');
    await ok('umoci', 'init', '--layout', layout);
    await ok('umoci', 'new', '--image', `${layout}:os`);
    await ok('umoci', 'unpack', '--image', `${layout}:os`, bundle);
    const rootfs = join(bundle, 'rootfs');
    for (const d of ['usr/bin', 'usr/share/doc', 'etc', 'boot', 'sysroot', 'var/lib']) await mkdir(join(rootfs, d), { recursive: true });
    await writeFile(join(rootfs, 'usr/bin/tool'), bytes(20_000, 1));
    await chmod(join(rootfs, 'usr/bin/tool'), 0o4755);
    await link(join(rootfs, 'usr/bin/tool'), join(rootfs, 'usr/bin/tool2'));
    await symlink('tool', join(rootfs, 'usr/bin/sh'));
    await writeFile(join(rootfs, 'usr/share/doc/README'), 'short readme\n');
    await writeFile(join(rootfs, 'usr/share/doc/exactly64'), 'z'.repeat(64));
    await writeFile(join(rootfs, 'usr/share/doc/long'), bytes(65, 2));
    await writeFile(join(rootfs, 'etc/old.conf'), bytes(500, 3));
    await writeFile(join(rootfs, 'var/lib/owned'), bytes(4096, 4));
    await chown(join(rootfs, 'var/lib/owned'), 1000, 1001);
    await writeFile(join(rootfs, 'boot/vmlinuz'), bytes(9000, 5));
    await utimes(join(rootfs, 'usr/share/doc/README'), 1_500_000_000, 1_500_000_000);
    await ok('umoci', 'repack', '--refresh-bundle', '--image', `${layout}:os`, bundle);
    // Layer 2: a whiteout, a replaced file, a new one.
    await rm(join(rootfs, 'etc/old.conf'));
    await writeFile(join(rootfs, 'usr/share/doc/long'), bytes(70_000, 6));
    await writeFile(join(rootfs, 'etc/new.conf'), 'new=1\n');
    await ok('umoci', 'repack', '--refresh-bundle', '--image', `${layout}:os`, bundle);

    const out = join(work, 'cfs');
    const r = await withLayout(layout, 'os', (store, desc) =>
      exportComposefs(store, desc, out, { algorithm: 'sha512', formatVersion: 1, bootable: false }),
    );
    const ext = join(work, 'extracted');
    await ok('fsck.erofs', `--extract=${ext}`, r.image);
    const unpacked = join(work, 'unpacked');
    await ok('umoci', 'unpack', '--image', `${layout}:os`, unpacked);

    const stub = (p: string) => /^\/[0-9a-f]{2}$/.test(p); // the 256 whiteout stubs mkcomposefs adds at the root
    const want = await walk(join(unpacked, 'rootfs'));
    const got = await walk(ext, stub);
    assert.deepEqual([...got.keys()], [...want.keys()]);
    assert.ok(!want.has('/etc/old.conf') && want.has('/etc/new.conf'));
    const dump = dumpLines(writeDump(r.tree));
    const external: string[] = [];
    for (const [path, w] of want) {
      const g = got.get(path)!;
      // fsck.erofs 1.5 sets the owner after the mode, which clears setuid/setgid: those bits come from the dump.
      assert.deepEqual([g.type, g.mode & 0o777, g.uid, g.gid, g.target], [w.type, w.mode & 0o777, w.uid, w.gid, w.target], path);
      assert.equal(Number.parseInt(dump.get(path)![2]!.replace('@', ''), 8) & 0o7777, w.mode, `${path} mode`);
      if (w.type !== 'symlink') assert.equal(g.mtime, w.mtime, `${path} mtime`);
      if (w.type !== 'file') continue;
      assert.equal(dump.get(path)![1], String(w.size), `${path} size`);
      if (w.size <= 64) assert.equal(g.small, w.small, path);
      else external.push(path);
    }
    // The root is /usr's metadata (composefs-rs), not the tar's.
    const usr = await lstat(join(unpacked, 'rootfs', 'usr'));
    assert.equal(dump.get('/')![7], `${Math.floor(usr.mtimeMs / 1000)}.0`);
    // External files: the digest in the dump is fsverity's for the unpacked file.
    const sums = await ok('fsverity', 'digest', '--hash-alg', 'sha512', ...external.map((p) => join(unpacked, 'rootfs', p)));
    const lines = sums.trim().split('\n');
    assert.equal(lines.length, external.length);
    lines.forEach((line, i) => assert.equal(line.split(' ')[0], `sha512:${dump.get(external[i]!)![10]}`, external[i]));
    // Hardlinks are one inode.
    assert.equal(dump.get('/usr/bin/tool')![3], '2');
    assert.ok(dump.get('/usr/bin/tool2')![2]!.startsWith('@'));

    // composefs-rs's legacy format 2 of the same tree reads back as the same files (no stubs in it).
    const v2 = join(work, 'v2.erofs');
    await writeFile(v2, erofsOf(r.tree, 2, 'sha512').bytes);
    const extV2 = join(work, 'extracted-v2');
    await ok('fsck.erofs', `--extract=${extV2}`, v2);
    assert.deepEqual(await walk(extV2), got);
  });
});
