/**
 * The composefs benchmark: `lading composefs digest oci:DIR:TAG` (flatten the image's layers, fs-verity
 * SHA-512 of every file as it streams, build the EROFS image, hash it) against `fsverity digest
 * --hash-alg sha512` over the same 30,000 files (1 GiB) on disk, given through `xargs -0` in one
 * invocation. Goal: ratio ≤ 1.2, i.e. building the composefs metadata costs almost nothing next to
 * hashing the content. Both are whole commands (node start-up included), alternating, each side's
 * input read into the page cache (untimed) just before its run.
 *
 * The fixture is generated once into work/composefs and reused while its marker matches: random bytes
 * (an AES-128-CTR keystream) in the verity bench's size distribution (log-uniform, 1 byte to 1 MiB,
 * scaled to 1 GiB), under /usr/dNNN/, and an OCI layout whose image holds the same files in 4
 * UNCOMPRESSED layers (decompression would measure zlib, not composefs). Before timing, every file's
 * digest in `lading composefs dump` is checked against fsverity's output.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { writeLayer } from '../src/fs/layer-writer.js';
import { FileTree, makeEntry } from '../src/fs/tree.js';
import { canonicalJsonBytes } from '../src/oci/canonical-json.js';
import { digestOf } from '../src/oci/digest.js';
import { MediaType } from '../src/oci/media-types.js';
import type { Descriptor } from '../src/oci/types.js';
import { LayoutStore } from '../src/store/layout/layout-store.js';
import { alternate, sh } from './measure.js';
import { gib, type Row } from './report.js';
import { keystream, treeSizes } from './verity-bench.js';

const CLI = resolve(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const GiB = 2 ** 30;
const FILES = 30_000;
const DIRS = 300;
const LAYERS = 4;
const TAG = 'bench';
const PARAMS = { version: 1, files: FILES, bytes: GiB, layers: LAYERS };

interface Fixture {
  root: string;
  list: string;
  layout: string;
}

const dirName = (d: number) => `d${String(d).padStart(3, '0')}`;

/** The image: /usr and the files, one layer per quarter of the directories, uncompressed. */
async function writeImage(fx: Fixture, files: { path: string; size: number }[][]): Promise<void> {
  const store = await LayoutStore.open(fx.layout, 'write');
  try {
    const layers: Descriptor[] = [];
    const diffIds: string[] = [];
    for (let l = 0; l < LAYERS; l++) {
      const tree = new FileTree();
      tree.set(makeEntry('usr', 'directory', { mtime: 1700000000 }));
      for (let d = l; d < DIRS; d += LAYERS) {
        tree.set(makeEntry(`usr/${dirName(d)}`, 'directory', { mtime: 1700000000 }));
        for (const { path, size } of files[d]!) {
          const name = path.slice(path.lastIndexOf('/') + 1);
          tree.set(makeEntry(`usr/${dirName(d)}/${name}`, 'file', { mtime: 1700000000, size, content: { kind: 'file', path } }));
        }
      }
      const layer = await writeLayer(store, tree, { compression: 'none', cacheDir: false });
      layers.push(layer.descriptor);
      diffIds.push(layer.diffId);
    }
    const config = canonicalJsonBytes({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIds } });
    const configDesc: Descriptor = { mediaType: MediaType.ociConfig, digest: digestOf(config), size: config.byteLength };
    await store.pushBlob(configDesc, Readable.from([Buffer.from(config)]));
    const manifest = canonicalJsonBytes({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDesc, layers });
    await store.pushManifest({ mediaType: MediaType.ociManifest, digest: digestOf(manifest), size: manifest.byteLength }, manifest, {
      tags: [TAG],
      root: true,
    });
    await store.close();
  } catch (e) {
    await store.abort();
    throw e;
  }
}

