/**
 * The base image of a build: resolved once, pinned by digest, and read per platform (manifest, config).
 * A base named by tag is refused unless the caller allows it: a tag can move, and a build from a moving
 * base is not reproducible. When allowed, the digest the tag resolved to is what the build records.
 */
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { LadingError } from '../errors.js';
import { parseManifest } from '../oci/parse.js';
import { formatPlatform, platformMatches } from '../oci/platform.js';
import type { Descriptor, ImageConfig, ImageManifest, Platform } from '../oci/types.js';
import { readConfig } from '../store/inspect.js';
import type { Store } from '../store/store.js';
import { type OpenContext, openStore, refWithinStore, type TransportRef } from '../store/transport.js';
import type { BaseSpec, BuildSpec } from './spec.js';

export interface BaseImage {
  /** The image manifest for this platform and its descriptor. */
  descriptor: Descriptor;
  manifest: ImageManifest;
  config: ImageConfig;
}

export interface ResolvedBase {
  /** The reference as the spec wrote it (the base.name annotation). */
  name: string;
  /** What the reference resolved to (an index or a manifest). */
  descriptor: Descriptor;
  /** True when the spec named a tag and the caller allowed it. */
  floating: boolean;
  store: Store;
}

export interface BaseOptions {
  allowFloatingBase?: boolean;
  /** Where relative oci:/oci-archive: base paths are resolved (default: the spec's directory). */
  baseDir?: string;
  open?: OpenContext;
}

/** Opens and resolves the base; undefined for scratch. The caller closes `store`. */
export async function resolveBase(spec: BuildSpec, options: BaseOptions): Promise<ResolvedBase | undefined> {
  const base = spec.base;
  if (base.kind === 'scratch') return undefined;
  if (base.pinned === undefined && !options.allowFloatingBase) {
    throw new LadingError(
      'INVALID_SPEC',
      `${spec.path} line ${base.line}: base ${base.ref} is not pinned by digest, and a tag can move: write it as …@sha256:<digest>, or pass --allow-floating-base`,
      { spec: spec.path },
    );
  }
  const transport = anchored(base, options.baseDir ?? spec.dir);
  const store = await openStore(transport, 'read', options.open ?? {});
  try {
    const descriptor = await store.resolve(refWithinStore(transport));
    if (base.pinned !== undefined && descriptor.digest !== base.pinned) {
      throw new LadingError('DIGEST_MISMATCH', `base ${base.ref} resolved to ${descriptor.digest}, not the pinned digest`);
    }
    return { name: base.ref, descriptor, floating: base.pinned === undefined, store };
  } catch (e) {
    await store.close();
    throw e;
  }
}

function anchored(base: Extract<BaseSpec, { kind: 'image' }>, dir: string): TransportRef {
  const t = base.transport;
  if (t.transport === 'docker' || isAbsolute(t.path)) return t;
  return { ...t, path: resolvePath(dir, t.path) };
}

/** The platforms to build when the spec lists none: the base's own (a single image), else linux/amd64. */
export async function defaultPlatforms(spec: BuildSpec, base: ResolvedBase | undefined): Promise<Platform[]> {
  if (spec.platforms !== undefined) return spec.platforms;
  if (base === undefined) return [{ os: 'linux', architecture: 'amd64' }];
  const parsed = parseManifest(await base.store.fetchManifest(base.descriptor), base.descriptor, `base ${base.name}`);
  if (parsed.kind === 'index') {
    const have = parsed.index.manifests.flatMap((m) => (m.platform ? [formatPlatform(m.platform)] : []));
    throw new LadingError(
      'INVALID_SPEC',
      `${spec.path}: the base ${base.name} is a multi-platform index (${have.join(', ')}): list the platforms to build under "platforms"`,
    );
  }
  const config = await readConfig(base.store, parsed.manifest.config);
  return [{ os: config.os, architecture: config.architecture, ...(config.variant !== undefined && { variant: config.variant }) }];
}

/** The base's image for `platform`: the matching entry of an index, or the single image if it matches. */
export async function baseImageFor(base: ResolvedBase, platform: Platform): Promise<BaseImage> {
  const what = `base ${base.name}`;
  const parsed = parseManifest(await base.store.fetchManifest(base.descriptor), base.descriptor, what);
  let descriptor = base.descriptor;
  let manifest: ImageManifest;
  if (parsed.kind === 'index') {
    const entry = parsed.index.manifests.find((m) => m.platform !== undefined && platformMatches(platform, m.platform));
    if (entry === undefined) {
      const have = parsed.index.manifests.flatMap((m) => (m.platform ? [formatPlatform(m.platform)] : []));
      throw new LadingError(
        'NO_MATCHING_PLATFORM',
        `${what} has no image for ${formatPlatform(platform)} (it has: ${have.join(', ') || 'none'}): drop that platform or pick another base`,
        { platform: formatPlatform(platform) },
      );
    }
    const child = parseManifest(await base.store.fetchManifest(entry), entry, `${what} (${formatPlatform(platform)})`);
    if (child.kind !== 'manifest')
      throw new LadingError('INVALID_MANIFEST', `${what}: the ${formatPlatform(platform)} entry is an index, not an image`);
    descriptor = { mediaType: child.descriptor.mediaType, digest: entry.digest, size: entry.size };
    manifest = child.manifest;
  } else {
    manifest = parsed.manifest;
  }
  const config = await readConfig(base.store, manifest.config);
  const own: Platform = {
    os: config.os,
    architecture: config.architecture,
    ...(config.variant !== undefined && { variant: config.variant }),
  };
  if (!platformMatches(platform, own)) {
    throw new LadingError(
      'NO_MATCHING_PLATFORM',
      `${what} is a ${formatPlatform(own)} image, and the spec asks for ${formatPlatform(platform)}: drop that platform or pick a multi-platform base`,
      { platform: formatPlatform(platform) },
    );
  }
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new LadingError(
      'INVALID_MANIFEST',
      `${what}: its config lists ${config.rootfs.diff_ids.length} diff_ids for ${manifest.layers.length} layers`,
    );
  }
  return { descriptor, manifest, config };
}
