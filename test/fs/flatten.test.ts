/**
 * Flattening layers into one tree: the whiteout rules of image-spec `layer.md` as a table of cases
 * (each case cites the rule it checks), path safety, hardlinks across layers, content references and
 * hooks, layers read from a store (gzip, zstd, uncompressed; a corrupt blob refused), and agreement
 * with `umoci unpack` on a multi-layer image umoci itself built (repack with deletions, insert --opaque,
 * insert --whiteout).
 */
import assert from 'node:assert/strict';
import { chmod, link, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { flattenImage, flattenLayers, LayerApplier, resolveImageManifest } from '../../src/fs/flatten.js';
import { openLayerStream } from '../../src/fs/layer-stream.js';
import { type Entry, FileTree } from '../../src/fs/tree.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import type { Descriptor } from '../../src/oci/types.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { writeIndex } from '../../src/build/image-writer.js';
import { listRootfs, type RootfsEntry } from '../helpers/rootfs.js';
import { tempDir } from '../helpers/tmp.js';
import { collect, EOF, pushImage, rawEntry, sha256, tool } from './fs-helpers.js';

/**
 * A layer from short specs: `dir/` a directory, `a/b` a file whose content is its spec plus the layer
 * number, `l -> t` a symlink, `h => t` a hardlink, `name:0700` a mode.
 */
function layer(n: number, ...specs: string[]): Buffer {
  const parts = specs.map((spec) => {
    const [body, mode] = spec.split(':') as [string, string | undefined];
    const m = mode === undefined ? undefined : parseInt(mode, 8);
    if (body.includes(' -> ')) {
      const [name, target] = body.split(' -> ') as [string, string];
      return rawEntry({ name, type: '2', linkname: target, mode: m ?? 0o777 });
    }
    if (body.includes(' => ')) {
      const [name, target] = body.split(' => ') as [string, string];
      return rawEntry({ name, type: '1', linkname: target });
    }
    if (body.endsWith('/')) return rawEntry({ name: body, type: '5', mode: m ?? 0o755 });
    return rawEntry({ name: body, mode: m ?? 0o644 }, body.includes('.wh.') ? '' : `${body}@${n}`);
  });
  return Buffer.concat([...parts, EOF]);
}

const fakeDesc = (tar: Buffer): Descriptor => ({ mediaType: MediaType.ociLayer, digest: digestOf(tar), size: tar.length });

async function apply(...layers: Buffer[]): Promise<FileTree> {
  const applier = new LayerApplier(new FileTree(), { keepBytesUpTo: 1 << 20 });
  for (const tar of layers) await applier.apply(Readable.from([tar]), fakeDesc(tar));
  return applier.tree;
}

/** `path` for directories, `path=content` for files, `path -> target` for links. */
function show(tree: FileTree): string[] {
  const out: string[] = [];
  for (const e of tree.walk()) {
    if (e.path === '') continue;
    if (e.type === 'directory') out.push(`${e.path}/`);
    else if (e.type === 'file') out.push(`${e.path}=${e.content?.kind === 'bytes' ? Buffer.from(e.content.data).toString() : '?'}`);
    else if (e.type === 'symlink') out.push(`${e.path} -> ${e.linkTarget}`);
    else if (e.type === 'hardlink') out.push(`${e.path} => ${e.linkTarget}`);
    else out.push(`${e.path} (${e.type})`);
  }
  return out;
}

interface Case {
  rule: string;
  layers: string[][];
  expect: string[];
}

// Rules quoted from image-spec layer.md ("Whiteouts", "Opaque Whiteout").
const CASES: Case[] = [
  {
    rule: 'a whiteout file is an empty file with a special filename that signifies a path should be deleted',
    layers: [['a/', 'a/b', 'a/c'], ['a/.wh.b']],
    expect: ['a/', 'a/c=a/c@0'],
  },
  {
    rule: 'once a whiteout is applied, the whiteout itself MUST also be hidden (also when it names nothing)',
    layers: [['a/'], ['a/.wh.nothing', '.wh.nothing-at-root']],
    expect: ['a/'],
  },
  {
    rule: 'deleting a directory removes it and all of its children',
    layers: [['d/', 'd/x/', 'd/x/y', 'd/z', 'e'], ['.wh.d']],
    expect: ['e=e@0'],
  },
  {
    rule: 'whiteout files MUST only apply to resources in lower/parent layers: a same-layer sibling stays (whiteout first)',
    layers: [['p'], ['.wh.x', 'x']],
    expect: ['p=p@0', 'x=x@1'],
  },
  {
    rule: 'whiteout files MUST only apply to resources in lower/parent layers: a same-layer sibling stays (whiteout last)',
    layers: [['p'], ['x', '.wh.x']],
    expect: ['p=p@0', 'x=x@1'],
  },
  {
    rule: 'files present in the same layer as a whiteout can only be hidden by whiteouts in subsequent layers',
    layers: [['x', '.wh.x'], ['.wh.x']],
    expect: [],
  },
  {
    rule: 'a whiteout removes the lower version and the same layer re-adds it: the new one wins, in either order',
    layers: [['f'], ['f', '.wh.f']],
    expect: ['f=f@1'],
  },
  {
    rule: 'explicit whiteout of a directory, then the directory re-created by the same layer (whiteout first)',
    layers: [
      ['etc/', 'etc/my-app.d/', 'etc/my-app.d/old.cfg', 'etc/keep'],
      ['etc/.wh.my-app.d', 'etc/my-app.d/', 'etc/my-app.d/default.cfg'],
    ],
    expect: ['etc/', 'etc/keep=etc/keep@0', 'etc/my-app.d/', 'etc/my-app.d/default.cfg=etc/my-app.d/default.cfg@1'],
  },
  {
    rule: 'explicit whiteout of a directory, whatever its order: re-created entries before the whiteout stay',
    layers: [
      ['etc/', 'etc/my-app.d/', 'etc/my-app.d/old.cfg'],
      ['etc/my-app.d/', 'etc/my-app.d/default.cfg', 'etc/.wh.my-app.d'],
    ],
    expect: ['etc/', 'etc/my-app.d/', 'etc/my-app.d/default.cfg=etc/my-app.d/default.cfg@1'],
  },
  {
    rule: 'opaque whiteout: all siblings of .wh..wh..opq in lower layers are hidden (the spec example a/b/c/bar vs a/b/c/foo)',
    layers: [
      ['a/', 'a/b/', 'a/b/c/', 'a/b/c/bar'],
      ['a/', 'a/.wh..wh..opq', 'a/b/', 'a/b/c/', 'a/b/c/foo'],
    ],
    expect: ['a/', 'a/b/', 'a/b/c/', 'a/b/c/foo=a/b/c/foo@1'],
  },
  {
    rule: 'opaque whiteout is applied regardless of ordering: the marker after the new children',
    layers: [
      ['a/', 'a/b/', 'a/b/c/', 'a/b/c/bar', 'a/z'],
      ['a/', 'a/b/', 'a/b/c/', 'a/b/c/foo', 'a/.wh..wh..opq'],
    ],
    expect: ['a/', 'a/b/', 'a/b/c/', 'a/b/c/foo=a/b/c/foo@1'],
  },
  {
    rule: 'opaque whiteout hides lower children only: the directory itself and the parent stay',
    layers: [['a/:0700', 'a/x', 'b'], ['a/.wh..wh..opq']],
    expect: ['a/', 'b=b@0'],
  },
  {
    rule: 'opaque whiteout on a directory that no lower layer has: only the new children, no marker',
    layers: [['b'], ['n/', 'n/.wh..wh..opq', 'n/k']],
    expect: ['b=b@0', 'n/', 'n/k=n/k@1'],
  },
  {
    rule: 'a later layer may delete what any earlier layer added',
    layers: [['a'], ['b'], ['.wh.a']],
    expect: ['b=b@1'],
  },
  {
    rule: 'directory over directory: attributes replaced, children kept',
    layers: [['d/', 'd/child'], ['d/:0700']],
    expect: ['d/', 'd/child=d/child@0'],
  },
  {
    rule: 'a non-directory replacing a directory removes its subtree; a directory replacing a file',
    layers: [
      ['d/', 'd/child', 'f'],
      ['d', 'f/', 'f/inside'],
    ],
    expect: ['d=d@1', 'f/', 'f/inside=f/inside@1'],
  },
  {
    rule: 'aufs metadata (.wh..wh.plnk and other .wh..wh. names) never appears and deletes nothing',
    layers: [['x'], ['.wh..wh.plnk/', '.wh..wh.plnk/1234', '.wh..wh.aufs']],
    expect: ['x=x@0'],
  },
  {
    rule: "umoci 0.4.7 repack: a directory replaced by a file, followed by a whiteout under that file's name",
    layers: [
      ['swap/', 'swap/inner'],
      ['swap', 'swap/.wh.inner'],
    ],
    expect: ['swap=swap@1'],
  },
];

describe('flatten: whiteouts as image-spec layer.md says', () => {
  for (const c of CASES) {
    it(c.rule, async () => {
      const tree = await apply(...c.layers.map((specs, n) => layer(n, ...specs)));
      assert.deepEqual(show(tree), c.expect);
    });
  }

  it('keeps the metadata of the most derived layer', async () => {
    const tree = await apply(layer(0, 'd/', 'd/f:0600'), layer(1, 'd/:0711'));
    assert.equal(tree.get('d')!.mode, 0o711);
    assert.equal(tree.get('d/f')!.mode, 0o600);
  });
});

describe('flatten: path safety and hardlinks', () => {
  it('refuses an entry under a symlink, and a whiteout through one, however the symlink points', async () => {
    for (const target of ['/etc', '../../..', 'inside']) {
      for (const second of ['evil/passwd', 'evil/.wh.passwd', 'evil/.wh..wh..opq']) {
        const base = layer(0, 'inside/', 'inside/passwd', `evil -> ${target}`);
        await assert.rejects(apply(base, layer(1, second)), (e: unknown) => {
          assert.ok(isLadingError(e, 'UNSAFE_PATH'), String(e));
          assert.match((e as Error).message, /: evil is a symlink, and Lading does not follow symlinks while applying layers$/);
          return true;
        });
      }
    }
  });

  it("refuses '..' in names and hardlinks to entries that do not exist (or are directories)", async () => {
    await assert.rejects(apply(Buffer.concat([rawEntry({ name: 'a/../../x' }, 'x'), EOF])), /path escapes the root/);
    await assert.rejects(
      apply(layer(0, 'h => nothing')),
      /h in layer sha256:[0-9a-f]+: hardlink to nothing, which no earlier entry created/,
    );
    await assert.rejects(apply(layer(0, 'd/', 'h => d')), /hardlink to the directory d/);
    await assert.rejects(apply(layer(0, 'f'), layer(1, '.wh.f', 'h => f')), /hardlink to f, which no earlier entry created/);
  });

  it('points hardlinks at the entry holding the content, and keeps that content when a later layer removes it', async () => {
    const tree = await apply(
      layer(0, 'bin/', 'bin/perl', 'bin/perl5 => bin/perl', 'bin/perlx => bin/perl5', 'zz => bin/perl'),
      layer(1, 'bin/.wh.perl'),
    );
    assert.deepEqual(show(tree), ['bin/', 'bin/perl5=bin/perl@0', 'bin/perlx => bin/perl5', 'zz => bin/perl5']);
    const replaced = await apply(layer(0, 'a', 'b => a'), layer(1, 'a'));
    assert.deepEqual(show(replaced), ['a=a@1', 'b=a@0']);
  });
});

describe('flatten: content', () => {
  it('references layer ranges by default, keeps small files as bytes, and lets onFile replace content and verity', async () => {
    const tar = layer(0, 'small', 'dir/', 'dir/big');
    const desc = fakeDesc(tar);
    const applier = new LayerApplier(new FileTree());
    await applier.apply(Readable.from([tar]), desc);
    const big = applier.tree.get('dir/big')!;
    assert.equal(big.content?.kind, 'layer');
    const ref = big.content as Extract<Entry['content'], { kind: 'layer' }>;
    assert.equal(ref.layer, desc.digest);
    assert.equal(tar.subarray(ref.offset, ref.offset + big.size).toString(), 'dir/big@0');

    const seen: string[] = [];
    const hooked = new LayerApplier(new FileTree(), {
      keepBytesUpTo: 5,
      onFile: async (h, content, layerDesc) => {
        seen.push(`${h.path}:${(await collect(content())).toString()}:${layerDesc.digest === desc.digest}`);
        return h.path === 'small' ? { verity: 'ab'.repeat(32) } : { content: { kind: 'external' } };
      },
    });
    await hooked.apply(Readable.from([layer(0, 'small', 'x', 'dir/', 'dir/big')]), desc);
    assert.deepEqual(seen, ['small:small@0:true', 'x:x@0:true', 'dir/big:dir/big@0:true']);
    assert.equal(hooked.tree.get('small')!.verity, 'ab'.repeat(32));
    assert.equal(hooked.tree.get('small')!.content?.kind, 'layer', 'small@0 is 7 bytes: over keepBytesUpTo');
    assert.equal(hooked.tree.get('x')!.content?.kind, 'external');
  });

  it('reads gzip, zstd and uncompressed layers from a store, and refuses a corrupt blob or a non-layer', async () => {
    const dir = await tempDir();
    const store = await LayoutStore.open(join(dir, 'img'), 'write');
    const image = await pushImage(store, [
      { tar: layer(0, 'a/', 'a/one', 'a/two'), compression: 'gzip' },
      { tar: layer(1, 'a/.wh.one', 'b'), compression: 'zstd' },
      { tar: layer(2, 'c'), compression: 'none' },
    ]);
    const tree = await flattenLayers(store, image.layers, { keepBytesUpTo: 100 });
    assert.deepEqual(show(tree), ['a/', 'a/two=a/two@0', 'b=b@1', 'c=c@2']);
    assert.deepEqual(show(await flattenImage(store, image.manifest, undefined, { keepBytesUpTo: 100 })), show(tree));

    // A layer whose bytes do not match its digest fails, even though its tar reads fine.
    const blob = join(dir, 'img', 'blobs', 'sha256', image.layers[2]!.digest.slice(7));
    const good = await readFile(blob);
    await chmod(blob, 0o644);
    await writeFile(blob, Buffer.concat([layer(2, 'c', 'evil').subarray(0, good.length)]));
    await assert.rejects(flattenLayers(store, image.layers), (e: unknown) => isLadingError(e, 'DIGEST_MISMATCH'));
    await assert.rejects(
      openLayerStream(store, { ...image.layers[0]!, mediaType: 'application/vnd.oci.image.config.v1+json' }),
      /is not a layer media type/,
    );
  });

  it('reports a truncated gzip layer with the layer digest', async () => {
    const dir = await tempDir();
    const store = await LayoutStore.open(join(dir, 'img'), 'write');
    const { gzipSync } = await import('node:zlib');
    const gz = gzipSync(layer(0, 'a', 'b'));
    const cut = gz.subarray(0, gz.length - 30);
    const desc: Descriptor = { mediaType: MediaType.ociLayerGzip, digest: digestOf(cut), size: cut.length };
    await store.pushBlob(desc, Readable.from([cut]));
    await assert.rejects(flattenLayers(store, [desc]), (e: unknown) => {
      assert.ok(isLadingError(e, 'INVALID_ARCHIVE'), String(e));
      assert.match((e as Error).message, new RegExp(`^layer ${desc.digest} in oci:.* cannot be read: unexpected end of file`));
      return true;
    });
  });

  it('resolves an index to the platform asked for, and says which platforms there are when it is missing', async () => {
    const dir = await tempDir();
    const store = await LayoutStore.open(join(dir, 'img'), 'write');
    const amd = await pushImage(store, [{ tar: layer(0, 'amd') }], { platform: { os: 'linux', architecture: 'amd64' } });
    const arm = await pushImage(store, [{ tar: layer(0, 'arm') }], { platform: { os: 'linux', architecture: 'arm64' } });
    const index = await writeIndex(store, [amd.manifest, arm.manifest], ['multi']);
    assert.deepEqual(show(await flattenImage(store, index, { os: 'linux', architecture: 'arm64' }, { keepBytesUpTo: 10 })), ['arm=arm@0']);
    assert.equal((await resolveImageManifest(store, index, { os: 'linux', architecture: 'amd64' })).descriptor.digest, amd.manifest.digest);
    await assert.rejects(flattenImage(store, index, { os: 'linux', architecture: 's390x' }), (e: unknown) => {
      assert.ok(isLadingError(e, 'NO_MATCHING_PLATFORM'));
      assert.match((e as Error).message, /has no image for linux\/s390x \(it has: linux\/amd64, linux\/arm64\)/);
      return true;
    });
  });
});

describe('flatten agrees with umoci unpack', () => {
  it('on an image umoci built: repack with deletions and a dir replaced by a file, insert --opaque, insert --whiteout', async () => {
    const dir = await tempDir();
    const L = join(dir, 'L');
    const img = `${L}:t`;
    await tool('umoci', 'init', '--layout', L);
    await tool('umoci', 'new', '--image', img);
    await tool('umoci', 'unpack', '--rootless', '--image', img, join(dir, 'b1'));
    let R = join(dir, 'b1', 'rootfs');
    for (const d of ['etc/app.d', 'usr/bin', 'var/cache/x', 'opt/keep', 'swap', 'gone/deep/er'])
      await mkdir(join(R, d), { recursive: true });
    await writeFile(join(R, 'etc/app.d/old.cfg'), 'cfg\n');
    await writeFile(join(R, 'etc/one'), 'one\n');
    await writeFile(join(R, 'usr/bin/tool'), 'bin\n', { mode: 0o755 });
    await link(join(R, 'usr/bin/tool'), join(R, 'usr/bin/tool2'));
    await symlink('tool', join(R, 'usr/bin/tl'));
    await symlink('/etc/one', join(R, 'abs-link'));
    await writeFile(join(R, 'var/cache/x/c'), 'c\n');
    await writeFile(join(R, 'opt/keep/k'), 'k\n');
    await writeFile(join(R, 'swap/inner'), 's\n');
    await writeFile(join(R, 'gone/deep/er/file'), 'deep\n');
    await chmod(join(R, 'opt/keep'), 0o700);
    await tool('umoci', 'repack', '--image', img, join(dir, 'b1'));

    await tool('umoci', 'unpack', '--rootless', '--image', img, join(dir, 'b2'));
    R = join(dir, 'b2', 'rootfs');
    await rm(join(R, 'etc/one'));
    await rm(join(R, 'var/cache/x'), { recursive: true });
    await rm(join(R, 'gone'), { recursive: true });
    await rm(join(R, 'swap'), { recursive: true });
    await writeFile(join(R, 'swap'), 'now a file\n');
    await writeFile(join(R, 'usr/bin/tool2'), 'changed\n');
    await chmod(join(R, 'opt/keep'), 0o750);
    await tool('umoci', 'repack', '--image', img, join(dir, 'b2'));

    await mkdir(join(dir, 'ins', 'new'), { recursive: true });
    await writeFile(join(dir, 'ins', 'new', 'f'), 'fresh\n');
    await tool('umoci', 'insert', '--image', img, '--opaque', join(dir, 'ins'), '/etc/app.d');
    await tool('umoci', 'insert', '--image', img, '--whiteout', '/usr/bin/tl');
    await tool('umoci', 'unpack', '--rootless', '--image', img, join(dir, 'b3'));
    const theirs = await listRootfs(join(dir, 'b3', 'rootfs'));

    const store = await LayoutStore.open(L, 'read');
    const tree = await flattenImage(store, await store.resolve('t'), undefined, { keepBytesUpTo: 1 << 20 });
    const ours = rootfsOf(tree);
    assert.deepEqual(ours, theirs);
    assert.ok('etc/app.d/new/f' in ours && !('etc/app.d/old.cfg' in ours) && !('usr/bin/tl' in ours) && !('gone' in ours));
    assert.equal(ours['swap']?.type, 'file');
  });
});

/** The tree in listRootfs's shape: hardlinks read as the file they share. */
function rootfsOf(tree: FileTree): Record<string, RootfsEntry> {
  const out: Record<string, RootfsEntry> = {};
  for (const e of tree.walk()) {
    if (e.path === '') continue;
    const held = e.type === 'hardlink' ? tree.get(e.linkTarget!)! : e;
    const mode = held.mode & 0o7777;
    if (held.type === 'directory') out[e.path] = { type: 'dir', mode };
    else if (held.type === 'symlink') out[e.path] = { type: 'symlink', mode: 0o777, content: held.linkTarget! };
    else if (held.type === 'file') {
      assert.equal(held.content?.kind, 'bytes');
      out[e.path] = { type: 'file', mode, content: sha256((held.content as { data: Uint8Array }).data) };
    } else out[e.path] = { type: 'other', mode };
  }
  return out;
}
