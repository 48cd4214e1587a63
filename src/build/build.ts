/**
 * `lading build`: a spec becomes an image, bit for bit the same on any machine.
 *
 * Two phases, so bad input never leaves anything behind: `planBuild` reads the spec, resolves the base
 * and scans every input for every platform (missing files, duplicates, loops and escapes are found
 * here, before a byte is written); `writeBuild` then writes layers (deterministic tar, pinned
 * compression), configs, manifests and, for several platforms, an index, children before parents.
 *
 * What the bytes depend on: the spec, the input files' contents and execute bits, the base image, the
 * epoch (SOURCE_DATE_EPOCH) and the compressor id (recorded in an annotation). Not on mtimes, owners,
 * umask, directory order, the clock, the Node version or the number of cores.
 */
import { Readable } from 'node:stream';
import { LadingError } from '../errors.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { digestOf, type Digest } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import { formatPlatform } from '../oci/platform.js';
import { Annotation, type Descriptor, type ImageIndex, type ImageManifest, type Platform } from '../oci/types.js';
import { isLocalBlobSink, isLocalBlobSource, type Store } from '../store/store.js';
import { type Compression, compressor } from '../fs/compress.js';
import { writeLayer } from '../fs/layer-writer.js';
import type { FileTree } from '../fs/tree.js';
import { type BaseImage, type BaseOptions, baseImageFor, defaultPlatforms, type ResolvedBase, resolveBase } from './base.js';
import { imageConfig, MAX_EPOCH, rfc3339 } from './image-config.js';
import { layerTree } from './inputs.js';
import { type BuildSpec, readSpec } from './spec.js';

/** Manifest annotation naming the compressor of the layers the build wrote. */
export const COMPRESSOR_ANNOTATION = 'io.lading.build.compressor';

export interface BuildOptions extends BaseOptions {
  /** Seconds since the epoch for every mtime and `created` (default 0). */
  sourceDateEpoch?: number;
  compression?: Compression;
  /** Compression level (compressor default when absent). */
  level?: number;
  /** Compression threads (default: every core; does not change the output). */
  workers?: number;
  /** Let `src` resolve outside the spec's directory. */
  allowOutsideContext?: boolean;
  /** Compressed-layer cache directory; false for none (default: the user cache). */
  cacheDir?: string | false;
}

export interface PlannedImage {
  platform: Platform;
  base: BaseImage | undefined;
  layers: FileTree[];
}

export interface BuildPlan {
  spec: BuildSpec;
  epoch: number;
  base: ResolvedBase | undefined;
  images: PlannedImage[];
  /** Releases the base image's store. */
  close(): Promise<void>;
}

export interface LayerReport {
  from: 'base' | 'spec';
  diffId: string;
  digest: string;
  size: number;
  mediaType: string;
  /** Spec layers: the compressed blob came from the layer cache or was already in the target. */
  cached?: boolean;
}

export interface ImageReport {
  platform: string;
  digest: string;
  size: number;
  config: { digest: string; size: number };
  /** The base image this one was built on (the platform's manifest). */
  base?: string;
  layers: LayerReport[];
}

export interface BuildReport {
  spec: string;
  digest: string;
  mediaType: string;
  size: number;
  sourceDateEpoch: number;
  created: string;
  compressor: string;
  base?: { name: string; digest: string; floating: boolean };
  images: ImageReport[];
}

/** Checks an epoch (whole seconds, 0 .. year 9999); `what` names where it came from. */
export function parseEpoch(value: string, what: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n > MAX_EPOCH) {
    throw new LadingError('USAGE', `${what} "${value}" is not a time: give whole seconds since 1970-01-01 (0 to ${MAX_EPOCH})`);
  }
  return n;
}

/** Reads the spec, resolves the base and scans every input; writes nothing. */
export async function planBuild(specPath: string, options: BuildOptions = {}): Promise<BuildPlan> {
  const epoch = options.sourceDateEpoch ?? 0;
  if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH) {
    throw new LadingError('USAGE', `source date epoch ${epoch} is out of range (0 to ${MAX_EPOCH})`);
  }
  compressor(options.compression ?? 'gzip', options.level === undefined ? {} : { level: options.level }); // refuses bad flags early
  const spec = await readSpec(specPath);
  if (spec.base.kind === 'scratch' && spec.layers.length === 0) {
    // image-spec 1.0 requires a layer, and tools that follow it (this project's reader too) refuse none.
    throw new LadingError('INVALID_SPEC', `${spec.path}: an image from scratch needs at least one layer: add "layers"`, {
      spec: spec.path,
    });
  }
  const base = await resolveBase(spec, options);
  try {
    const platforms = await defaultPlatforms(spec, base);
    const images: PlannedImage[] = [];
    for (const platform of platforms) {
      const baseImage = base === undefined ? undefined : await baseImageFor(base, platform);
      const layers: FileTree[] = [];
      for (const layer of spec.layers) {
        layers.push(
          await layerTree(
            spec,
            layer,
            platform,
            {
              epoch,
              ...(options.allowOutsideContext !== undefined && { allowOutsideContext: options.allowOutsideContext }),
            },
            layers,
          ),
        );
      }
      images.push({ platform, base: baseImage, layers });
    }
    return { spec, epoch, base, images, close: async () => base?.store.close() };
  } catch (e) {
    await base?.store.close();
    throw e;
  }
}

