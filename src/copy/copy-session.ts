/**
 * The one copy engine: every command that moves content (copy, mirror) runs through a CopySession.
 *
 * - Order keeps a destination consistent: blobs before the manifest naming them, manifests before the
 *   index listing them, so a reader never finds a manifest whose children are missing, even mid-crash.
 * - Manifests are copied byte for byte; digests are never changed by re-serializing.
 * - Blobs are deduplicated across every image of the session; blobs the destination has are skipped
 *   (which also makes a re-run resume where a killed one stopped); within a registry, mounted.
 * - An image whose manifest a registry destination already holds is complete (registries refuse a
 *   manifest whose blobs are missing), so a re-run costs a request or two per image.
 * - Referrers (API or tag schema) and legacy cosign tags (`sha256-<hex>.sig|.att|.sbom`) of every
 *   manifest copied come along, unless turned off.
 * - One image's failure stops that image's transfers and is reported; other images carry on (the caller
 *   decides whether to go on, as `mirror --keep-going` does).
 */
import { LadingError } from '../errors.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { digestOf, isDigest, parseDigest } from '../oci/digest.js';
import { isIndexMediaType, isManifestMediaType } from '../oci/media-types.js';
import { parseManifest } from '../oci/parse.js';
import { formatPlatform, hostPlatform, platformMatches } from '../oci/platform.js';
import type { Descriptor, ImageIndex, Platform } from '../oci/types.js';
import { ArchiveWriter } from '../store/archive/archive-store.js';
import { RegistryStore } from '../store/registry/registry-store.js';
import type { ReferrerSource, Store } from '../store/store.js';
import { type BlobAction, type TransferContext, planBlob, transferBlob } from './blob-transfer.js';
import { concurrencyLimit } from './limit.js';
import type { ProgressListener } from './progress.js';

export interface SessionOptions {
  /** Blob transfers at once per destination registry (or local destination); default 6. */
  jobs?: number;
  /** Link local files instead of copying them when both stores are on one filesystem (default true). */
  link?: boolean;
  /** Walk and report what would be done; write nothing. */
  dryRun?: boolean;
  /** Copy referrers and cosign tags of every manifest copied (default true). */
  referrers?: boolean;
  onProgress?: ProgressListener;
}

export interface ImageCopyOptions {
  /**
   * 'all' keeps an index whole. A list picks platforms: by default the first match alone is copied and
   * becomes the destination's root (skopeo --platform). With filterIndex (mirror sets) every match is
   * kept: one match is copied alone, all of them keep the index as it is, and a subset gets a new
   * index listing just those (a new digest: an index cannot keep its digest without all its children).
   * Default: this machine's platform, as skopeo does.
   */
  platforms?: 'all' | Platform[];
  filterIndex?: boolean;
  /** Tags to give the image in the destination. */
  tags?: readonly string[];
  /** Annotations for the image's entry in a layout's index.json (registries have no such place). */
  annotations?: Record<string, string>;
}

export interface PlanEntry {
  digest: string;
  size: number;
  kind: 'manifest' | 'blob';
  action: BlobAction | 'pushed';
}

export interface CopyResult {
  /** The descriptor the destination now holds at its root. */
  descriptor: Descriptor;
  manifests: number;
  blobs: Record<BlobAction, number>;
  /** Bytes moved (copied or linked and re-hashed; mounted and skipped blobs do not count). */
  bytes: number;
  /** Referrer manifests and cosign-tagged manifests copied along. */
  attached: number;
  /** What was done (or, with dryRun, what would be). */
  plan: PlanEntry[];
}

const COSIGN_SUFFIXES = ['sig', 'att', 'sbom'];

export class CopySession {
  private readonly blobs = new Map<string, Promise<BlobAction>>();
  private readonly limits = new Map<string, <T>(task: () => Promise<T>) => Promise<T>>();
  /** digest -> repositories of a registry host where this run has put it, for cross-repository mounts. */
  private readonly placed = new Map<string, Set<string>>();
  private readonly tagCache = new Map<Store, Promise<Set<string>>>();
  /** host\0digest -> the first transfer of that blob to that registry in this run, and its repository. */
  private readonly hostTransfers = new Map<string, { repository: string; done: Promise<boolean> }>();

  constructor(private readonly options: SessionOptions = {}) {}

