/** Shared by the build tests: perturbed copies of inputs ("another checkout"), and reading what a build wrote. */
import { chmod, chown, copyFile, lchown, lstat, mkdir, readdir, readFile, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openLayerStream } from '../../src/fs/layer-stream.js';
import { readTar, type TarHeader } from '../../src/fs/tar-reader.js';
import type { Descriptor } from '../../src/oci/types.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';

export const GOLDEN = new URL('../fixtures/build/golden/', import.meta.url).pathname;

export interface Checkout {
  mtime: number;
  umask: number;
  owner?: { uid: number; gid: number };
  /** Create entries in reverse name order (tmpfs returns readdir in creation order). */
  reverse?: boolean;
}

/** Copies a tree the way another checkout would have it: other mtimes, umask, owner and creation order. */
export async function checkout(from: string, to: string, c: Checkout): Promise<void> {
  await mkdir(to, { recursive: true });
  const names = (await readdir(from)).sort();
  for (const name of c.reverse ? names.reverse() : names) {
    const src = join(from, name);
    const dst = join(to, name);
    const st = await lstat(src);
    if (st.isSymbolicLink()) {
      await symlink(await readlink(src), dst);
      if (c.owner) await lchown(dst, c.owner.uid, c.owner.gid);
      continue;
    }
    if (st.isDirectory()) await checkout(src, dst, c);
    else await copyFile(src, dst);
    const base = st.isDirectory() || (st.mode & 0o111) !== 0 ? 0o777 : 0o666;
    await chmod(dst, base & ~c.umask);
    if (c.owner) await chown(dst, c.owner.uid, c.owner.gid);
    await utimes(dst, c.mtime, c.mtime);
  }
  await utimes(to, c.mtime, c.mtime);
}

export const isRoot = process.getuid?.() === 0;

export async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

export function blobPath(layout: string, digest: string): string {
  const [alg, hex] = digest.split(':') as [string, string];
  return join(layout, 'blobs', alg, hex);
}

export async function blobJson<T>(layout: string, digest: string): Promise<T> {
  return readJson<T>(blobPath(layout, digest));
}

export interface IndexJson {
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}
export interface ManifestJson {
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}
export interface ConfigJson {
  created: string;
  architecture: string;
  os: string;
  config: Record<string, unknown>;
  rootfs: { diff_ids: string[] };
  history?: { created: string; created_by?: string }[];
}

/** The single root entry of a layout's index.json. */
export async function rootOf(layout: string): Promise<Descriptor> {
  const index = await readJson<IndexJson>(join(layout, 'index.json'));
  if (index.manifests.length !== 1) throw new Error(`${layout} has ${index.manifests.length} root entries`);
  return index.manifests[0]!;
}

/** Every tar entry of a layer (header fields and content for files). */
export async function layerEntries(layout: string, layer: Descriptor): Promise<(TarHeader & { content?: string })[]> {
  const store = await LayoutStore.open(layout, 'read');
  const out: (TarHeader & { content?: string })[] = [];
  try {
    await readTar(await openLayerStream(store, layer), async (h, content) => {
      const chunks: Buffer[] = [];
      for await (const c of content) chunks.push(c as Buffer);
      out.push(h.type === 'file' ? { ...h, content: Buffer.concat(chunks).toString('utf8') } : h);
    });
  } finally {
    await store.close();
  }
  return out;
}

export async function write(path: string, content: string, mode = 0o644): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
  await chmod(path, mode);
}
