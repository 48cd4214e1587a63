/**
 * The benchmark fixture, generated once into `.bench/` and reused while its marker matches: an OCI
 * layout `src/` holding one image tagged `bench` (N uncompressed tar layers, each one file of
 * incompressible bytes, plus a config and manifest), and `digest.bin`, one file of the image's total
 * size for the digest benchmark.
 *
 * The layout is written by hand (blobs/sha256/<hex>, index.json, oci-layout) rather than through
 * LayoutStore, so a bug in the code under test cannot shape its own input, and skopeo checks it too.
 * Bytes are an AES-128-CTR keystream (fast with AES-NI, indistinguishable from random, so nothing
 * can compress or deduplicate it), hashed with node:crypto while they are written.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJsonBytes } from '../src/oci/canonical-json.js';
import { type Digest, digestOf } from '../src/oci/digest.js';
import { MediaType } from '../src/oci/media-types.js';
import { Annotation, type Descriptor, type ImageConfig, type ImageIndex, type ImageManifest } from '../src/oci/types.js';

export interface FixtureParams {
  layers: number;
  layerMiB: number;
}

export interface Fixture {
  /** The source OCI layout; the image is tagged `bench`. */
  layout: string;
  /** A file of `totalBytes` random bytes, and its digest. */
  digestFile: string;
  digestFileDigest: Digest;
  /** Bytes of layer data (what a copy moves, give or take the config and manifest). */
  imageBytes: number;
  totalBytes: number;
}

interface Marker {
  version: 1;
  params: FixtureParams;
  fixture: Fixture;
  blobs: { digest: string; size: number }[];
}

const MiB = 1024 * 1024;
const CHUNK = 4 * MiB;
export const TAG = 'bench';

/** Returns the fixture in `root`, generating it when it is missing, incomplete or of other parameters. */
export async function ensureFixture(root: string, params: FixtureParams, log: (s: string) => void): Promise<Fixture> {
  const markerPath = join(root, 'fixture.json');
  const found = await readMarker(markerPath);
  if (found !== undefined && sameParams(found.params, params) && (await blobsPresent(found))) {
    log(`fixture: reusing ${root} (${params.layers} x ${params.layerMiB} MiB)`);
    return found.fixture;
  }
  log(`fixture: generating ${params.layers} x ${params.layerMiB} MiB layers into ${root} ...`);
  const started = process.hrtime.bigint();
  await rm(markerPath, { force: true });
  const layout = join(root, 'src');
  await rm(layout, { recursive: true, force: true });
  const blobDir = join(layout, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });

  const layers: Descriptor[] = [];
  for (let i = 0; i < params.layers; i++) {
    const tmp = join(blobDir, `.tmp-layer-${i}`);
    const { digest, size } = await writeRandom(tmp, params.layerMiB * MiB, `layer-${i}.bin`);
    await rename(tmp, join(blobDir, digest.slice('sha256:'.length)));
    layers.push({ mediaType: MediaType.ociLayer, digest, size });
  }
  const config: ImageConfig = {
    architecture: 'amd64',
    os: 'linux',
    config: {},
    // Uncompressed layers: each diff_id is the layer digest.
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
  };
  const configDesc = await writeJsonBlob(blobDir, MediaType.ociConfig, config);
  const manifest: ImageManifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDesc, layers };
  const manifestDesc = await writeJsonBlob(blobDir, MediaType.ociManifest, manifest);
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [{ ...manifestDesc, annotations: { [Annotation.refName]: TAG } }],
  };
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}\n');
  await writeFile(join(layout, 'index.json'), canonicalJsonBytes(index));

  const imageBytes = layers.reduce((n, l) => n + l.size, 0);
  const totalBytes = params.layers * params.layerMiB * MiB;
  const digestFile = join(root, 'digest.bin');
  const raw = await writeRandom(digestFile, totalBytes, undefined);
  const fixture: Fixture = { layout, digestFile, digestFileDigest: raw.digest, imageBytes, totalBytes };
  const blobs = [...layers, configDesc, manifestDesc].map((d) => ({ digest: d.digest, size: d.size }));
  blobs.push({ digest: raw.digest, size: totalBytes }); // checked by size at digestFile, see blobsPresent
  const marker: Marker = { version: 1, params, fixture, blobs };
  await writeFile(markerPath, `${JSON.stringify(marker, null, 2)}\n`);
  log(`fixture: done in ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(1)} s`);
  return fixture;
}

/**
 * Writes `size` random bytes to `path`, wrapped in a one-file ustar archive named `tarName` when given
 * (so the file is then larger than `size` by the header, padding and end-of-archive blocks).
 */
export async function writeRandom(path: string, size: number, tarName: string | undefined): Promise<{ digest: Digest; size: number }> {
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16));
  const zeros = Buffer.alloc(CHUNK);
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  let written = 0;
  const put = async (buf: Buffer) => {
    hash.update(buf);
    await fh.write(buf);
    written += buf.length;
  };
  try {
    if (tarName !== undefined) await put(ustarHeader(tarName, size));
    for (let left = size; left > 0; left -= CHUNK) {
      await put(cipher.update(left >= CHUNK ? zeros : zeros.subarray(0, left)));
    }
    if (tarName !== undefined) {
      const pad = (512 - (size % 512)) % 512;
      await put(Buffer.alloc(pad + 1024)); // pad the file to a block, then two zero blocks end the archive
    }
  } finally {
    await fh.close();
  }
  return { digest: `sha256:${hash.digest('hex')}` as Digest, size: written };
}

/** A POSIX ustar header for one regular file: mode 0644, root-owned, mtime 0. */
function ustarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) => h.write(value, offset, length, 'ascii');
  const octal = (offset: number, length: number, n: number) => field(offset, length, `${n.toString(8).padStart(length - 1, '0')}\0`);
  if (size >= 8 ** 11) throw new Error(`tar entry of ${size} bytes needs a base-256 size field`);
  field(0, 100, name);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 0);
  field(148, 8, '        '); // checksum is computed with its own field as spaces
  field(156, 1, '0');
  field(257, 8, 'ustar\x0000');
  let sum = 0;
  for (const b of h) sum += b;
  field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

export async function writeJsonBlob(blobDir: string, mediaType: string, value: unknown): Promise<Descriptor> {
  const bytes = canonicalJsonBytes(value);
  const digest = digestOf(bytes);
  await writeFile(join(blobDir, digest.slice('sha256:'.length)), bytes);
  return { mediaType, digest, size: bytes.byteLength };
}

async function readMarker(path: string): Promise<Marker | undefined> {
  try {
    const m = JSON.parse(await readFile(path, 'utf8')) as Marker;
    return m.version === 1 ? m : undefined;
  } catch {
    return undefined;
  }
}

function sameParams(a: FixtureParams, b: FixtureParams): boolean {
  return a.layers === b.layers && a.layerMiB === b.layerMiB;
}

/** A cheap validity check (sizes, not hashes): the copies and fsck below would catch corrupt bytes. */
async function blobsPresent(m: Marker): Promise<boolean> {
  const sizeOf = (p: string) =>
    stat(p).then(
      (s) => (s.isFile() ? s.size : -1),
      () => -1,
    );
  for (const b of m.blobs) {
    const path =
      b.digest === m.fixture.digestFileDigest ? m.fixture.digestFile : join(m.fixture.layout, 'blobs', 'sha256', b.digest.slice(7));
    if ((await sizeOf(path)) !== b.size) return false;
  }
  return (await sizeOf(join(m.fixture.layout, 'index.json'))) > 0 && (await sizeOf(join(m.fixture.layout, 'oci-layout'))) > 0;
}
