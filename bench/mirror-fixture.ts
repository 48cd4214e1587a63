/**
 * The mirror benchmark's fixture: a release-like set of images, written by hand into an OCI layout
 * `.bench/mirror/src/` and reused while its marker matches. Every image has the same `baseLayers` base
 * layers (as images built FROM one base do) plus `imageLayers` layers of its own, all uncompressed tar
 * layers of AES-CTR keystream (incompressible, never deduplicated by accident), an OCI config and an
 * OCI manifest. Sizes are deterministic: a quarter of `totalMiB` goes to the base layers, the rest is
 * spread over the images unevenly (0.5x to 1.5x of the mean) and, within an image, from large to small,
 * so the set has both layers a registry gets in one PUT and layers it gets in chunks.
 *
 * index.json names each image `bench.example/<repo>:<tag>` (org.opencontainers.image.ref.name), so
 * `lading mirror --from oci:DIR --to docker://HOST` puts it at HOST/<repo>:<tag>, and skopeo can read
 * each as `oci:DIR:bench.example/<repo>:<tag>`.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJsonBytes } from '../src/oci/canonical-json.js';
import { MediaType } from '../src/oci/media-types.js';
import { Annotation, type Descriptor, type ImageConfig, type ImageIndex, type ImageManifest } from '../src/oci/types.js';
import { writeJsonBlob, writeRandom } from './fixture.js';

export interface MirrorFixtureParams {
  images: number;
  baseLayers: number;
  imageLayers: number;
  totalMiB: number;
}

export interface MirrorImage {
  /** One path component, e.g. app-07 (skopeo sync keeps only the last component of a name). */
  repo: string;
  tag: string;
  /** The manifest every copy must keep, digest and all. */
  manifest: Descriptor;
}

export interface MirrorFixture {
  layout: string;
  images: MirrorImage[];
  /** Distinct layer blobs in the set, and their bytes (what a mirror moves once). */
  layers: number;
  uniqueBytes: number;
  /** Layer bytes summed over images (what moving every image on its own would move). */
  perImageBytes: number;
}

interface Marker {
  version: 1;
  params: MirrorFixtureParams;
  fixture: MirrorFixture;
  blobs: { digest: string; size: number }[];
}

const MiB = 1024 * 1024;
export const SOURCE_DOMAIN = 'bench.example';
export const MIRROR_TAG = 'v1';
const BASE_WEIGHTS = [0.4, 0.3, 0.2, 0.1];
const IMAGE_WEIGHTS = [0.45, 0.3, 0.15, 0.07, 0.03];

/** Layer payload sizes in bytes: `base` shared by all, `own[i]` for image i. */
export function layerSizes(p: MirrorFixtureParams): { base: number[]; own: number[][] } {
  const total = p.totalMiB * MiB;
  const kib = (n: number) => Math.max(1024, Math.floor(n / 1024) * 1024);
  const split = (bytes: number, count: number, weights: number[]) => {
    const w = Array.from({ length: count }, (_, i) => weights[i] ?? weights[weights.length - 1] ?? 1);
    const sum = w.reduce((a, b) => a + b, 0);
    return w.map((x) => kib((bytes * x) / sum));
  };
  // A permutation of 0..images-1 (17 is coprime to the default 40; otherwise the factors just repeat).
  const factor = (i: number) => 0.5 + ((i * 17) % p.images) / p.images;
  const factors = Array.from({ length: p.images }, (_, i) => factor(i));
  const factorSum = factors.reduce((a, b) => a + b, 0);
  return {
    base: split(total * 0.25, p.baseLayers, BASE_WEIGHTS),
    own: factors.map((f) => split((total * 0.75 * f) / factorSum, p.imageLayers, IMAGE_WEIGHTS)),
  };
}