  async copy(src: Store, srcRef: string | undefined, dst: Store, image: ImageCopyOptions = {}): Promise<CopyResult> {
    const failure = new AbortController();
    // A re-run's questions do not depend on each other: what the source's tag names, what the
    // destination's tags name, the source's tag list (referrers, cosign tags). Ask them at once.
    const early = this.startEarly(src, dst, image);
    const result: CopyResult = {
      descriptor: await this.resolveSource(src, srcRef, dst, image, early),
      manifests: 0,
      blobs: { skipped: 0, mounted: 0, linked: 0, copied: 0 },
      bytes: 0,
      attached: 0,
      plan: [],
    };
    const emit = this.options.onProgress ?? (() => undefined);
    const ctx: TransferContext = {
      link: this.options.link !== false,
      signal: failure.signal,
      emit,
      mountSources: (digest, host) => [...(this.placed.get(`${host}\0${digest}`) ?? [])],
    };
    // Settle everything this image started before returning: the caller's abort() must not race a write.
    const all = async (work: Promise<unknown>[]): Promise<void> => {
      const results = await Promise.allSettled(work);
      if (failure.signal.aborted) throw failure.signal.reason;
      for (const r of results) if (r.status === 'rejected') throw r.reason;
    };
    const fail = (e: unknown) => {
      if (!failure.signal.aborted) failure.abort(e);
      throw e;
    };

    const copyBlob = async (desc: Descriptor): Promise<void> => {
      const key = `${dst.name}\0${desc.digest}`;
      for (;;) {
        let p = this.blobs.get(key);
        if (p === undefined) {
          p = this.moveBlob(src, dst, desc, ctx);
          this.blobs.set(key, p);
          // A transfer stopped because another image failed may be wanted again by this one.
          p.catch(() => failure.signal.aborted && this.blobs.get(key) === p && this.blobs.delete(key));
          const action = await p.catch(fail);
          result.blobs[action]++;
          if (action === 'copied' || action === 'linked') result.bytes += desc.size;
          result.plan.push({ digest: desc.digest, size: desc.size, kind: 'blob', action });
          if (dst instanceof RegistryStore) this.remember(dst, desc.digest);
          emit({ type: 'blob', digest: desc.digest, size: desc.size, action });
          return;
        }
        try {
          await p; // another image is moving this blob already
          return;
        } catch (e) {
          if (failure.signal.aborted || this.blobs.has(key)) fail(e);
        }
      }
    };

    const copyManifest = async (
      desc: Descriptor,
      tags: readonly string[] | undefined,
      top: boolean,
      given?: Uint8Array,
    ): Promise<Descriptor> => {
      // A registry destination that holds this manifest holds all of it: no need to even read it (re-runs).
      const selecting = top && given === undefined && image.platforms !== 'all' && isIndexMediaType(desc.mediaType);
      const known = top && given === undefined ? early : undefined;
      if (!selecting && (await this.alreadyComplete(dst, desc, tags, known))) {
        result.plan.push({ digest: desc.digest, size: desc.size, kind: 'manifest', action: 'skipped' });
        const present: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
        if (this.options.referrers !== false) await copyAttached(present);
        return present;
      }
      const bytes = given ?? (await src.fetchManifest(desc));
      const parsed = parseManifest(bytes, desc, `manifest ${desc.digest} in ${src.name}`);
      const pushed: Descriptor = { mediaType: parsed.descriptor.mediaType, digest: desc.digest, size: desc.size };
      if (top && image.annotations !== undefined) pushed.annotations = image.annotations;
      if (parsed.kind === 'index' && top && image.platforms !== 'all' && given === undefined) {
        if (!image.filterIndex) return copyManifest(choosePlatform(parsed.index.manifests, image.platforms, desc, src.name), tags, true);
        const kept = parsed.index.manifests.filter((m) => keepChild(m, image));
        if (kept.length === 0 || kept.length === 1) {
          return copyManifest(kept[0] ?? choosePlatform(parsed.index.manifests, image.platforms, desc, src.name), tags, true);
        }
        if (kept.length < parsed.index.manifests.length) {
          const filtered = filteredIndex(parsed.index, kept, desc);
          return copyManifest(filtered.descriptor, tags, true, filtered.bytes);
        }
      }
      if (parsed.kind === 'index') {
        const wanted = parsed.index.manifests.filter((m) => keepChild(m, image));
        await all(wanted.map((m) => (isManifestMediaType(m.mediaType) ? copyManifest(m, undefined, false) : copyBlob(m))));
      } else {
        await all([parsed.manifest.config, ...parsed.manifest.layers].map((d) => copyBlob(d)));
      }
      if (!this.options.dryRun) await dst.pushManifest(pushed, bytes, tags === undefined ? {} : { tags, root: true }).catch(fail);
      result.plan.push({ digest: desc.digest, size: desc.size, kind: 'manifest', action: 'pushed' });
      result.manifests++;
      emit({ type: 'manifest', digest: desc.digest, mediaType: pushed.mediaType, size: desc.size });
      if (this.options.referrers !== false) await copyAttached(pushed);
      return pushed;
    };

    /** Referrers and cosign-tagged signatures, attestations and SBOMs of a manifest. */
    const copyAttached = async (subject: Descriptor): Promise<void> => {
      const attached: { desc: Descriptor; tag?: string }[] = [];
      if (hasReferrers(src)) for (const r of await src.referrers(subject)) attached.push({ desc: r });
      const tags = await this.tagsOf(src);
      const { algorithm, encoded } = parseDigest(subject.digest);
      for (const suffix of COSIGN_SUFFIXES) {
        const tag = `${algorithm}-${encoded}.${suffix}`;
        if (tags.has(tag)) attached.push({ desc: await src.resolve(tag), tag });
      }
      for (const a of attached) {
        if (!isManifestMediaType(a.desc.mediaType)) continue;
        // Untagged referrers are still recorded at the destination's top level, so they can be found.
        await copyManifest(a.desc, a.tag === undefined ? [] : [a.tag], false);
        result.attached++;
      }
    };

    result.descriptor = await copyManifest(result.descriptor, image.tags ?? [], true);
    return result;
  }

