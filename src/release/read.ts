/**
 * Reading a release image from any store: which image it is (an index for a multi-architecture release,
 * else one manifest), its payload files (found in its layers without unpacking them), and the summary
 * `lading release info` prints, plus the difference between two releases.
 */
import type { Readable } from 'node:stream';
import { LadingError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { parseManifest } from '../oci/parse.js';
import { formatPlatform, hostPlatform, platformMatches } from '../oci/platform.js';
import type { Descriptor, ImageConfig, ImageManifest, Platform } from '../oci/types.js';
import { isImageConfig, readConfig } from '../store/inspect.js';
import type { Store } from '../store/store.js';
import type { TransportRef } from '../store/transport.js';
import { readFilesFromLayers } from './layer-files.js';
import {
  checkNamesAgree,
  IMAGE_REFERENCES,
  type ImageReferences,
  MANIFESTS_DIR,
  parseImageReferences,
  parseReleaseMetadata,
  parseTools,
  RELEASE_METADATA,
  type ReleaseMetadata,
  TOOLS_FILE,
  type ToolSpec,
} from './payload.js';
import { parsePinnedPullSpec, pullSpecFor } from './pull-spec.js';
import { sortVersions } from './semver.js';

/** Payload files are small; a larger one is refused rather than held in memory. */
const MAX_PAYLOAD_FILE = 64 * 1024 * 1024;

export interface ReleaseImage {
  store: Store;
  location: TransportRef;
  /** What the reference resolved to: the index of a multi-architecture release, else the manifest. */
  descriptor: Descriptor;
  multi: boolean;
  platforms: Platform[];
  /** The image whose layers are read (for an index: linux/amd64 when present, as oc does, else the host's, else the first). */
  image: { descriptor: Descriptor; manifest: ImageManifest; config?: ImageConfig };
}

export interface Payload {
  references: ImageReferences;
  metadata: ReleaseMetadata;
  tools: ToolSpec[];
}

export async function openRelease(store: Store, location: TransportRef, ref: string | undefined): Promise<ReleaseImage> {
  const descriptor = await store.resolve(ref);
  const what = `release ${store.name}@${descriptor.digest}`;
  const parsed = parseManifest(await store.fetchManifest(descriptor), descriptor, what);
  let manifestDesc = parsed.descriptor;
  let manifest: ImageManifest;
  let platforms: Platform[];
  if (parsed.kind === 'index') {
    const entries = parsed.index.manifests.filter((d) => d.platform !== undefined);
    if (entries.length === 0) throw new LadingError('INVALID_RELEASE', `${what} is an index without platforms: not a release image`);
    platforms = entries.map((d) => d.platform!);
    const amd64 = { os: 'linux', architecture: 'amd64' };
    const pick =
      entries.find((d) => platformMatches(amd64, d.platform!)) ??
      entries.find((d) => platformMatches(hostPlatform(), d.platform!)) ??
      entries[0]!;
    const child = parseManifest(await store.fetchManifest(pick), pick, `${what} (${formatPlatform(pick.platform!)})`);
    if (child.kind !== 'manifest')
      throw new LadingError('INVALID_RELEASE', `${what}: its ${formatPlatform(pick.platform!)} entry is not an image`);
    manifestDesc = child.descriptor;
    manifest = child.manifest;
  } else {
    manifest = parsed.manifest;
    platforms = [];
  }
  const config = isImageConfig(manifest.config) ? await readConfig(store, manifest.config) : undefined;
  if (parsed.kind === 'manifest' && config) {
    platforms = [{ os: config.os, architecture: config.architecture, ...(config.variant !== undefined && { variant: config.variant }) }];
  }
  return {
    store,
    location,
    descriptor: parsed.descriptor,
    multi: parsed.kind === 'index',
    platforms,
    image: { descriptor: manifestDesc, manifest, ...(config && { config }) },
  };
}

/** `repo@sha256:<digest>` of the release (the index digest for a multi-architecture release). */
export function releasePullSpec(rel: ReleaseImage): string {
  return pullSpecFor(rel.location, rel.descriptor.digest);
}

/** How oc names a release's architecture: `linux/amd64`, or `multi (linux/amd64)` naming the platform in use. */
export function releaseArchitecture(rel: ReleaseImage, platform: Platform): string {
  return rel.multi ? `multi (${formatPlatform(platform)})` : formatPlatform(platform);
}

async function collect(content: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of content) {
    n += (chunk as Buffer).length;
    if (n > limit) throw new LadingError('INVALID_RELEASE', `${what} is larger than ${limit} bytes: not a payload file`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Reads and checks the payload files: image-references and release-metadata are required, as the CVO requires them. */
export async function readPayload(rel: ReleaseImage): Promise<Payload> {
  const what = `release ${rel.store.name}@${rel.descriptor.digest}`;
  const bytes = new Map<string, Buffer>();
  const found = await readFilesFromLayers(
    rel.store,
    rel.image.manifest.layers,
    [IMAGE_REFERENCES, RELEASE_METADATA, TOOLS_FILE],
    async (p, _h, c) => {
      bytes.set(p, await collect(c, MAX_PAYLOAD_FILE, `/${p} in ${what}`));
    },
  );
  const refs = bytes.get(IMAGE_REFERENCES);
  const meta = bytes.get(RELEASE_METADATA);
  if (refs === undefined && meta === undefined) {
    throw new LadingError(
      'INVALID_RELEASE',
      `${what} has no ${MANIFESTS_DIR}/ with image-references and release-metadata: it is not a release image (${describeMissing(found.get(IMAGE_REFERENCES))})`,
    );
  }
  if (refs === undefined)
    throw new LadingError('INVALID_RELEASE', `${what} has no /${IMAGE_REFERENCES} (${describeMissing(found.get(IMAGE_REFERENCES))})`);
  if (meta === undefined)
    throw new LadingError('INVALID_RELEASE', `${what} has no /${RELEASE_METADATA} (${describeMissing(found.get(RELEASE_METADATA))})`);
  const references = parseImageReferences(refs, `/${IMAGE_REFERENCES} in ${what}`, { pinned: true });
  const metadata = parseReleaseMetadata(meta, `/${RELEASE_METADATA} in ${what}`);
  checkNamesAgree(references, metadata, what);
  const tools = bytes.has(TOOLS_FILE) ? parseTools(bytes.get(TOOLS_FILE)!, `/${TOOLS_FILE} in ${what}`) : [];
  return { references, metadata, tools };
}

function describeMissing(l: { state: string; reason?: string } | undefined): string {
  return l?.state === 'missing' && l.reason !== undefined ? l.reason : 'not found';
}

/** The image manifest for `platform` under `digest`: the index's entry for it, or the image itself if its config names that platform. */
export async function imageFor(store: Store, digest: string, platform: Platform, what: string): Promise<ImageManifest> {
  const desc = await store.resolve(digest);
  const parsed = parseManifest(await store.fetchManifest(desc), desc, what);
  if (parsed.kind === 'manifest') {
    const config = isImageConfig(parsed.manifest.config) ? await readConfig(store, parsed.manifest.config) : undefined;
    if (config !== undefined && config.os !== '' && config.architecture !== '') {
      const have: Platform = {
        os: config.os,
        architecture: config.architecture,
        ...(config.variant !== undefined && { variant: config.variant }),
      };
      if (!platformMatches(platform, have)) {
        throw new LadingError('NO_MATCHING_PLATFORM', `${what} is an image for ${formatPlatform(have)}, not ${formatPlatform(platform)}`);
      }
    }
    return parsed.manifest;
  }
  const child = parsed.index.manifests.find((d) => d.platform !== undefined && platformMatches(platform, d.platform));
  if (child === undefined) {
    const have = parsed.index.manifests.filter((d) => d.platform !== undefined).map((d) => formatPlatform(d.platform!));
    throw new LadingError(
      'NO_MATCHING_PLATFORM',
      `${what} has no image for ${formatPlatform(platform)} (it has: ${have.join(', ') || 'none'})`,
    );
  }
  return imageFor(store, child.digest, platform, what);
}

export interface ComponentInfo {
  name: string;
  pullSpec: string;
  digest: Digest;
  annotations?: Record<string, string>;
}

/** What `lading release info` shows; JSON output is this object. */
export interface ReleaseInfo {
  name: string;
  digest: string;
  mediaType: string;
  pullSpec: string;
  created?: string;
  platforms: string[];
  multi: boolean;
  metadata: ReleaseMetadata;
  /** `previous`, in semver order. */
  upgrades: string[];
  labels: Record<string, string>;
  components: ComponentInfo[];
  tools: ToolSpec[];
}

export function releaseInfo(rel: ReleaseImage, payload: Payload): ReleaseInfo {
  const created = rel.image.config?.created;
  return {
    name: payload.metadata.version,
    digest: rel.descriptor.digest,
    mediaType: rel.descriptor.mediaType,
    pullSpec: releasePullSpec(rel),
    ...(created !== undefined && { created }),
    platforms: rel.platforms.map(formatPlatform),
    multi: rel.multi,
    metadata: payload.metadata,
    upgrades: sortVersions(payload.metadata.previous),
    labels: rel.image.config?.config?.Labels ?? {},
    components: [...payload.references.tags]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((t) => ({
        name: t.name,
        pullSpec: t.pullSpec,
        digest: parsePinnedPullSpec(t.pullSpec).digest,
        ...(t.annotations !== undefined && { annotations: t.annotations }),
      })),
    tools: payload.tools,
  };
}

export interface ReleaseChanges {
  from: { name: string; digest: string };
  to: { name: string; digest: string };
  /** True when the newer release lists the older one's version in `previous`. */
  upgradeFrom: boolean;
  added: { name: string; pullSpec: string }[];
  removed: { name: string; pullSpec: string }[];
  changed: { name: string; from: string; to: string }[];
}

/** What changed from `from` to `to`: components by digest (a moved pull spec with the same digest is unchanged). */
export function releaseChanges(from: ReleaseInfo, to: ReleaseInfo): ReleaseChanges {
  const before = new Map(from.components.map((c) => [c.name, c]));
  const after = new Map(to.components.map((c) => [c.name, c]));
  return {
    from: { name: from.name, digest: from.digest },
    to: { name: to.name, digest: to.digest },
    upgradeFrom: to.metadata.previous.includes(from.name),
    added: to.components.filter((c) => !before.has(c.name)).map((c) => ({ name: c.name, pullSpec: c.pullSpec })),
    removed: from.components.filter((c) => !after.has(c.name)).map((c) => ({ name: c.name, pullSpec: c.pullSpec })),
    changed: to.components
      .filter((c) => before.has(c.name) && before.get(c.name)!.digest !== c.digest)
      .map((c) => ({ name: c.name, from: before.get(c.name)!.pullSpec, to: c.pullSpec })),
  };
}
