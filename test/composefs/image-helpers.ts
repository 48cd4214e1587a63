/**
 * Images for the composefs and boot tests, written by Lading's own layer writer: each layer a FileTree
 * (whiteouts are plain files named `.wh.NAME`), uncompressed unless asked, into an OCI layout.
 */
import { Readable } from 'node:stream';
import type { Compression } from '../../src/fs/compress.js';
import { writeLayer } from '../../src/fs/layer-writer.js';
import { type Entry, FileTree, makeEntry } from '../../src/fs/tree.js';
import { canonicalJsonBytes } from '../../src/oci/canonical-json.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import type { Descriptor } from '../../src/oci/types.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';

export type Fields = Partial<Omit<Entry, 'path' | 'type'>>;
export type Spec = Record<string, string | Uint8Array | ({ type: Entry['type'] } & Fields) | ({ data: string | Uint8Array } & Fields)>;

export const T = 1_700_000_000;
export const USR_MTIME = 1_600_000_000;

/** A tree from a spec: strings and bytes are files, objects give a type (and fields) or data with fields. */
export function tree(spec: Spec): FileTree {
  const t = new FileTree();
  for (const [path, what] of Object.entries(spec)) {
    if (typeof what === 'string' || what instanceof Uint8Array) {
      const data = typeof what === 'string' ? Buffer.from(what) : what;
      t.set(makeEntry(path, 'file', { mtime: T, size: data.length, content: { kind: 'bytes', data } }), { mtime: T });
    } else if ('data' in what) {
      const { data: raw, ...fields } = what;
      const data = typeof raw === 'string' ? Buffer.from(raw) : raw;
      t.set(makeEntry(path, 'file', { mtime: T, ...fields, size: data.length, content: { kind: 'bytes', data } }), { mtime: T });
    } else {
      const { type, ...fields } = what;
      t.set(makeEntry(path, type, { mtime: T, ...fields }), { mtime: T });
    }
  }
  return t;
}

/** The directories a bootable image needs, /usr with a distinct mtime. */
export const BASE: Spec = {
  usr: { type: 'directory', mtime: USR_MTIME },
  'usr/bin': { type: 'directory' },
  boot: { type: 'directory' },
  sysroot: { type: 'directory' },
  etc: { type: 'directory' },
};

/** Bytes no other test file shares: `n` bytes of a pattern seeded by `seed`. */
export function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 17 + (i >> 8)) & 0xff;
  return b;
}

/** Writes an image of `layers` (bottom first) into the layout `dir` under `tag`. */
export async function writeImage(
  dir: string,
  tag: string,
  layers: FileTree[],
  options: { compression?: Compression; mediaType?: string } = {},
): Promise<Descriptor> {
  const store = await LayoutStore.open(dir, 'write');
  try {
    const descs: Descriptor[] = [];
    const diffIds: string[] = [];
    for (const t of layers) {
      const l = await writeLayer(store, t, { compression: options.compression ?? 'none', cacheDir: false, workers: 1 });
      descs.push(l.descriptor);
      diffIds.push(l.diffId);
    }
    const config = canonicalJsonBytes({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: layers.map(() => ({ created_by: 'test' })),
    });
    const configDesc: Descriptor = { mediaType: MediaType.ociConfig, digest: digestOf(config), size: config.byteLength };
    if (!(await store.has(configDesc))) await store.pushBlob(configDesc, Readable.from([Buffer.from(config)]));
    const manifest = canonicalJsonBytes({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDesc, layers: descs });
    const desc: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf(manifest), size: manifest.byteLength };
    await store.pushManifest(desc, manifest, { tags: [tag], root: true });
    await store.close();
    return desc;
  } catch (e) {
    await store.abort();
    throw e;
  }
}

/** Opens a layout for reading, runs `fn` with it and the image `tag` names, and closes it. */
export async function withLayout<T>(dir: string, tag: string, fn: (store: LayoutStore, desc: Descriptor) => Promise<T>): Promise<T> {
  const store = await LayoutStore.open(dir, 'read');
  try {
    return await fn(store, await store.resolve(tag));
  } finally {
    await store.close();
  }
}

/** The dump lines of a dump file text, by path. */
export function dumpLines(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) if (line !== '') out.set(line.split(' ')[0]!, line.split(' '));
  return out;
}