/** Returns the fixture under `root` (in `root/src`), generating it when missing or of other parameters. */
export async function ensureMirrorFixture(root: string, params: MirrorFixtureParams, log: (s: string) => void): Promise<MirrorFixture> {
  const markerPath = join(root, 'fixture.json');
  const found = await readMarker(markerPath);
  if (found !== undefined && sameParams(found.params, params) && (await blobsPresent(found))) {
    log(`mirror fixture: reusing ${found.fixture.layout} (${params.images} images, ${params.totalMiB} MiB)`);
    return found.fixture;
  }
  log(`mirror fixture: generating ${params.images} images, ${params.totalMiB} MiB into ${root} ...`);
  const started = process.hrtime.bigint();
  await rm(markerPath, { force: true });
  const layout = join(root, 'src');
  await rm(layout, { recursive: true, force: true });
  const blobDir = join(layout, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });

  let n = 0;
  const layer = async (size: number): Promise<Descriptor> => {
    const tmp = join(blobDir, `.tmp-layer-${n++}`);
    const { digest, size: written } = await writeRandom(tmp, size, 'layer.bin');
    await rename(tmp, join(blobDir, digest.slice('sha256:'.length)));
    return { mediaType: MediaType.ociLayer, digest, size: written };
  };
  const sizes = layerSizes(params);
  const base: Descriptor[] = [];
  for (const s of sizes.base) base.push(await layer(s));
  const blobs: Descriptor[] = [...base];
  const images: MirrorImage[] = [];
  const entries: Descriptor[] = [];
  let perImageBytes = 0;
  for (const [i, own] of sizes.own.entries()) {
    const layers = [...base];
    for (const s of own) layers.push(await layer(s));
    blobs.push(...layers.slice(base.length));
    const repo = `app-${String(i).padStart(2, '0')}`;
    const config: ImageConfig = {
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: { 'bench.image': repo } },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, // uncompressed: diff_id = digest
    };
    const configDesc = await writeJsonBlob(blobDir, MediaType.ociConfig, config);
    const manifest: ImageManifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDesc, layers };
    const manifestDesc = await writeJsonBlob(blobDir, MediaType.ociManifest, manifest);
    blobs.push(configDesc, manifestDesc);
    perImageBytes += layers.reduce((a, l) => a + l.size, 0);
    images.push({ repo, tag: MIRROR_TAG, manifest: manifestDesc });
    entries.push({ ...manifestDesc, annotations: { [Annotation.refName]: `${SOURCE_DOMAIN}/${repo}:${MIRROR_TAG}` } });
  }
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: entries };
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}\n');
  await writeFile(join(layout, 'index.json'), canonicalJsonBytes(index));

  const layerBlobs = blobs.filter((b) => b.mediaType === MediaType.ociLayer);
  const fixture: MirrorFixture = {
    layout,
    images,
    layers: layerBlobs.length,
    uniqueBytes: layerBlobs.reduce((a, l) => a + l.size, 0),
    perImageBytes,
  };
  const marker: Marker = { version: 1, params, fixture, blobs: blobs.map((b) => ({ digest: b.digest, size: b.size })) };
  await writeFile(markerPath, `${JSON.stringify(marker, null, 2)}\n`);
  log(`mirror fixture: done in ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(1)} s`);
  return fixture;
}

async function readMarker(path: string): Promise<Marker | undefined> {
  try {
    const m = JSON.parse(await readFile(path, 'utf8')) as Marker;
    return m.version === 1 ? m : undefined;
  } catch {
    return undefined;
  }
}

function sameParams(a: MirrorFixtureParams, b: MirrorFixtureParams): boolean {
  return a.images === b.images && a.baseLayers === b.baseLayers && a.imageLayers === b.imageLayers && a.totalMiB === b.totalMiB;
}

/** Sizes, not hashes (as in fixture.ts): the source registry refuses a blob that does not match its digest. */
async function blobsPresent(m: Marker): Promise<boolean> {
  const sizeOf = (p: string) =>
    stat(p).then(
      (s) => (s.isFile() ? s.size : -1),
      () => -1,
    );
  for (const b of m.blobs) {
    if ((await sizeOf(join(m.fixture.layout, 'blobs', 'sha256', b.digest.slice(7)))) !== b.size) return false;
  }
  return (await sizeOf(join(m.fixture.layout, 'index.json'))) > 0;
}
