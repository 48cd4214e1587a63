/**
 * The build benchmark of issue 4: a 500 MiB tree of 20,000 files turned into one gzip layer.
 *
 * - cold: lading scans the directory into a FileTree (lstat of every file, as a build does) and runs
 *   `writeLayer` (deterministic tar, pinned gzip on both cores, diff_id and digest, pushed into a new
 *   OCI layout) with an EMPTY layer cache, in process; against
 *   `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -c -C DIR . | gzip -n -6 > FILE`.
 *   Goal: ratio ≤ 1.0.
 * - rebuild with nothing changed: the same into a new layout with the cache warm (diff_id pass only,
 *   the compressed blob taken from the cache); against lading's own cold runs. Goal: ≤ 0.2.
 *
 * The fixture is generated once into `work/fs/` and reused while its marker matches: 200 × 10
 * directories of 10 files, sizes log-uniform from 512 B to 200 KiB plus four 20 MiB files, 500 MiB in
 * all; a third of the files incompressible (AES-CTR keystream), the rest text (words drawn from a
 * seeded generator), so gzip has real work of both kinds. Runs alternate cold, peer, warm.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { type LayerResult, writeLayer } from '../src/fs/layer-writer.js';
import { FileTree, makeEntry } from '../src/fs/tree.js';
import { LayoutStore } from '../src/store/layout/layout-store.js';
import { alternate, runCommand } from './measure.js';
import type { Row } from './report.js';

export interface FsBenchContext {
  runs: number;
  work: string;
  log: (s: string) => void;
}

const MiB = 1024 * 1024;
const FILES = 20_000;
const TOTAL = 500 * MiB;
const BIG_FILES = 4;
const BIG_SIZE = 20 * MiB;
const FIXTURE_VERSION = 1;

export async function fsBench(ctx: FsBenchContext): Promise<Row[]> {
  const root = join(ctx.work, 'fs');
  const tree = join(root, 'tree');
  const cold: Row = {
    name: 'build layer 500 MiB / 20k files, gzip, cold cache',
    peer: 'tar --sort=name … | gzip -n -6',
    kind: 'time',
    goal: 1.0,
    informational: false,
  };
  const warm: Row = {
    name: 'rebuild, nothing changed (warm layer cache)',
    peer: 'lading cold build',
    kind: 'time',
    goal: 0.2,
    informational: false,
  };
  try {
    await ensureTree(root, tree, ctx.log);
    const coldCache = join(root, 'cache-cold');
    const warmCache = join(root, 'cache-warm');
    const out = (who: string) => join(root, `out-${who}`);
    const fresh =
      (...paths: string[]) =>
      async () => {
        for (const p of paths) await rm(p, { recursive: true, force: true });
        await runCommand('sync', []);
      };
    let coldResult: LayerResult | undefined;
    let warmResult: LayerResult | undefined;
    const build = async (cacheDir: string, dest: string) =>
      writeLayer(await LayoutStore.open(dest, 'write'), await scan(tree), { cacheDir, clampMtime: 0 });

    // Untimed: warm the page cache and the JIT, fill the warm cache, and check the output once.
    await rm(warmCache, { recursive: true, force: true });
    const first = await build(warmCache, out('check'));
    await checkLayer(out('check'), first, ctx.log);
    await rm(out('check'), { recursive: true, force: true });

    const [coldRuns, peerRuns, warmRuns] = await alternate(
      ctx.runs,
      [
        {
          label: 'lading cold',
          prepare: fresh(coldCache, out('cold')),
          run: async () => {
            coldResult = await build(coldCache, out('cold'));
          },
        },
        {
          label: 'tar | gzip -6',
          prepare: fresh(out('peer.tar.gz')),
          run: () =>
            runCommand('sh', [
              '-c',
              `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -c -C '${tree}' . | gzip -n -6 > '${out('peer.tar.gz')}'`,
            ]),
        },
        {
          label: 'lading warm',
          prepare: fresh(out('warm')),
          run: async () => {
            warmResult = await build(warmCache, out('warm'));
          },
        },
      ],
      (c, s) => ctx.log(`fs: ${c.label} ${s.toFixed(3)} s`),
    );
    if (coldResult?.cached !== false) throw new Error('the cold build was served from a cache');
    if (warmResult?.cached !== true || warmResult.descriptor.digest !== coldResult.descriptor.digest) {
      throw new Error('the warm rebuild did not reuse the cached blob, or gave another digest');
    }
    const peerSize = (await lstat(out('peer.tar.gz'))).size;
    ctx.log(
      `fs: layer ${coldResult.descriptor.digest} ${(coldResult.descriptor.size / MiB).toFixed(1)} MiB (${coldResult.compressor}); tar|gzip -6 wrote ${(peerSize / MiB).toFixed(1)} MiB`,
    );
    cold.lading = coldRuns;
    cold.peerRuns = peerRuns;
    warm.lading = warmRuns;
    warm.peerRuns = coldRuns;
    for (const p of [coldCache, out('cold'), out('warm'), out('peer.tar.gz')]) await rm(p, { recursive: true, force: true });
  } catch (e) {
    cold.error = warm.error = (e as Error).message;
  }
  return [cold, warm];
}

/** The directory as a build sees it: every file by reference, modes normalized, owned by root, mtime 0. */
async function scan(dir: string): Promise<FileTree> {
  const tree = new FileTree();
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(rel === '' ? dir : join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      const path = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        tree.set(makeEntry(path, 'directory'));
        await walk(path);
      } else if (e.isFile()) {
        const st = await lstat(join(dir, path));
        const mode = st.mode & 0o111 ? 0o755 : 0o644;
        tree.set(makeEntry(path, 'file', { mode, size: st.size, content: { kind: 'file', path: join(dir, path) } }));
      }
    }
  };
  await walk('');
  return tree;
}

