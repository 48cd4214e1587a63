/**
 * `lading release new`: one image that pins every component by digest, so one signature over its digest
 * covers the whole release. Components given by tag are resolved once, up front, and only their digests
 * go into the release; a tag that moves while the release is written changes nothing (the digest
 * resolved first wins) and is reported.
 *
 * The release image is one layer holding `release-manifests/` (payload.ts), written by the reproducible
 * layer writer, with a config and manifest in canonical JSON whose times come from SOURCE_DATE_EPOCH (or
 * 0): the same inputs give the same release digest. With several platforms it is an index of one image
 * per platform, all with the same layer (a multi-architecture release, as OpenShift builds them), and
 * `release.openshift.io/architecture: multi` is set in the metadata.
 */
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { fsError, isLadingError, LadingError } from '../errors.js';
import { writeLayer } from '../fs/layer-writer.js';
import { FileTree, makeEntry, normalizePath } from '../fs/tree.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { type Digest, digestOf, isDigest } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import { parseManifest } from '../oci/parse.js';
import { formatPlatform, parsePlatform, platformMatches } from '../oci/platform.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform } from '../oci/types.js';
import type { Store } from '../store/store.js';
import { type OpenContext, openStore, parseTransportRef, refWithinStore, type TransportRef } from '../store/transport.js';
import { readFilesFromLayers } from './layer-files.js';
import { imageFor } from './read.js';
import {
  ARCH_METADATA_KEY,
  type ComponentTag,
  IMAGE_REFERENCES,
  imageReferencesBytes,
  MANIFESTS_DIR,
  METADATA_KIND,
  parseImageReferences,
  RELEASE_METADATA,
  type ReleaseMetadata,
  releaseMetadataBytes,
  TOOLS_FILE,
  type ToolSpec,
  toolsBytes,
} from './payload.js';
import { pullSpecFor } from './pull-spec.js';
import { requireSemver } from './semver.js';
import { StoreSet } from './store-set.js';

export interface ComposeOptions {
  /** The release version (semver): the ImageStream's name and release-metadata's version. */
  name: string;
  /** Where to write the release: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker://HOST/REPO[:TAG]`; the tag defaults to the name. */
  to: string;
  /** NAME=REF pairs; REF may be a tag (resolved now) or a digest. */
  components?: { name: string; ref: string }[];
  /** An image-references file (ImageStream, JSON or YAML) whose tags are components; `components` override it by name. */
  fromReferences?: string;
  previous?: string[];
  metadata?: Record<string, unknown>;
  tools?: ToolSpec[];
  /** Platforms of the release image; default linux/amd64. More than one makes a multi-architecture release. */
  platforms?: Platform[];
  /** Seconds since the epoch for every timestamp written; default SOURCE_DATE_EPOCH, else 0. */
  created?: number;
  context?: OpenContext;
  /** Called after every component is resolved, before anything is written (tests move tags here). */
  afterResolve?: () => Promise<void>;
}

export interface ResolvedComponent {
  name: string;
  input: string;
  /** The pull spec written into the release. */
  pullSpec: string;
  digest: Digest;
  /** The digest the input resolved to (the index, when a platform's image was picked from it). */
  resolved: Digest;
}

export interface MovedTag {
  name: string;
  input: string;
  /** What the release pins (resolved first). */
  pinned: Digest;
  /** What the tag names now. */
  now: Digest;
}

export interface ComposeResult {
  name: string;
  digest: Digest;
  mediaType: string;
  pullSpec: string;
  tag: string;
  created: string;
  platforms: string[];
  components: ResolvedComponent[];
  tools: ToolSpec[];
  moved: MovedTag[];
}

const COMPONENT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** `--component NAME=REF` */
export function parseComponentArg(arg: string): { name: string; ref: string } {
  const eq = arg.indexOf('=');
  const name = eq === -1 ? '' : arg.slice(0, eq);
  const ref = eq === -1 ? '' : arg.slice(eq + 1);
  if (!COMPONENT_NAME.test(name) || ref === '') {
    throw new LadingError('USAGE', `--component takes NAME=REF (NAME of letters, digits, '.', '_', '-'), not "${arg}"`);
  }
  return { name, ref };
}

/** `--tool NAME=COMPONENT:/path/in/image[@os/arch]` */
export function parseToolArg(arg: string): ToolSpec {
  const m = /^([A-Za-z0-9][A-Za-z0-9_.+-]*)=([A-Za-z0-9][A-Za-z0-9_.-]*):(\/[^@]*)(?:@(.+))?$/.exec(arg);
  if (!m) throw new LadingError('USAGE', `--tool takes NAME=COMPONENT:/path/in/image[@os/arch], not "${arg}"`);
  const path = normalizePath(m[3]!);
  if (path === '') throw new LadingError('USAGE', `--tool ${arg}: name a file, not /`);
  return { name: m[1]!, component: m[2]!, path, ...(m[4] !== undefined && { platform: formatPlatform(parsePlatform(m[4])) }) };
}

export function sourceDateEpoch(): number {
  const raw = process.env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === '') return 0;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new LadingError('USAGE', `SOURCE_DATE_EPOCH=${raw} is not a whole number of seconds`);
  return n;
}

