/**
 * `lading mirror`: many images into one target (a registry prefix, one OCI layout, or one oci-archive),
 * through one CopySession, so blobs shared between images move once and land once. Images run several at
 * a time; with keepGoing a failed image is recorded and the others go on. Afterwards the mappings say
 * where each source went, for the ImageDigestMirrorSet and the plain list a cluster needs.
 *
 * With a bound-image finder or an image check (see mirror-plan.ts), every image is planned first:
 * resolved, its bound images found and added to the run, checked; then copied, each declaring image only
 * after its bound images have landed, so a target never holds a bootable image without them.
 */
import { LadingError } from '../errors.js';
import { formatReference, type ImageReference, repositoryOf } from '../oci/reference.js';
import { ArchiveReader, ArchiveWriter } from '../store/archive/archive-store.js';
import { LayoutStore } from '../store/layout/layout-store.js';
import type { RegistryClient } from '../store/registry/client.js';
import { RegistryStore } from '../store/registry/registry-store.js';
import type { Store } from '../store/store.js';
import { type CopyResult, CopySession, type SessionOptions } from './copy-session.js';
import { concurrencyLimit } from './limit.js';
import {
  BOUND_OF_ANNOTATION,
  inShard,
  layoutRefName,
  type MirrorTarget,
  registryDestination,
  SOURCE_ANNOTATION,
  sourceFromLayoutEntry,
} from './mirror-names.js';
import type { MirrorMapping } from './mirror-outputs.js';
import { type BoundImageFinder, type ImageCheck, type MirrorJob, planMirror } from './mirror-plan.js';
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
  /** Finds the bound images of each image of a mirror set, to copy along (src/boot's boundImagesOf, wired by the caller). */
  boundImages?: BoundImageFinder;
  /** Runs on every image (bound images too) before any of it is copied; a throw fails that image. */
  checkImage?: ImageCheck;
}

export interface MirrorOutcome {
  source: string;
  destination: string;
  digest?: string;
  result?: CopyResult;
  error?: string;
  /** For a bound image: the image declaring it, and the file that does. */
  boundOf?: string;
  declaredIn?: string;
  /** For an image declaring bound images: each of them (source as mirrored, image as declared, the declaring file). */
  bound?: { source: string; image: string; file: string }[];
}

export interface MirrorReport {
  images: MirrorOutcome[];
  failed: number;
  mappings: MirrorMapping[];
}

/** Where the images come from: registries (a mirror set), or a carried layout/archive being replayed. */
export type MirrorSource = { kind: 'set'; images: MirrorSetImage[] } | { kind: 'carried'; location: MirrorTarget };