  /**
   * One blob into one destination. Within a registry a blob goes up once per run, whatever the number
   * of repositories wanting it: the first repository uploads it, and the others wait for that (without
   * holding a transfer slot), then mount it from there, falling back to their own transfer if the
   * registry refuses the mount or the first upload failed.
   */
  private async moveBlob(src: Store, dst: Store, desc: Descriptor, ctx: TransferContext): Promise<BlobAction> {
    const limit = this.limitFor(dst);
    if (this.options.dryRun) return limit(() => planBlob(src, dst, desc, ctx));
    if (!(dst instanceof RegistryStore)) return limit(() => transferBlob(src, dst, desc, ctx));
    const key = `${dst.host}\0${desc.digest}`;
    const first = this.hostTransfers.get(key);
    let mountFirst: string[] = [];
    if (first !== undefined && first.repository !== dst.repository && (await first.done)) mountFirst = [first.repository];
    else mountFirst = ctx.mountSources(desc.digest, dst.host);
    const p = limit(() => transferBlob(src, dst, desc, ctx, { mountFirst }));
    if (first === undefined || !(await first.done)) {
      this.hostTransfers.set(key, {
        repository: dst.repository,
        done: p.then(
          () => true,
          () => false,
        ),
      });
    }
    return p;
  }

  /**
   * Questions asked before the source's answer is in: the source's tag list (wanted for referrers and
   * cosign tags whatever happens) and, when the image is taken whole, what the destination's tags name.
   */
  private startEarly(src: Store, dst: Store, image: ImageCopyOptions): EarlyAnswers {
    if (this.options.referrers !== false) this.tagsOf(src).catch(() => undefined); // cached; its error surfaces where it is used
    const early: EarlyAnswers = { tags: new Map() };
    if (!(dst instanceof RegistryStore) || image.platforms !== 'all') return early;
    for (const tag of image.tags ?? []) {
      const p = resolveIfPresent(dst, tag);
      p.catch(() => undefined); // awaited (and its error reported) in alreadyComplete
      early.tags.set(tag, p);
    }
    return early;
  }

  /**
   * The descriptor of the image to copy. An image named by digest, taken whole, that a registry
   * destination already holds (under the tags asked for) is described by the destination's answer: the
   * source need not be asked at all, which leaves a re-run one request per image besides its referrers.
   */
  private async resolveSource(
    src: Store,
    srcRef: string | undefined,
    dst: Store,
    image: ImageCopyOptions,
    early: EarlyAnswers,
  ): Promise<Descriptor> {
    if (srcRef !== undefined && isDigest(srcRef) && dst instanceof RegistryStore && image.platforms === 'all') {
      const answers = early.tags.size > 0 ? [...early.tags.values()] : [resolveIfPresent(dst, srcRef)];
      const there = await Promise.all(answers);
      const first = there[0];
      if (first !== undefined && there.every((d) => d?.digest === srcRef)) {
        early.present = srcRef;
        return { mediaType: first.mediaType, digest: first.digest, size: first.size };
      }
    }
    return src.resolve(srcRef);
  }

