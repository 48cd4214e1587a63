/**
 * `lading mirror`: many images into one target (a registry prefix, one OCI layout, or one oci-archive),
 * through one CopySession, so blobs shared between images move once and land once. Images run several at
 * a time; with keepGoing a failed image is recorded and the others go on. Afterwards the mappings say
 * where each source went, for the ImageDigestMirrorSet and the plain list a cluster needs.
 */
import { LadingError } from '../errors.js';
import { formatReference, type ImageReference, repositoryOf } from '../oci/reference.js';
import { ArchiveReader, ArchiveWriter } from '../store/archive/archive-store.js';
import { LayoutStore } from '../store/layout/layout-store.js';
import type { RegistryClient } from '../store/registry/client.js';
import { RegistryStore } from '../store/registry/registry-store.js';
import type { Store } from '../store/store.js';
import { type CopyResult, CopySession, type ImageCopyOptions, type SessionOptions } from './copy-session.js';
import { concurrencyLimit } from './limit.js';
import {
  inShard,
  layoutRefName,
  type MirrorTarget,
  registryDestination,
  SOURCE_ANNOTATION,
  sourceFromLayoutEntry,
} from './mirror-names.js';
import type { MirrorMapping } from './mirror-outputs.js';
import type { MirrorSetImage } from './mirror-set.js';

export interface MirrorOptions extends SessionOptions {
  keepHost?: boolean;
  keepGoing?: boolean;
  shard?: { index: number; count: number };
  /** Images copied at once (default 4). */
  imageJobs?: number;
  /** For an archive target: cut it into parts of at most this many bytes (FILE.part-0001, …). */
  splitBytes?: number;
  /** Called as each image finishes (or fails). */
  onImage?: (outcome: MirrorOutcome) => void;
}

export interface MirrorOutcome {
  source: string;
  destination: string;
  digest?: string;
  result?: CopyResult;
  error?: string;
}

export interface MirrorReport {
  images: MirrorOutcome[];
  failed: number;
  mappings: MirrorMapping[];
}

/** Where the images come from: registries (a mirror set), or a carried layout/archive being replayed. */
export type MirrorSource = { kind: 'set'; images: MirrorSetImage[] } | { kind: 'carried'; location: MirrorTarget };

interface Job {
  source: ImageReference;
  open: () => Promise<{ store: Store; ref: string }>;
  image: ImageCopyOptions;
}

export async function mirror(
  from: MirrorSource,
  to: MirrorTarget,
  client: RegistryClient,
  options: MirrorOptions = {},
): Promise<MirrorReport> {
  const session = new CopySession(options);
  const sources = new Map<string, Store>();
  const carried = from.kind === 'carried' ? await openCarried(from.location) : undefined;
  const target = await openTarget(to, options.splitBytes);
  const registryStores = new Map<string, RegistryStore>();
  const report: MirrorReport = { images: [], failed: 0, mappings: [] };
  try {
    const jobs = carried ? await carriedJobs(carried) : setJobs(from.kind === 'set' ? from.images : [], client, sources);
    const limit = concurrencyLimit(options.imageJobs ?? 4);
    let stop = false;
    await Promise.all(
      jobs
        .filter((j) => options.shard === undefined || inShard(j.source, options.shard))
        .map((job) =>
          limit(async () => {
            if (stop) return;
            const dest = destinationFor(job.source, to, options);
            const outcome: MirrorOutcome = { source: formatReference(job.source), destination: dest.name };
            try {
              const { store, ref } = await job.open();
              const dst = target ?? registryStore(registryStores, client, dest.image as ImageReference);
              const result = await session.copy(store, ref, dst, {
                ...job.image,
                tags: dest.tags,
                ...(dest.annotations && { annotations: dest.annotations }),
              });
              outcome.digest = result.descriptor.digest;
              outcome.result = result;
              report.mappings.push({ source: job.source, destination: dest.name });
            } catch (e) {
              outcome.error = e instanceof Error ? e.message : String(e);
              report.failed++;
              if (!options.keepGoing) stop = true;
            }
            report.images.push(outcome);
            options.onImage?.(outcome);
          }),
        ),
    );
    const complete = report.failed === 0 || options.keepGoing === true;
    if (target !== undefined) {
      if (complete && !options.dryRun) await target.close();
      else await target.abort();
    }
  } catch (e) {
    await target?.abort();
    throw e;
  } finally {
    await carried?.close();
  }
  // Code-unit order: the same on every machine, and no collator to load (localeCompare's first call costs ~30 ms).
  report.images.sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
  return report;
}