type Job = MirrorJob;
type Done = 'ok' | 'failed' | 'skipped';

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
    const listed = carried ? await carriedJobs(carried) : setJobs(from.kind === 'set' ? from.images : [], client, sources);
    let jobs = listed.filter((j) => options.shard === undefined || inShard(j.source, options.shard));
    let stop = false;
    if (options.boundImages !== undefined || options.checkImage !== undefined) {
      jobs = await planMirror(jobs, {
        ...(!carried && options.boundImages !== undefined && { finder: options.boundImages }),
        ...(options.checkImage !== undefined && { check: options.checkImage }),
        targetOf: (source) => destinationFor(source, to, options).image ?? source,
        openSource: (source) => sourceStore(sources, client, source),
        jobs: options.imageJobs ?? 4,
      });
      if (!options.keepGoing && jobs.some((j) => j.planError !== undefined)) stop = true;
    }
    const limit = concurrencyLimit(options.imageJobs ?? 4);
    const record = (outcome: MirrorOutcome, error?: string): Done => {
      if (error !== undefined) {
        outcome.error = error;
        report.failed++;
        if (!options.keepGoing) stop = true;
      }
      report.images.push(outcome);
      options.onImage?.(outcome);
      return error === undefined ? 'ok' : 'failed';
    };
    const runs = new Map<Job, Promise<Done>>();
    const run = (job: Job): Promise<Done> => {
      let p = runs.get(job);
      if (p === undefined) runs.set(job, (p = runJob(job)));
      return p;
    };
    const runJob = async (job: Job): Promise<Done> => {
      const dest = destinationFor(job.source, to, options, job.boundOf?.source);
      const outcome: MirrorOutcome = {
        source: formatReference(job.source),
        destination: dest.name,
        ...(job.boundOf !== undefined && { boundOf: job.boundOf.source }),
        ...(job.boundOf?.file !== undefined && { declaredIn: job.boundOf.file }),
        ...(job.bound !== undefined && { bound: job.bound }),
      };
      if (job.planError !== undefined) return record(outcome, job.planError);
      const waits = await Promise.all((job.waitFor ?? []).map(async (dep) => ({ dep, done: await run(dep) })));
      const broken = waits.find((w) => w.done === 'failed');
      if (broken !== undefined) {
        const b = broken.dep.boundOf;
        return record(
          outcome,
          `bound image ${b?.image ?? formatReference(broken.dep.source)} (declared in ${b?.file ?? '?'}) failed to mirror`,
        );
      }
      if (waits.some((w) => w.done === 'skipped')) return 'skipped';
      return limit(async () => {
        if (stop) return 'skipped';
        try {
          const { store, ref } = await job.open();
          const dst = target ?? registryStore(registryStores, client, dest.image as ImageReference);
          const result = await session.copy(store, job.resolved?.digest ?? ref, dst, {
            ...job.image,
            tags: dest.tags,
            ...(dest.annotations && { annotations: dest.annotations }),
          });
          outcome.digest = result.descriptor.digest;
          outcome.result = result;
          report.mappings.push({ source: job.source, destination: dest.name });
        } catch (e) {
          return record(outcome, e instanceof Error ? e.message : String(e));
        }
        return record(outcome);
      });
    };
    await Promise.all(jobs.map(run));
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
    open: async () => ({ store: sourceStore(sources, client, img.source), ref: img.source.digest ?? img.source.tag ?? 'latest' }),
    image: img.platforms === 'all' ? { platforms: 'all' } : { platforms: img.platforms, filterIndex: true },
    expand: true,
  }));
}

/** One pulling store per source repository, shared by every image of the run. */
function sourceStore(sources: Map<string, Store>, client: RegistryClient, source: ImageReference): Store {
  const repo = repositoryOf(source);
  let store = sources.get(repo);
  if (store === undefined) sources.set(repo, (store = new RegistryStore(client, source.domain, source.path, 'pull')));
  return store;
}

/** A carried mirror lists its images in index.json, each entry naming the source it came from. */
async function carriedJobs(store: LayoutStore | ArchiveReader): Promise<Job[]> {
  const index = await store.readIndex();
  const jobs: Job[] = [];
  for (const entry of index.manifests) {
    const source = sourceFromLayoutEntry(entry.annotations);
    if (source === undefined) continue; // referrers and signatures ride along with their subjects
    const boundOf = entry.annotations?.[BOUND_OF_ANNOTATION];
    jobs.push({
      source,
      open: async () => ({ store, ref: entry.digest }),
      image: { platforms: 'all' },
      expand: false,
      // Carried bound images were checked when they were carried; replaying them keeps the mark.
      ...(boundOf !== undefined && { boundOf: { source: boundOf, image: formatReference(source) } }),
    });
  }
  if (jobs.length === 0) throw new LadingError('NOT_FOUND', `${store.name} holds no mirrored images (no entry names its source)`);
  return jobs;
}

function destinationFor(
  source: ImageReference,
  to: MirrorTarget,
  options: MirrorOptions,
  boundOf?: string,
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
    annotations: { [SOURCE_ANNOTATION]: formatReference(source), ...(boundOf !== undefined && { [BOUND_OF_ANNOTATION]: boundOf }) },
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
