/**
 * Carrying an image's lookaside signatures along with the image (`lading copy` and `lading mirror`):
 * every signature-N of the source lookaside store (a directory or an http(s)/file URL) that the target
 * lookaside directory does not already hold is added there under the next free N, for the repository
 * the image lands in. Signatures are carried, not verified (a copy has no keys), but each must be an
 * OpenPGP signed message within the size limit; if any is not, nothing is written. Running it twice
 * adds nothing the second time.
 *
 * In two steps for the copy commands: `gatherLookasideSignatures` reads and checks the signatures of an
 * image (and of each image an index lists) before the image is copied, so a bad signature stops the copy
 * before anything is written; `placeLookasideSignatures` writes them once the image has landed, for the
 * manifests that did land (one platform of an index, say).
 */
import { createHash } from 'node:crypto';
import { LadingError } from '../errors.js';
import { isIndexMediaType } from '../oci/media-types.js';
import { parseManifest } from '../oci/parse.js';
import type { Descriptor } from '../oci/types.js';
import type { Store } from '../store/store.js';
import { openSignedMessage } from './openpgp-verify.js';
import { type StoreReadOptions, type StoredSignature, checkRepositoryPath, readSignatures, writeSignature } from './signature-store.js';

export interface LookasideCopyOptions {
  /** Source lookaside base: a directory, file://, http:// or https:// URL. */
  from: string;
  /** Target lookaside base directory (local). */
  to: string;
  /** The image's repository path at the source (`ns/name`, no registry host). */
  repo: string;
  /** Its repository path at the target, when it differs (a mirror prefix). */
  toRepo?: string;
  digest: string;
  storeOptions?: StoreReadOptions;
}

export interface LookasideCopyResult {
  /** Signatures found at the source. */
  found: number;
  /** Signatures written to the target. */
  copied: number;
  /** Written files. */
  written: string[];
}

/** Signatures read and checked, by the manifest digest they sign; not yet written anywhere. */
export interface GatheredSignatures {
  repo: string;
  /** The image gathered for (the others are the images its index lists). */
  digest: string;
  byDigest: Map<string, StoredSignature[]>;
}

export async function copyLookasideSignatures(options: LookasideCopyOptions): Promise<LookasideCopyResult> {
  const toRepo = checkRepositoryPath(options.toRepo ?? options.repo);
  const gathered = await gatherDigests(options.from, options.repo, [options.digest], options.storeOptions);
  return placeLookasideSignatures(gathered, { to: options.to, toRepo });
}

/**
 * The lookaside signatures of the image `descriptor` names, and for an index of every image it lists,
 * each checked to be an OpenPGP signed message. Throws SIGNATURE (naming the file) before anything is
 * written when one is not; UNSAFE_PATH for a repository path that could leave the store.
 */
export async function gatherLookasideSignatures(options: {
  from: string;
  repo: string;
  store: Store;
  descriptor: Descriptor;
  storeOptions?: StoreReadOptions;
}): Promise<GatheredSignatures> {
  const digests = [options.descriptor.digest];
  if (isIndexMediaType(options.descriptor.mediaType)) {
    const parsed = parseManifest(
      await options.store.fetchManifest(options.descriptor),
      options.descriptor,
      `index ${options.descriptor.digest} in ${options.store.name}`,
    );
    if (parsed.kind === 'index') for (const m of parsed.index.manifests) if (!digests.includes(m.digest)) digests.push(m.digest);
  }
  return gatherDigests(options.from, options.repo, digests, options.storeOptions);
}

/**
 * Writes the gathered signatures the target lacks under `toRepo`; with `landed`, only those of the
 * manifests named there (what the copy put at the target, or found there already). An index that landed
 * brings every image it lists (a copy never puts an index before its children), so when the image's own
 * digest is in `landed`, all its signatures go.
 */
export async function placeLookasideSignatures(
  gathered: GatheredSignatures,
  options: { to: string; toRepo: string; landed?: ReadonlySet<string> },
): Promise<LookasideCopyResult> {
  const toRepo = checkRepositoryPath(options.toRepo);
  const target = { layout: 'lookaside' as const, base: options.to };
  const result: LookasideCopyResult = { found: 0, copied: 0, written: [] };
  const whole = options.landed === undefined || options.landed.has(gathered.digest);
  for (const [digest, signatures] of gathered.byDigest) {
    if (signatures.length === 0 || (!whole && !options.landed?.has(digest))) continue;
    result.found += signatures.length;
    const present = new Set((await readSignatures(target, { repository: toRepo, digest })).map((s) => hash(s.bytes)));
    for (const s of signatures) {
      const h = hash(s.bytes);
      if (present.has(h)) continue;
      present.add(h);
      result.written.push((await writeSignature(target, { repository: toRepo, digest }, s.bytes)).location);
    }
  }
  result.copied = result.written.length;
  return result;
}

async function gatherDigests(
  from: string,
  repository: string,
  digests: string[],
  storeOptions?: StoreReadOptions,
): Promise<GatheredSignatures> {
  const repo = checkRepositoryPath(repository);
  const byDigest = new Map<string, StoredSignature[]>();
  for (const digest of digests) {
    const found = await readSignatures({ layout: 'lookaside', base: from }, { repository: repo, digest }, storeOptions);
    // Check everything before writing anything.
    for (const s of found) {
      try {
        await openSignedMessage(s.bytes);
      } catch (e) {
        if (!(e instanceof LadingError)) throw e;
        throw new LadingError('SIGNATURE', `not carrying signatures of ${repo}@${digest}: signature ${s.location}: ${e.message}`, {
          signature: s.location,
        });
      }
    }
    byDigest.set(digest, found);
  }
  return { repo, digest: digests[0] ?? '', byDigest };
}

function hash(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}
