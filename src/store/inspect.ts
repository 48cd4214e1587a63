/**
 * What `lading inspect` shows: an image's digest, media type, platforms, layers, config summary and
 * annotations, read from any store and validated on the way.
 */

import { parseConfig, parseManifest } from '../oci/parse.js';
import { formatPlatform } from '../oci/platform.js';
import type { Descriptor, ImageConfig } from '../oci/types.js';
import type { Store } from './store.js';
import { streamToBytes } from './stream-bytes.js';

/** Configs are small JSON documents; refuse to buffer one larger than this. */
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

export interface ImageSummary {
  name: string;
  digest: string;
  mediaType: string;
  size: number;
  artifactType?: string;
  annotations: Record<string, string>;
  /** For an index: its entries. */
  manifests?: { digest: string; mediaType: string; size: number; platform?: string }[];
  /** For a manifest: its layers and config. */
  layers?: { digest: string; mediaType: string; size: number }[];
  config?: {
    digest: string;
    mediaType: string;
    size: number;
    platform?: string;
    created?: string;
    author?: string;
    entrypoint?: string[] | null;
    cmd?: string[] | null;
    env?: string[];
    workingDir?: string;
    user?: string;
    labels?: Record<string, string>;
  };
}

export async function inspectImage(store: Store, ref: string | undefined): Promise<ImageSummary> {
  const desc = await store.resolve(ref);
  const parsed = parseManifest(await store.fetchManifest(desc), desc, `manifest ${desc.digest} in ${store.name}`);
  const base = { name: store.name, digest: desc.digest, mediaType: parsed.descriptor.mediaType, size: desc.size };
  if (parsed.kind === 'index') {
    const { index } = parsed;
    return {
      ...base,
      ...(index.artifactType !== undefined && { artifactType: index.artifactType }),
      annotations: index.annotations ?? {},
      manifests: index.manifests.map((m) => ({
        digest: m.digest,
        mediaType: m.mediaType,
        size: m.size,
        ...(m.platform && { platform: formatPlatform(m.platform) }),
      })),
    };
  }
  const { manifest } = parsed;
  const summary: ImageSummary = {
    ...base,
    ...(manifest.artifactType !== undefined && { artifactType: manifest.artifactType }),
    annotations: manifest.annotations ?? {},
    layers: manifest.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size })),
  };
  const c = manifest.config;
  summary.config = { digest: c.digest, mediaType: c.mediaType, size: c.size };
  if (isImageConfig(c)) {
    const config = await readConfig(store, c);
    const p = config.config ?? {};
    summary.config = {
      ...summary.config,
      platform: formatPlatform({ os: config.os, architecture: config.architecture, ...(config.variant && { variant: config.variant }) }),
      ...(config.created !== undefined && { created: config.created }),
      ...(config.author !== undefined && { author: config.author }),
      ...(p.Entrypoint !== undefined && { entrypoint: p.Entrypoint }),
      ...(p.Cmd !== undefined && { cmd: p.Cmd }),
      ...(p.Env !== undefined && { env: p.Env }),
      ...(p.WorkingDir !== undefined && { workingDir: p.WorkingDir }),
      ...(p.User !== undefined && { user: p.User }),
      ...(p.Labels !== undefined && { labels: p.Labels }),
    };
  }
  return summary;
}

export function isImageConfig(desc: Descriptor): boolean {
  return (
    desc.mediaType === 'application/vnd.oci.image.config.v1+json' || desc.mediaType === 'application/vnd.docker.container.image.v1+json'
  );
}

/** Reads and validates an image config blob. */
export async function readConfig(store: Store, desc: Descriptor): Promise<ImageConfig> {
  return parseConfig(await readSmallBlob(store, desc, MAX_CONFIG_BYTES), desc, `config ${desc.digest} in ${store.name}`);
}

/** Reads a blob known to be small (a config) whole, verified. */
export async function readSmallBlob(store: Store, desc: Descriptor, limit: number): Promise<Uint8Array> {
  return streamToBytes(await store.fetchBlob(desc), limit, `blob ${desc.digest} in ${store.name}`);
}