/** Writes a planned build into `target`; `tags` name the result (an empty list: untagged root in a layout). */
export async function writeBuild(
  plan: BuildPlan,
  target: Store,
  tags: readonly string[],
  options: BuildOptions = {},
): Promise<BuildReport> {
  const created = rfc3339(plan.epoch);
  const compression = options.compression ?? 'gzip';
  const comp = compressor(compression, options.level === undefined ? {} : { level: options.level });
  const single = plan.images.length === 1;
  const manifests: Descriptor[] = [];
  const images: ImageReport[] = [];

  for (const image of plan.images) {
    const layers: Descriptor[] = [];
    const report: LayerReport[] = [];
    if (image.base !== undefined) {
      const { manifest, config } = image.base;
      for (const [i, layer] of manifest.layers.entries()) {
        await copyBlob(plan.base!.store, target, layer);
        const desc: Descriptor = { ...layer, mediaType: ociLayerType(layer.mediaType) };
        layers.push(desc);
        report.push({
          from: 'base',
          diffId: config.rootfs.diff_ids[i]!,
          digest: layer.digest,
          size: layer.size,
          mediaType: desc.mediaType,
        });
      }
    }
    const added: Digest[] = [];
    for (const tree of image.layers) {
      const r = await writeLayer(target, tree, {
        compression,
        ...(options.level !== undefined && { level: options.level }),
        ...(options.workers !== undefined && { workers: options.workers }),
        ...(options.cacheDir !== undefined && { cacheDir: options.cacheDir }),
      });
      layers.push(r.descriptor);
      added.push(r.diffId);
      report.push({
        from: 'spec',
        diffId: r.diffId,
        digest: r.descriptor.digest,
        size: r.descriptor.size,
        mediaType: r.descriptor.mediaType,
        cached: r.cached,
      });
    }
    const config = imageConfig({ spec: plan.spec.config, platform: image.platform, base: image.base, added, epoch: plan.epoch });
    const configDesc = await pushJson(target, MediaType.ociConfig, config);
    const annotations: Record<string, string> = { [Annotation.created]: created };
    if (plan.base !== undefined && image.base !== undefined) {
      annotations[Annotation.baseName] = plan.base.name;
      annotations[Annotation.baseDigest] = image.base.descriptor.digest;
    }
    if (added.length > 0) annotations[COMPRESSOR_ANNOTATION] = comp.id;
    Object.assign(annotations, plan.spec.annotations);
    const manifest: ImageManifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDesc, layers, annotations };
    const bytes = canonicalJsonBytes(manifest);
    const desc: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf(bytes), size: bytes.byteLength };
    await target.pushManifest(desc, bytes, single ? { tags, root: true } : {});
    manifests.push({ ...desc, platform: platformOf(image.platform) });
    images.push({
      platform: formatPlatform(image.platform),
      digest: desc.digest,
      size: desc.size,
      config: { digest: configDesc.digest, size: configDesc.size },
      ...(image.base !== undefined && { base: image.base.descriptor.digest }),
      layers: report,
    });
  }

  let top = manifests[0]!;
  if (!single) {
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests,
      annotations: { [Annotation.created]: created, ...plan.spec.annotations },
    };
    const bytes = canonicalJsonBytes(index);
    top = { mediaType: MediaType.ociIndex, digest: digestOf(bytes), size: bytes.byteLength };
    await target.pushManifest(top, bytes, { tags, root: true });
  }
  return {
    spec: plan.spec.path,
    digest: top.digest,
    mediaType: top.mediaType,
    size: top.size,
    sourceDateEpoch: plan.epoch,
    created,
    compressor: comp.id,
    ...(plan.base !== undefined && { base: { name: plan.base.name, digest: plan.base.descriptor.digest, floating: plan.base.floating } }),
    images,
  };
}

/** Plans and writes in one go; the caller owns `target` (close it on success, abort it on failure). */
export async function buildImage(
  specPath: string,
  target: Store,
  tags: readonly string[],
  options: BuildOptions = {},
): Promise<BuildReport> {
  const plan = await planBuild(specPath, options);
  try {
    return await writeBuild(plan, target, tags, options);
  } finally {
    await plan.close();
  }
}

function platformOf(p: Platform): Platform {
  return { architecture: p.architecture, os: p.os, ...(p.variant !== undefined && { variant: p.variant }) };
}

async function pushJson(store: Store, mediaType: string, value: unknown): Promise<Descriptor> {
  const bytes = canonicalJsonBytes(value);
  const desc: Descriptor = { mediaType, digest: digestOf(bytes), size: bytes.byteLength };
  if (!(await store.has(desc))) await store.pushBlob(desc, Readable.from([Buffer.from(bytes)]));
  return desc;
}

/** A base blob into the target: skipped when present, linked between local layouts, else streamed (verified on both ends). */
async function copyBlob(src: Store, dst: Store, desc: Descriptor): Promise<void> {
  if (await dst.has(desc)) return;
  if (isLocalBlobSource(src) && isLocalBlobSink(dst)) {
    const path = await src.localBlobPath(desc);
    if (path !== undefined) {
      await dst.pushBlobFromFile(desc, path);
      return;
    }
  }
  await dst.pushBlob(desc, await src.fetchBlob(desc));
}

/** Docker layer media types name the same bytes as OCI ones; an OCI manifest must use the OCI names. */
function ociLayerType(mediaType: string): string {
  const map: Record<string, string> = {
    [MediaType.dockerLayerGzip]: MediaType.ociLayerGzip,
    'application/vnd.docker.image.rootfs.diff.tar': MediaType.ociLayer,
    'application/vnd.docker.image.rootfs.diff.tar.zstd': MediaType.ociLayerZstd,
    [MediaType.dockerForeignLayerGzip]: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  };
  return map[mediaType] ?? mediaType;
}