export function rfc3339(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function isTagRef(t: TransportRef): boolean {
  return t.transport === 'docker' ? t.image.digest === undefined : t.ref === undefined || !isDigest(t.ref);
}

async function resolveComponent(
  stores: StoreSet,
  name: string,
  input: string,
  platforms: readonly Platform[],
): Promise<ResolvedComponent & { store: Store; location: TransportRef }> {
  let location: TransportRef;
  let store: Store;
  let top: Descriptor;
  try {
    location = parseTransportRef(input);
    store = await stores.get(location);
    top = await store.resolve(refWithinStore(location));
  } catch (e) {
    if (!isLadingError(e)) throw e;
    throw new LadingError(
      e.code,
      `cannot resolve component ${name} (${input}): ${e.message}`,
      { ...e.context, component: name },
      { cause: e },
    );
  }
  const parsed = parseManifest(await store.fetchManifest(top), top, `component ${name} (${input})`);
  let digest = top.digest;
  if (parsed.kind === 'index') {
    const have = parsed.index.manifests.filter((d) => d.platform !== undefined);
    const missing = platforms.filter((p) => !have.some((d) => platformMatches(p, d.platform!)));
    if (missing.length > 0) {
      throw new LadingError(
        'NO_MATCHING_PLATFORM',
        `component ${name} (${input}) is an index without ${missing.map(formatPlatform).join(', ')} (it has: ${have.map((d) => formatPlatform(d.platform!)).join(', ') || 'none'}): build it for that platform or leave it out`,
        { component: name },
      );
    }
    // A single-architecture release pins the platform's own image, as oc does without --keep-manifest-list.
    if (platforms.length === 1) digest = have.find((d) => platformMatches(platforms[0]!, d.platform!))!.digest;
  }
  return { name, input, pullSpec: pullSpecFor(location, digest), digest, resolved: top.digest, store, location };
}

/** Checks that every tool's file is in its component, for each platform it will be extracted for. */
async function checkTools(
  tools: readonly ToolSpec[],
  components: Map<string, ResolvedComponent & { store: Store }>,
  platforms: readonly Platform[],
): Promise<void> {
  for (const tool of tools) {
    const c = components.get(tool.component);
    if (c === undefined) {
      throw new LadingError(
        'USAGE',
        `--tool ${tool.name}: there is no component named ${tool.component} (components: ${[...components.keys()].sort().join(', ')})`,
      );
    }
    for (const platform of tool.platform !== undefined ? [parsePlatform(tool.platform)] : platforms) {
      const manifest = await imageFor(c.store, c.digest, platform, `component ${c.name} (${c.pullSpec})`);
      const found = await readFilesFromLayers(c.store, manifest.layers, [tool.path], async (_p, _h, content) => {
        content.resume();
      });
      const r = found.get(tool.path)!;
      if (r.state === 'missing') {
        throw new LadingError(
          'NOT_FOUND',
          `--tool ${tool.name}: /${tool.path} is not a file in component ${c.name} (${c.pullSpec}) for ${formatPlatform(platform)}: ${r.reason}`,
          {
            tool: tool.name,
          },
        );
      }
    }
  }
}

async function pushJson(store: Store, mediaType: string, value: unknown): Promise<Descriptor> {
  const bytes = canonicalJsonBytes(value);
  const desc: Descriptor = { mediaType, digest: digestOf(bytes), size: bytes.byteLength };
  if (!(await store.has(desc))) await store.pushBlob(desc, Readable.from([Buffer.from(bytes)]));
  return desc;
}

function manifestBytes(value: unknown, mediaType: string): { desc: Descriptor; bytes: Uint8Array } {
  const bytes = canonicalJsonBytes(value);
  return { desc: { mediaType, digest: digestOf(bytes), size: bytes.byteLength }, bytes };
}

/** The file tree of the release layer. */
export function payloadTree(files: { path: string; data: Uint8Array }[], mtime: number): FileTree {
  const tree = new FileTree({ mtime });
  tree.set(makeEntry(MANIFESTS_DIR, 'directory', { mode: 0o777, mtime }));
  for (const f of files)
    tree.set(makeEntry(f.path, 'file', { mode: 0o444, mtime, size: f.data.byteLength, content: { kind: 'bytes', data: f.data } }));
  return tree;
}

export async function composeRelease(options: ComposeOptions): Promise<ComposeResult> {
  requireSemver(options.name, '--name');
  const previous = (options.previous ?? []).filter((p) => p !== '');
  for (const p of previous) requireSemver(p, '--previous');
  const platforms = options.platforms?.length ? options.platforms : [{ os: 'linux', architecture: 'amd64' }];
  const created = options.created ?? sourceDateEpoch();
  const createdText = rfc3339(created);
  const to = parseTransportRef(options.to);
  const toRef = to.transport === 'docker' ? (to.image.digest ?? to.image.tag) : to.ref;
  if (toRef !== undefined && isDigest(toRef))
    throw new LadingError('USAGE', `--to ${options.to}: name a tag or nothing (the tag defaults to ${options.name}), not a digest`);
  const tag = toRef ?? options.name;

  // Inputs: the references file first, --component entries override it by name.
  const inputs = new Map<string, { ref: string; annotations?: Record<string, string> }>();
  if (options.fromReferences !== undefined) {
    const bytes = await readFile(options.fromReferences).catch((e: unknown) => {
      throw fsError(e, 'read', options.fromReferences!);
    });
    for (const t of parseImageReferences(bytes, options.fromReferences, { pinned: false }).tags) {
      inputs.set(t.name, { ref: t.pullSpec, ...(t.annotations !== undefined && { annotations: t.annotations }) });
    }
  }
  const seen = new Set<string>();
  for (const c of options.components ?? []) {
    if (seen.has(c.name)) throw new LadingError('USAGE', `--component ${c.name} is given twice`);
    seen.add(c.name);
    inputs.set(c.name, { ref: c.ref });
  }
  if (inputs.size === 0) throw new LadingError('USAGE', 'a release needs components: give --component NAME=REF or --from-references FILE');
  const tools = options.tools ?? [];
  const toolKeys = new Set<string>();
  for (const t of tools) {
    const key = `${t.name}@${t.platform ?? ''}`;
    if (toolKeys.has(key)) throw new LadingError('USAGE', `--tool ${t.name}${t.platform ? `@${t.platform}` : ''} is given twice`);
    toolKeys.add(key);
  }

  const metadata: Record<string, unknown> = { ...(options.metadata ?? {}) };
  if (platforms.length > 1 && metadata[ARCH_METADATA_KEY] === undefined) metadata[ARCH_METADATA_KEY] = 'multi';

  const stores = new StoreSet(options.context ?? {});
  try {
    const resolved = new Map<string, ResolvedComponent & { store: Store; location: TransportRef }>();
    for (const [name, input] of [...inputs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      resolved.set(name, await resolveComponent(stores, name, input.ref, platforms));
    }
    await checkTools(tools, resolved, platforms);
    await options.afterResolve?.();

    const tags: ComponentTag[] = [...resolved.values()].map((c) => {
      const annotations = inputs.get(c.name)?.annotations;
      return { name: c.name, pullSpec: c.pullSpec, ...(annotations !== undefined && { annotations }) };
    });
    const releaseMetadata: ReleaseMetadata = { kind: METADATA_KIND, version: options.name, previous, metadata };
    const files = [
      { path: IMAGE_REFERENCES, data: imageReferencesBytes({ name: options.name, creationTimestamp: createdText, annotations: {}, tags }) },
      { path: RELEASE_METADATA, data: releaseMetadataBytes(releaseMetadata) },
      ...(tools.length > 0 ? [{ path: TOOLS_FILE, data: toolsBytes(tools) }] : []),
    ];

    const dest = await openStore(to, 'write', options.context ?? {});
    let top: { desc: Descriptor; bytes: Uint8Array } | undefined;
    try {
      const layer = await writeLayer(dest, payloadTree(files, created), { compression: 'gzip', cacheDir: false });
      const images: Descriptor[] = [];
      for (const platform of platforms) {
        const config: ImageConfig = {
          created: createdText,
          architecture: platform.architecture,
          os: platform.os,
          ...(platform.variant !== undefined && { variant: platform.variant }),
          config: { Labels: { 'io.openshift.release': options.name } },
          rootfs: { type: 'layers', diff_ids: [layer.diffId] },
          history: [{ created: createdText, created_by: 'lading release new', comment: `release ${options.name}` }],
        };
        const configDesc = await pushJson(dest, MediaType.ociConfig, config);
        const manifest: ImageManifest = {
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: configDesc,
          layers: [layer.descriptor],
        };
        const m = manifestBytes(manifest, MediaType.ociManifest);
        if (platforms.length === 1) {
          top = m;
        } else {
          await dest.pushManifest(m.desc, m.bytes);
          images.push({ ...m.desc, platform });
        }
      }
      if (platforms.length > 1) {
        const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: images };
        top = manifestBytes(index, MediaType.ociIndex);
      }
      await dest.pushManifest(top!.desc, top!.bytes, { tags: [tag], root: true });
      await dest.close();
    } catch (e) {
      await dest.abort().catch(() => undefined);
      throw e;
    }

    const moved: MovedTag[] = [];
    for (const c of resolved.values()) {
      if (!isTagRef(c.location)) continue;
      const now = await c.store.resolve(refWithinStore(c.location)).catch(() => undefined);
      if (now !== undefined && now.digest !== c.resolved) moved.push({ name: c.name, input: c.input, pinned: c.resolved, now: now.digest });
    }
    return {
      name: options.name,
      digest: top!.desc.digest,
      mediaType: top!.desc.mediaType,
      pullSpec: pullSpecFor(to, top!.desc.digest),
      tag,
      created: createdText,
      platforms: platforms.map(formatPlatform),
      components: [...resolved.values()].map(({ name, input, pullSpec, digest, resolved: r }) => ({
        name,
        input,
        pullSpec,
        digest,
        resolved: r,
      })),
      tools,
      moved,
    };
  } finally {
    await stores.close();
  }
}