/** The layer decompresses (node zlib, GNU gzip) to exactly its diff_id. */
async function checkLayer(layout: string, result: LayerResult, log: (s: string) => void): Promise<void> {
  const store = await LayoutStore.open(layout, 'read');
  const blob = store.blobPath(result.descriptor.digest);
  const hash = createHash('sha256');
  await pipeline(createReadStream(blob), createGunzip(), async (s: AsyncIterable<Buffer>) => {
    for await (const c of s) hash.update(c);
  });
  if (`sha256:${hash.digest('hex')}` !== result.diffId) throw new Error('the layer does not decompress to its diff_id');
  await runCommand('gzip', ['-t', blob]);
  log(`fs: verify: the layer gunzips (node zlib, gzip -t) to its diff_id ${result.diffId}`);
}

interface Marker {
  version: number;
  files: number;
  bytes: number;
}

async function ensureTree(root: string, tree: string, log: (s: string) => void): Promise<void> {
  const markerPath = join(root, 'fixture.json');
  const want: Marker = { version: FIXTURE_VERSION, files: FILES, bytes: TOTAL };
  const found = await readFile(markerPath, 'utf8').then(
    (t) => JSON.parse(t) as Marker,
    () => undefined,
  );
  if (found !== undefined && JSON.stringify(found) === JSON.stringify(want)) {
    log(`fs: fixture: reusing ${tree}`);
    return;
  }
  log(`fs: fixture: generating ${FILES} files, ${TOTAL / MiB} MiB into ${tree} ...`);
  await rm(markerPath, { force: true });
  await rm(tree, { recursive: true, force: true });
  const rand = prng(0x1ad1);
  const small = FILES - BIG_FILES;
  const raw = Array.from({ length: small }, () => Math.exp(Math.log(512) + rand() * (Math.log(200 * 1024) - Math.log(512))));
  const scale = (TOTAL - BIG_FILES * BIG_SIZE) / raw.reduce((a, b) => a + b, 0);
  const sizes = raw.map((s) => Math.max(1, Math.floor(s * scale)));
  sizes[0]! += TOTAL - BIG_FILES * BIG_SIZE - sizes.reduce((a, b) => a + b, 0);
  for (let i = 0; i < BIG_FILES; i++) sizes.splice(((i + 1) * small) / (BIG_FILES + 1), 0, BIG_SIZE);

  const text = textPool(8 * MiB, rand);
  const keystream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
  for (let i = 0; i < sizes.length; i++) {
    const size = sizes[i]!;
    const dir = join(tree, `d${String(Math.floor(i / 100)).padStart(3, '0')}`, `s${Math.floor(i / 10) % 10}`);
    if (i % 10 === 0) await mkdir(dir, { recursive: true });
    let content: Buffer;
    if (i % 3 === 0) content = keystream.update(Buffer.alloc(size));
    else {
      const start = Math.floor(rand() * (text.length - 1));
      content = Buffer.alloc(size);
      for (let pos = 0, from = start; pos < size;) {
        const n = text.copy(content, pos, from, Math.min(text.length, from + size - pos));
        pos += n;
        from = 0;
      }
    }
    await writeFile(join(dir, `f${i}${i % 7 === 0 ? '.sh' : '.txt'}`), content, { mode: i % 7 === 0 ? 0o755 : 0o644 });
  }
  await writeFile(markerPath, JSON.stringify(want));
}

/** Lines of words drawn from a small vocabulary with a skewed distribution: compresses like source text. */
function textPool(bytes: number, rand: () => number): Buffer {
  const vocab = Array.from({ length: 4000 }, (_, i) => {
    let w = '';
    const len = 2 + Math.floor(rand() * 9);
    for (let k = 0; k < len; k++) w += String.fromCharCode(97 + Math.floor(rand() * 26));
    return i % 50 === 0 ? w.toUpperCase() : w;
  });
  const parts: string[] = [];
  let total = 0;
  while (total < bytes) {
    const words = 4 + Math.floor(rand() * 12);
    let line = '  '.repeat(Math.floor(rand() * 4));
    for (let k = 0; k < words; k++) line += `${vocab[Math.floor(rand() ** 2.5 * vocab.length)]} `;
    line += `${Math.floor(rand() * 100000)};\n`;
    parts.push(line);
    total += line.length;
  }
  return Buffer.from(parts.join(''));
}

/** xorshift32: a fixed sequence, so every machine generates the same fixture. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}
