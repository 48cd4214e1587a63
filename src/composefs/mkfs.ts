/**
 * `mkcomposefs --from-file` as a library call: a dump file in, a composefs EROFS image out, written
 * through a temp file and a rename so a failure never leaves a half-written image behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fsError, LadingError } from '../errors.js';
import type { FileTree } from '../fs/tree.js';
import { FsVerityHasher } from '../verity/fsverity.js';
import { parseDump } from './dump.js';
import { composefsImage, minimumFormatVersion } from './erofs-writer.js';

export interface ReadDumpOptions {
  strict?: boolean;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Reads and parses a dump file (`-` is standard input); gzip-compressed dumps are unpacked first. */
export async function readDumpFile(path: string, options: ReadDumpOptions = {}): Promise<FileTree> {
  let bytes: Buffer;
  try {
    bytes = path === '-' ? await readStdin() : await readFile(path);
  } catch (e) {
    throw fsError(e, 'read the dump file', path);
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new LadingError('INVALID_DUMP', `${path}: looks gzip-compressed but does not decompress (${(e as Error).message})`, { path });
    }
  }
  return parseDump(bytes, { strict: options.strict ?? false, source: path === '-' ? 'standard input' : path });
}

/** Writes `data` to `path` via a temp file in the same directory and a rename. */
export async function writeFileAtomically(path: string, data: Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(tmp, data, { flush: true });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw fsError(e, 'write', path);
  }
}

export interface MkfsOptions {
  /** 0 or 1 (default: 0, raised to 1 when the tree holds a whiteout, as mkcomposefs does), or 2 (composefs-rs legacy). */
  formatVersion?: 0 | 1 | 2;
  strict?: boolean;
}

export interface MkfsResult {
  path: string;
  formatVersion: 0 | 1 | 2;
  bytes: number;
  /** Plain SHA-256 of the image file (what composefs's test vectors list). */
  sha256: string;
  /** fs-verity SHA-256 digest of the image: the composefs digest mkcomposefs --print-digest prints. */
  fsverity: string;
}

/** Builds the composefs image of a dump file and writes it to `out` (`-`: standard output). */
export async function mkfsFromDump(dump: string, out: string, options: MkfsOptions = {}): Promise<MkfsResult> {
  const tree = await readDumpFile(dump, options.strict === undefined ? {} : { strict: options.strict });
  const formatVersion = options.formatVersion ?? minimumFormatVersion(tree);
  const image = composefsImage(tree, { formatVersion });
  if (out === '-') {
    await new Promise<void>((resolve, reject) => process.stdout.write(image, (e) => (e ? reject(e) : resolve())));
  } else {
    await writeFileAtomically(out, image);
  }
  const verity = new FsVerityHasher('sha256');
  verity.update(image);
  return {
    path: out,
    formatVersion,
    bytes: image.length,
    sha256: createHash('sha256').update(image).digest('hex'),
    fsverity: verity.digest().toString('hex'),
  };
}