  /** The destination holds this manifest (under the tags asked for) and will not hold it half-copied. */
  private async alreadyComplete(dst: Store, desc: Descriptor, tags: readonly string[] | undefined, early?: EarlyAnswers): Promise<boolean> {
    if (!(dst instanceof RegistryStore)) return false; // a layout may lack blobs it references: walk it
    if (early?.present === desc.digest) return true;
    if (tags !== undefined && tags.length > 0) {
      for (const tag of tags) {
        const found = await (early?.tags.get(tag) ?? resolveIfPresent(dst, tag));
        if (found?.digest !== desc.digest) return false;
      }
      return true;
    }
    return dst.has(desc);
  }

  private limitFor(dst: Store): <T>(task: () => Promise<T>) => Promise<T> {
    // An archive is one tar stream that takes blobs one after another in the order they arrive: one
    // at a time, in the order asked for, so the same content always gives the same archive bytes.
    const key = dst instanceof RegistryStore ? dst.host : dst instanceof ArchiveWriter ? `archive ${dst.name}` : 'local';
    let limit = this.limits.get(key);
    if (limit === undefined) {
      limit = concurrencyLimit(dst instanceof ArchiveWriter ? 1 : (this.options.jobs ?? 6));
      this.limits.set(key, limit);
    }
    return limit;
  }

  private remember(dst: RegistryStore, digest: string): void {
    const key = `${dst.host}\0${digest}`;
    let set = this.placed.get(key);
    if (set === undefined) this.placed.set(key, (set = new Set()));
    set.add(dst.repository);
  }

  private tagsOf(src: Store): Promise<Set<string>> {
    let p = this.tagCache.get(src);
    if (p === undefined) {
      // A registry store keeps its own list (its referrers lookup reads the same one): one request per repository.
      p = src instanceof RegistryStore ? src.cachedTags() : src.tags().then((t) => new Set(t));
      this.tagCache.set(src, p);
    }
    return p;
  }
}

/** What the destination was asked before the source answered (see CopySession.startEarly). */
interface EarlyAnswers {
  /** Per destination tag: what it names there, or undefined. */
  tags: Map<string, Promise<Descriptor | undefined>>;
  /** A digest the destination is known to hold whole, under the tags asked for. */
  present?: string;
}

/** What `tag` names in `store`, or undefined when it names nothing. */
function resolveIfPresent(store: Store, tag: string): Promise<Descriptor | undefined> {
  return store.resolve(tag).catch((e: unknown) => {
    if (e instanceof LadingError && e.code === 'NOT_FOUND') return undefined;
    throw e;
  });
}

function hasReferrers(s: Store): s is Store & ReferrerSource {
  return typeof (s as Partial<ReferrerSource>).referrers === 'function';
}

function keepChild(m: Descriptor, image: ImageCopyOptions): boolean {
  if (image.platforms === undefined || image.platforms === 'all') return true;
  return m.platform !== undefined && image.platforms.some((p) => platformMatches(p, m.platform as Platform));
}

/** The index with only `kept` entries (verbatim), recording which index it was cut from. */
function filteredIndex(index: ImageIndex, kept: Descriptor[], from: Descriptor): { descriptor: Descriptor; bytes: Uint8Array } {
  const annotations = { ...index.annotations, [FILTERED_FROM]: from.digest };
  const bytes = canonicalJsonBytes({ ...index, manifests: kept, annotations });
  return { descriptor: { mediaType: from.mediaType, digest: digestOf(bytes), size: bytes.byteLength }, bytes };
}

/** Annotation on an index Lading cut down to some platforms: the digest of the original. */
export const FILTERED_FROM = 'io.lading.filtered-from';

function choosePlatform(entries: Descriptor[], wanted: Platform[] | undefined, index: Descriptor, storeName: string): Descriptor {
  const wants = wanted ?? [hostPlatform()];
  for (const want of wants) {
    const found = entries.find((m) => m.platform !== undefined && platformMatches(want, m.platform));
    if (found !== undefined) return found;
  }
  const have = entries.flatMap((m) => (m.platform ? [formatPlatform(m.platform)] : []));
  throw new LadingError(
    'NO_MATCHING_PLATFORM',
    `no image for ${wants.map(formatPlatform).join(' or ')} in index ${index.digest} of ${storeName} (it has ${have.join(', ') || 'no platforms'}): pass --platform or --all`,
  );
}
