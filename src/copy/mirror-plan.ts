/**
 * The mirror plan: what a mirror run copies, worked out before anything is written. Each image is
 * resolved at its source; the images it needs beside it (bootc's logically bound images) are found by a
 * finder the caller passes in, checked to be at their source, and added to the run, once each, marked as
 * bound images of the image that declares them; a caller's check (carried signatures) runs on every
 * image. An image whose plan fails (a bound image missing at its source, a bad signature) fails before
 * any of it is copied, so the target never holds half of it.
 *
 * Finding bound images means reading an image's layers, which is src/boot's business; src/boot itself
 * copies images (bound-images pull), so src/copy takes the finder as a function instead of importing it,
 * and the CLI wires src/boot in. Bound images of bound images are not followed, as bootc does not.
 */
import { LadingError } from '../errors.js';
import { isIndexMediaType } from '../oci/media-types.js';
import { parseManifest } from '../oci/parse.js';
import { platformMatches } from '../oci/platform.js';
import { formatReference, type ImageReference, withDefaultTag } from '../oci/reference.js';
import type { Descriptor, Platform } from '../oci/types.js';
import type { Store } from '../store/store.js';
import type { ImageCopyOptions } from './copy-session.js';
import { concurrencyLimit } from './limit.js';

/** An image an image declares it needs beside it, as the finder reports it. */
export interface BoundImageRef {
  /** The image as declared (for messages). */
  image: string;
  /** The same, parsed and normalized. */
  reference: ImageReference;
  /** The file that declares it (inside the declaring image). */
  file: string;
}

/** Finds the bound images of the image `desc` names in `store` (one platform's image, or a whole index). */
export type BoundImageFinder = (store: Store, desc: Descriptor) => Promise<BoundImageRef[]>;

/** An image about to be copied, resolved at its source. */
export interface ResolvedImage {
  source: ImageReference;
  /** What the image is called at the target: its registry destination, or (layout, archive) its source name. */
  target: ImageReference;
  store: Store;
  descriptor: Descriptor;
}

/** A check run on every image before any of it is copied; a throw fails the image. */
export type ImageCheck = (image: ResolvedImage) => Promise<void>;

/** One image of a mirror run. */
export interface MirrorJob {
  source: ImageReference;
  open: () => Promise<{ store: Store; ref: string }>;
  image: ImageCopyOptions;
  /** Whether the finder is asked about this image (images of the set: yes; bound images and carried ones: no). */
  expand: boolean;
  /** For a bound image: the source of the image declaring it, the file declaring it, and the image as declared. */
  boundOf?: { source: string; file?: string; image: string };
  /** Filled in by planning: */
  resolved?: Descriptor;
  /** The bound images this image declares (for the report). */
  bound?: { source: string; image: string; file: string }[];
  /** Bound images to wait for: this image is copied only once they have all landed. */
  waitFor?: MirrorJob[];
  /** Why planning failed; the image is reported failed and nothing of it copied. */
  planError?: string;
}

export interface PlanContext {
  finder?: BoundImageFinder;
  check?: ImageCheck;
  /** The target name of an image (see ResolvedImage.target). */
  targetOf: (source: ImageReference) => ImageReference;
  /** Opens a bound image's source (a registry repository). */
  openSource: (source: ImageReference) => Store;
  /** Images planned at once. */
  jobs: number;
}

/**
 * Resolves every job, finds and checks bound images, and returns the jobs with the bound images added
 * (after the images of the set, in the order they were first declared). Never throws for one image's
 * problem: that image gets a planError.
 */
