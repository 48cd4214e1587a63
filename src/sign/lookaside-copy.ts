/**
 * Carrying an image's lookaside signatures along with the image (`lading copy` and `lading mirror`):
 * every signature-N of the source lookaside store (a directory or an http(s)/file URL) that the target
 * lookaside directory does not already hold is added there under the next free N, for the repository
 * the image lands in. Signatures are carried, not verified (a copy has no keys), but each must be an
 * OpenPGP signed message within the size limit; if any is not, nothing is written. Running it twice
 * adds nothing the second time.
 */
import { createHash } from 'node:crypto';
import { LadingError } from '../errors.js';
import { openSignedMessage } from './openpgp-verify.js';
import { type StoreReadOptions, checkRepositoryPath, readSignatures, writeSignature } from './signature-store.js';

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

export async function copyLookasideSignatures(options: LookasideCopyOptions): Promise<LookasideCopyResult> {
  const repo = checkRepositoryPath(options.repo);
  const toRepo = checkRepositoryPath(options.toRepo ?? options.repo);
  const source = await readSignatures(
    { layout: 'lookaside', base: options.from },
    { repository: repo, digest: options.digest },
    options.storeOptions,
  );
  // Check everything before writing anything.
  for (const s of source) {
    try {
      await openSignedMessage(s.bytes);
    } catch (e) {
      if (!(e instanceof LadingError)) throw e;
      throw new LadingError('SIGNATURE', `not carrying signatures of ${repo}@${options.digest}: signature ${s.location}: ${e.message}`, {
        signature: s.location,
      });
    }
  }
  const target = { layout: 'lookaside' as const, base: options.to };
  const present = new Set((await readSignatures(target, { repository: toRepo, digest: options.digest })).map((s) => hash(s.bytes)));
  const written: string[] = [];
  for (const s of source) {
    const h = hash(s.bytes);
    if (present.has(h)) continue;
    present.add(h);
    written.push((await writeSignature(target, { repository: toRepo, digest: options.digest }, s.bytes)).location);
  }
  return { found: source.length, copied: written.length, written };
}

function hash(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}