export async function ensureFixture(work: string, log: (s: string) => void): Promise<Fixture> {
  const dir = join(work, 'composefs');
  const fx: Fixture = { root: join(dir, 'root'), list: join(dir, 'files.list'), layout: join(dir, 'layout') };
  const marker = join(dir, 'fixture.json');
  if ((await readFile(marker, 'utf8').catch(() => '')) === JSON.stringify(PARAMS)) return fx;
  log(`composefs fixture: generating ${FILES} files (${gib(GiB)}) and a ${LAYERS}-layer image in ${dir}`);
  await rm(dir, { recursive: true, force: true });
  const bytes = keystream();
  const byDir: { path: string; size: number }[][] = Array.from({ length: DIRS }, () => []);
  for (let d = 0; d < DIRS; d++) await mkdir(join(fx.root, 'usr', dirName(d)), { recursive: true });
  const all: string[] = [];
  for (const [i, size] of treeSizes(GiB, FILES).entries()) {
    const path = join(fx.root, 'usr', dirName(i % DIRS), `f${i}`);
    await writeFile(path, bytes(size));
    byDir[i % DIRS]!.push({ path, size });
    all.push(path);
  }
  await writeFile(fx.list, `${all.join('\0')}\0`);
  await writeImage(fx, byDir);
  await writeFile(marker, JSON.stringify(PARAMS));
  return fx;
}

const node = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)}`;
const peer = 'xargs -0 -s 2000000 -a "$1" fsverity digest --hash-alg sha512';

/** Every external file's digest in lading's dump must be fsverity's for the same file. */
async function verify(fx: Fixture, log: (s: string) => void): Promise<void> {
  const dump = await sh(`${node} composefs dump "oci:$1:${TAG}"`, [fx.layout]);
  const ours = new Map<string, string>();
  for (const line of dump.split('\n')) {
    const f = line.split(' ');
    if (f.length >= 11 && f[10] !== '-') ours.set(f[0]!, f[10]!);
  }
  const theirs = await sh(peer, [fx.list]);
  let checked = 0;
  for (const line of theirs.split('\n')) {
    if (line === '') continue;
    const [digest, path] = line.split(' ') as [string, string];
    const inImage = path.slice(fx.root.length);
    const got = ours.get(inImage);
    if (got === undefined) continue; // files of 64 bytes or less are inline: no digest in the dump
    if (`sha512:${got}` !== digest) throw new Error(`composefs dump and fsverity disagree on ${inImage}`);
    checked++;
  }
  if (checked === 0 || checked !== ours.size) throw new Error(`compared ${checked} files, but the dump has ${ours.size} digests`);
  log(`composefs: lading's dump and fsverity agree on ${checked} files`);
}

export async function composefsBench(ctx: { runs: number; work: string; log: (s: string) => void }): Promise<Row[]> {
  const fx = await ensureFixture(ctx.work, ctx.log);
  const name = `composefs digest sha512, ${FILES} files, ${gib(GiB)} (${LAYERS} uncompressed layers)`;
  const r: Row = { name, peer: 'fsverity digest (same files)', kind: 'time', goal: 1.2, informational: false };
  try {
    await verify(fx, ctx.log);
    const ours = () => sh(`${node} composefs digest "oci:$1:${TAG}"`, [fx.layout]).then(() => undefined);
    const theirs = () => sh(peer, [fx.list]).then(() => undefined);
    // Each side's input is read once right before its run: the page cache may have let it go since
    // (this machine reclaims idle cache), and a side reading from disk would measure the disk.
    const warmLayout = () => sh('find "$1/blobs" -type f -print0 | xargs -0 cat > /dev/null', [fx.layout]).then(() => undefined);
    const warmFiles = () => sh('xargs -0 -s 2000000 -a "$1" cat > /dev/null', [fx.list]).then(() => undefined);
    [r.lading, r.peerRuns] = await alternate(
      ctx.runs,
      [
        { label: 'lading composefs digest', prepare: warmLayout, run: ours },
        { label: 'fsverity digest', prepare: warmFiles, run: theirs },
      ],
      (c, s) => ctx.log(`${name}: ${c.label} ${s.toFixed(3)} s`),
    );
  } catch (e) {
    r.error = (e as Error).message;
  }
  return [r];
}