export async function planMirror(jobs: MirrorJob[], ctx: PlanContext): Promise<MirrorJob[]> {
  const boundAtSource = new Map<string, Promise<{ store: Store; descriptor: Descriptor }>>();
  const checked = new Map<string, Promise<void>>();
  const checkOnce = (source: ImageReference, store: Store, descriptor: Descriptor): Promise<void> => {
    const key = `${formatReference(source)}\0${descriptor.digest}`;
    let p = checked.get(key);
    if (p === undefined) {
      p = ctx.check?.({ source, target: ctx.targetOf(source), store, descriptor }) ?? Promise.resolve();
      checked.set(key, p);
    }
    return p;
  };
  const resolveBound = (ref: ImageReference) => {
    const key = formatReference(ref);
    let p = boundAtSource.get(key);
    if (p === undefined) {
      const store = ctx.openSource(ref);
      p = store.resolve(ref.digest ?? ref.tag ?? 'latest').then((descriptor) => ({ store, descriptor }));
      p.catch(() => undefined); // awaited by every image declaring it
      boundAtSource.set(key, p);
    }
    return p;
  };

  const found = new Map<MirrorJob, { ref: BoundImageRef; descriptor: Descriptor }[]>();
  const limit = concurrencyLimit(ctx.jobs);
  await Promise.all(
    jobs.map((job) =>
      limit(async () => {
        try {
          const { store, ref } = await job.open();
          const descriptor = await store.resolve(ref);
          job.resolved = descriptor;
          const bound = job.expand && ctx.finder !== undefined ? await findBound(ctx.finder, store, descriptor, job.image) : [];
          // Every bound image must be at its source (and pass the check) before any of this image is copied.
          const settled = await Promise.allSettled(
            bound.map(async (b) => {
              try {
                const at = await resolveBound(withDefaultTag(b.reference));
                await checkOnce(withDefaultTag(b.reference), at.store, at.descriptor);
                return { ref: b, descriptor: at.descriptor };
              } catch (e) {
                if (!(e instanceof LadingError)) throw e;
                throw new LadingError(e.code, `bound image ${b.image} (declared in ${b.file}): ${e.message}`, {
                  image: b.image,
                  file: b.file,
                });
              }
            }),
          );
          // The first problem in declaration order, whichever answered first.
          const problem = settled.find((r) => r.status === 'rejected');
          if (problem !== undefined) throw problem.reason;
          const planned = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
          await checkOnce(job.source, store, descriptor);
          found.set(job, planned);
        } catch (e) {
          job.planError = e instanceof Error ? e.message : String(e);
        }
      }),
    ),
  );
  return withBoundJobs(jobs, found, ctx);
}

/** The jobs plus one job per bound image not already among them; each declarer waits for its bound images. */
function withBoundJobs(
  jobs: MirrorJob[],
  found: Map<MirrorJob, { ref: BoundImageRef; descriptor: Descriptor }[]>,
  ctx: PlanContext,
): MirrorJob[] {
  const byKey = new Map(jobs.map((j) => [formatReference(j.source), j]));
  const added: MirrorJob[] = [];
  for (const job of jobs) {
    const planned = found.get(job) ?? [];
    if (planned.length === 0) continue;
    job.bound = [];
    job.waitFor = [];
    const declarer = formatReference(job.source);
    for (const { ref, descriptor } of planned) {
      const source = withDefaultTag(ref.reference);
      const key = formatReference(source);
      let dep = byKey.get(key);
      if (dep === undefined) {
        dep = {
          source,
          open: async () => ({ store: ctx.openSource(source), ref: descriptor.digest }),
          image: { ...job.image },
          expand: false,
          boundOf: { source: declarer, file: ref.file, image: ref.image },
          resolved: descriptor,
        };
        byKey.set(key, dep);
        added.push(dep);
      } else if (dep.boundOf !== undefined) {
        dep.image = { ...dep.image, platforms: mergePlatforms(dep.image.platforms, job.image.platforms) };
      }
      job.bound.push({ source: key, image: ref.image, file: ref.file });
      // An image listed in the set that declares bound images of its own is not waited for: two images
      // declaring each other would wait forever.
      if (dep !== job && (found.get(dep)?.length ?? 0) === 0 && !job.waitFor.includes(dep)) job.waitFor.push(dep);
    }
  }
  return [...jobs, ...added];
}

/**
 * Bound images of the image the copy keeps: the whole of it, or with a platform list, just the matching
 * images of an index (a platform left behind would cost reading its layers for nothing).
 */
async function findBound(finder: BoundImageFinder, store: Store, desc: Descriptor, image: ImageCopyOptions): Promise<BoundImageRef[]> {
  const wanted = image.platforms;
  if (wanted === undefined || wanted === 'all' || !isIndexMediaType(desc.mediaType)) return finder(store, desc);
  const parsed = parseManifest(await store.fetchManifest(desc), desc, `index ${desc.digest} in ${store.name}`);
  if (parsed.kind !== 'index') return finder(store, desc);
  const kept = parsed.index.manifests.filter(
    (m) => m.platform !== undefined && wanted.some((p) => platformMatches(p, m.platform as Platform)),
  );
  if (kept.length === 0) return finder(store, desc);
  const seen = new Set<string>();
  const out: BoundImageRef[] = [];
  for (const child of kept) {
    for (const b of await finder(store, child)) {
      const key = `${b.file}\0${b.image}`;
      if (!seen.has(key)) {
        seen.add(key);
        out.push(b);
      }
    }
  }
  return out;
}

/** The union of two platform selections: 'all' (or none given) wins. */
function mergePlatforms(a: ImageCopyOptions['platforms'], b: ImageCopyOptions['platforms']): 'all' | Platform[] {
  if (a === undefined || b === undefined || a === 'all' || b === 'all') return 'all';
  return [...a, ...b.filter((p) => !a.some((q) => platformMatches(q, p)))];
}
