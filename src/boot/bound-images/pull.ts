/**
 * Pulling a bootable image's bound images into an OCI layout, all at once and all or nothing. bootc
 * pulls them one after another on the machine and stages the new deployment even when one fails
 * (bootc#2013); here every image is copied in parallel through one CopySession (shared blobs move
 * once), and the layout lists them only when every one has arrived. A failure removes what the run
 * added, so the layout is as it was and the same command can simply be run again.
 *
 * Each image lands as `lading mirror` would put it in a layout: under its full name and tag
 * (quay.io/org/app:1.2; untagged when pinned by digest alone), with its source recorded, so the layout
 * can be carried and replayed with `lading mirror --from`.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CopyResult, CopySession, type ImageCopyOptions } from '../../copy/copy-session.js';
import { concurrencyLimit } from '../../copy/limit.js';
import { layoutRefName, SOURCE_ANNOTATION } from '../../copy/mirror-names.js';
import type { ProgressListener } from '../../copy/progress.js';
import { LadingError } from '../../errors.js';
import { formatReference, type ImageReference, repositoryOf } from '../../oci/reference.js';
import type { Platform } from '../../oci/types.js';
import { LayoutStore } from '../../store/layout/layout-store.js';
import type { RegistryClient } from '../../store/registry/client.js';
import { RegistryStore } from '../../store/registry/registry-store.js';
import type { BoundImage } from './bound-images.js';
import { StagedLayout } from './staged-layout.js';

export interface PullOptions {
  /** The registry client for an image (one per auth file: see `AuthFiles`). */
  clientFor: (image: BoundImage) => RegistryClient;
  /** 'all' keeps indexes whole (default, so pinned index digests stay valid); a list keeps those platforms. */
  platforms?: 'all' | Platform[];
  /** Blob transfers at once (default 6). */
  jobs?: number;
  /** Images at once (default 4). */
  imageJobs?: number;
  onProgress?: ProgressListener;
  /** Called as each image finishes or fails. */
  onImage?: (outcome: PullOutcome) => void;
}

export interface PullOutcome {
  image: string;
  source: string;
  destination: string;
  digest?: string;
  result?: CopyResult;
  error?: string;
}

export interface PullReport {
  images: PullOutcome[];
  /** Bytes moved in all. */
  bytes: number;
}

/**
 * Pulls every image in `images` into the OCI layout `dir`; throws (with the layout unchanged) when any
 * image fails. The same image declared twice is pulled once.
 */
export async function pullBoundImages(images: readonly BoundImage[], dir: string, options: PullOptions): Promise<PullReport> {
  const unique = new Map<string, BoundImage>();
  for (const b of images) if (!unique.has(formatReference(b.reference))) unique.set(formatReference(b.reference), b);
  const layout = await LayoutStore.open(dir, 'write');
  const staged = new StagedLayout(layout);
  const session = new CopySession({
    jobs: options.jobs ?? 6,
    ...(options.onProgress !== undefined && { onProgress: options.onProgress }),
  });
  const limit = concurrencyLimit(options.imageJobs ?? 4);
  const sources = new Map<RegistryClient, Map<string, RegistryStore>>();
  const outcomes: PullOutcome[] = [];
  let failed = false;
  try {
    await Promise.all(
      [...unique.values()].map((b) =>
        limit(async () => {
          const ref = b.reference;
          const tag = layoutRefName(ref);
          const outcome: PullOutcome = {
            image: b.image,
            source: formatReference(ref),
            destination: tag === undefined ? `oci:${dir}@${ref.digest ?? ''}` : `oci:${dir}:${tag}`,
          };
          if (failed) {
            outcome.error = 'not started: another bound image failed';
          } else {
            try {
              const src = sourceStore(sources, options.clientFor(b), ref);
              const copy: ImageCopyOptions = {
                platforms: options.platforms ?? 'all',
                filterIndex: true,
                tags: tag === undefined ? [] : [tag],
                annotations: { [SOURCE_ANNOTATION]: formatReference(ref) },
              };
              const result = await session.copy(src, ref.digest ?? ref.tag ?? 'latest', staged, copy);
              outcome.digest = result.descriptor.digest;
              outcome.result = result;
            } catch (e) {
              failed = true;
              outcome.error = e instanceof Error ? e.message : String(e);
            }
          }
          outcomes.push(outcome);
          options.onImage?.(outcome);
        }),
      ),
    );
    outcomes.sort((a, b) => a.source.localeCompare(b.source));
    const bad = outcomes.filter((o) => o.error !== undefined && !o.error.startsWith('not started'));
    if (bad.length > 0) {
      const first = bad[0]!;
      throw new LadingError(
        'REGISTRY',
        `bound image ${first.image} could not be pulled: ${first.error}${bad.length > 1 ? ` (and ${bad.length - 1} more failed)` : ''}; ${layout.name} is unchanged, run the command again to retry`,
        { image: first.image },
      );
    }
    await staged.commit();
  } catch (e) {
    await staged.abort();
    throw e;
  }
  await staged.close();
  return { images: outcomes, bytes: outcomes.reduce((n, o) => n + (o.result?.bytes ?? 0), 0) };
}

function sourceStore(cache: Map<RegistryClient, Map<string, RegistryStore>>, client: RegistryClient, ref: ImageReference): RegistryStore {
  // One store per client and repository: images sharing an auth file share connections and tokens.
  let stores = cache.get(client);
  if (stores === undefined) cache.set(client, (stores = new Map()));
  let store = stores.get(repositoryOf(ref));
  if (store === undefined) stores.set(repositoryOf(ref), (store = new RegistryStore(client, ref.domain, ref.path, 'pull')));
  return store;
}

/**
 * The auth files bound images declare, written to private temp files (a 0700 directory, files 0600) so
 * the credential lookup can read them wherever they came from (the image's root or the host's). One file
 * per resolved location, written when first asked for; `cleanup` removes them all.
 */
export class AuthFiles {
  private dir: Promise<string> | undefined;
  private readonly paths = new Map<string, Promise<string>>();

  /** The temp path holding `image`'s auth file, or undefined when it declares none. */
  pathFor(image: BoundImage): Promise<string | undefined> {
    const auth = image.authFile;
    if (auth?.content === undefined) return Promise.resolve(undefined);
    const key = `${auth.foundIn}:${auth.resolved}`;
    let p = this.paths.get(key);
    if (p === undefined) {
      const name = `auth-${this.paths.size}.json`;
      p = this.tempDir().then(async (dir) => {
        const path = join(dir, name);
        await writeFile(path, auth.content!, { mode: 0o600, flag: 'wx' });
        return path;
      });
      this.paths.set(key, p);
    }
    return p;
  }

  async cleanup(): Promise<void> {
    const dir = await this.dir?.catch(() => undefined);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }

  private tempDir(): Promise<string> {
    this.dir ??= mkdtemp(join(tmpdir(), 'lading-authfiles-')).then(async (d) => {
      await chmod(d, 0o700);
      return d;
    });
    return this.dir;
  }
}