function setJobs(images: MirrorSetImage[], client: RegistryClient, sources: Map<string, Store>): Job[] {
  return images.map((img) => ({
    source: img.source,
    open: async () => {
      const repo = repositoryOf(img.source);
      let store = sources.get(repo);
      if (store === undefined) sources.set(repo, (store = new RegistryStore(client, img.source.domain, img.source.path, 'pull')));
      return { store, ref: img.source.digest ?? img.source.tag ?? 'latest' };
    },
    image: img.platforms === 'all' ? { platforms: 'all' } : { platforms: img.platforms, filterIndex: true },
  }));
}

/** A carried mirror lists its images in index.json, each entry naming the source it came from. */
async function carriedJobs(store: LayoutStore | ArchiveReader): Promise<Job[]> {
  const index = await store.readIndex();
  const jobs: Job[] = [];
  for (const entry of index.manifests) {
    const source = sourceFromLayoutEntry(entry.annotations);
    if (source === undefined) continue; // referrers and signatures ride along with their subjects
    jobs.push({ source, open: async () => ({ store, ref: entry.digest }), image: { platforms: 'all' } });
  }
  if (jobs.length === 0) throw new LadingError('NOT_FOUND', `${store.name} holds no mirrored images (no entry names its source)`);
  return jobs;
}

function destinationFor(
  source: ImageReference,
  to: MirrorTarget,
  options: MirrorOptions,
): { name: string; tags: string[]; image?: ImageReference; annotations?: Record<string, string> } {
  if (to.kind === 'registry') {
    const image = registryDestination(source, to, { keepHost: options.keepHost ?? false });
    return { name: formatReference(image), tags: image.digest === undefined && image.tag ? [image.tag] : [], image };
  }
  const ref = layoutRefName(source);
  const where = to.kind === 'layout' ? `oci:${to.dir}` : `oci-archive:${to.file}`;
  return {
    name: ref === undefined ? `${where}@${source.digest}` : `${where}:${ref}`,
    tags: ref === undefined ? [] : [ref],
    annotations: { [SOURCE_ANNOTATION]: formatReference(source) },
  };
}

function registryStore(cache: Map<string, RegistryStore>, client: RegistryClient, image: ImageReference): RegistryStore {
  const key = repositoryOf(image);
  let s = cache.get(key);
  if (s === undefined) cache.set(key, (s = new RegistryStore(client, image.domain, image.path, 'push')));
  return s;
}

async function openTarget(to: MirrorTarget, splitBytes: number | undefined): Promise<Store | undefined> {
  if (to.kind === 'layout') return LayoutStore.open(to.dir, 'write');
  if (to.kind === 'archive') return ArchiveWriter.create(to.file, splitBytes === undefined ? {} : { splitBytes });
  if (splitBytes !== undefined) throw new LadingError('USAGE', '--split-size applies to an oci-archive target');
  return undefined;
}

async function openCarried(from: MirrorTarget): Promise<LayoutStore | ArchiveReader> {
  if (from.kind === 'layout') return LayoutStore.open(from.dir, 'read');
  if (from.kind === 'archive') return ArchiveReader.open(from.file);
  throw new LadingError('USAGE', '--from takes oci:DIR or oci-archive:FILE (a carried mirror); registries are listed in the mirror set');
}
