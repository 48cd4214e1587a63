/**
 * `lading fsck`: re-hashes every blob of a layout and checks that everything index.json reaches is
 * present, the right size and well-formed. Reports every problem found, not just the first.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { concurrencyLimit } from '../../copy/limit.js';
import { isDigest } from '../../oci/digest.js';
import { digestFile } from '../../oci/verified-file.js';
import type { LayoutStore } from './layout-store.js';
import { type Problem, reachable } from './reachable.js';

export interface FsckReport {
  layout: string;
  blobs: number;
  bytes: number;
  referenced: number;
  problems: Problem[];
}

export async function fsckLayout(
  store: LayoutStore,
  options: { onBlob?: (digest: string, size: number) => void } = {},
): Promise<FsckReport> {
  const index = await store.readIndex();
  const graph = await reachable(store, index);
  const problems = [...graph.problems];
  const files = await listBlobFiles(store.dir);
  const limit = concurrencyLimit(2);
  let bytes = 0;

  await Promise.all(
    files.map(({ digest, path }) =>
      limit(async () => {
        if (!isDigest(digest)) {
          problems.push({ digest, kind: 'stray', message: `stray file ${path}: its name is not a digest` });
          return;
        }
        const size = (await stat(path)).size;
        bytes += size;
        const ref = graph.blobs.get(digest);
        if (ref !== undefined && ref.descriptor.size !== size) {
          problems.push({
            digest,
            kind: 'wrong-size',
            message: `blob ${digest} has the wrong length: ${size} bytes, but ${ref.from} says ${ref.descriptor.size}`,
          });
        }
        const actual = await digestFile(path, digest.startsWith('sha512:') ? 'sha512' : 'sha256');
        if (actual.digest !== digest)
          problems.push({ digest, kind: 'corrupt', message: `blob ${digest} is corrupt: its content hashes to ${actual.digest}` });
        options.onBlob?.(digest, size);
      }),
    ),
  );
  const unique = [...new Map(problems.map((p) => [p.message, p])).values()];
  unique.sort((a, b) => a.digest.localeCompare(b.digest) || a.message.localeCompare(b.message));
  return { layout: store.name, blobs: files.length, bytes, referenced: graph.blobs.size, problems: unique };
}

/** Every file under blobs/<alg>/, named as the digest it claims to be. */
export async function listBlobFiles(dir: string): Promise<{ digest: string; path: string }[]> {
  const out: { digest: string; path: string }[] = [];
  const algs = await readdir(join(dir, 'blobs'), { withFileTypes: true }).catch(() => []);
  for (const alg of algs) {
    if (!alg.isDirectory()) continue;
    for (const f of await readdir(join(dir, 'blobs', alg.name), { withFileTypes: true })) {
      if (f.isFile()) out.push({ digest: `${alg.name}:${f.name}`, path: join(dir, 'blobs', alg.name, f.name) });
    }
  }
  return out.sort((a, b) => a.digest.localeCompare(b.digest));
}
