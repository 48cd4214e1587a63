/**
 * Helpers for the src/fs tests: trees to bytes and back, a raw tar header builder for archives no
 * installed tool writes (bsdtar-style pax records, v7 and old-GNU headers, base-256 numbers, signed
 * checksums), and small OCI layouts made from raw layer tars.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { compressor } from '../../src/fs/compress.js';
import { readTar, type TarHeader } from '../../src/fs/tar-reader.js';
import { type TarWriteOptions, writeTar } from '../../src/fs/tar-writer.js';
import { type Entry, type EntryType, FileTree, makeEntry } from '../../src/fs/tree.js';
import { canonicalJsonBytes } from '../../src/oci/canonical-json.js';
import { type Digest, digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import type { Descriptor, Platform } from '../../src/oci/types.js';
import type { Store } from '../../src/store/store.js';

/**
 * Runs a peer tool with stdin closed and returns its stdout; rejects with its stderr. (The shared run()
 * writes to the child's stdin, which races with tools that exit without reading it: EPIPE.)
 */
export function tool(cmd: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    child.stdin?.end();
  });
}

export async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export function tarOf(tree: FileTree, options: TarWriteOptions = {}): Promise<Buffer> {
  return collect(writeTar(tree, options));
}

export const sha256 = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

export interface ReadEntry {
  header: TarHeader;
  content: Buffer;
}

/** Every entry of a tar with its content. */
export async function readAllEntries(tar: Buffer | Readable): Promise<ReadEntry[]> {
  const out: ReadEntry[] = [];
  await readTar(Buffer.isBuffer(tar) ? Readable.from([tar]) : tar, async (header, content) => {
    out.push({ header, content: await collect(content) });
  });
  return out;
}

/** A tree entry with text content held in memory. */
export function file(path: string, text: string, fields: Partial<Omit<Entry, 'path' | 'type'>> = {}): Entry {
  const data = Buffer.from(text);
  return makeEntry(path, 'file', { size: data.length, content: { kind: 'bytes', data }, ...fields });
}

export function entry(path: string, type: EntryType, fields: Partial<Omit<Entry, 'path' | 'type'>> = {}): Entry {
  return makeEntry(path, type, fields);
}

export function treeOf(...entries: Entry[]): FileTree {
  const t = new FileTree();
  for (const e of entries) t.set(e);
  return t;
}

// ---- raw tar headers ----

export interface RawHeader {
  name: string;
  type?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  mtime?: number;
  linkname?: string;
  uname?: string;
  gname?: string;
  prefix?: string;
  devmajor?: number;
  devminor?: number;
  /** 'ustar' (POSIX, default), 'gnu' (old GNU "ustar  \0") or 'v7' (no magic). */
  format?: 'ustar' | 'gnu' | 'v7';
  /** Write these numeric fields in GNU base-256. */
  base256?: ('size' | 'uid' | 'gid' | 'mtime')[];
  /** Store the checksum as the signed sum (old Sun tars). */
  signedChecksum?: boolean;
  /** Overwrite the stored checksum. */
  badChecksum?: boolean;
}

const OFF = {
  name: 0,
  mode: 100,
  uid: 108,
  gid: 116,
  size: 124,
  mtime: 136,
  chksum: 148,
  type: 156,
  linkname: 157,
  magic: 257,
  uname: 265,
  gname: 297,
  devmajor: 329,
  devminor: 337,
  prefix: 345,
};

export function rawHeader(h: RawHeader): Buffer {
  const b = Buffer.alloc(512);
  b.write(h.name, OFF.name, 100, 'utf8');
  const num = (key: 'mode' | 'uid' | 'gid' | 'size' | 'mtime' | 'devmajor' | 'devminor', width: number, value: number) => {
    const off = OFF[key];
    if ((h.base256 as string[] | undefined)?.includes(key)) {
      let v = BigInt(value);
      for (let i = width - 1; i >= 1; i--) {
        b[off + i] = Number(BigInt.asUintN(8, v));
        v >>= 8n;
      }
      b[off] = value < 0 ? 0xff : 0x80;
      return;
    }
    b.write(`${value.toString(8).padStart(width - 1, '0')}\0`, off, width, 'latin1');
  };
  num('mode', 8, h.mode ?? 0o644);
  num('uid', 8, h.uid ?? 0);
  num('gid', 8, h.gid ?? 0);
  num('size', 12, h.size ?? 0);
  num('mtime', 12, h.mtime ?? 0);
  b.write(h.type ?? '0', OFF.type, 1, 'latin1');
  b.write(h.linkname ?? '', OFF.linkname, 100, 'utf8');
  const format = h.format ?? 'ustar';
  if (format === 'ustar') b.write('ustar\u000000', OFF.magic, 8, 'latin1');
  if (format === 'gnu') b.write('ustar  \u0000', OFF.magic, 8, 'latin1');
  if (format !== 'v7') {
    b.write(h.uname ?? '', OFF.uname, 32, 'utf8');
    b.write(h.gname ?? '', OFF.gname, 32, 'utf8');
    if (h.devmajor !== undefined) num('devmajor', 8, h.devmajor);
    if (h.devminor !== undefined) num('devminor', 8, h.devminor);
  }
  if (format === 'ustar' && h.prefix) b.write(h.prefix, OFF.prefix, 155, 'utf8');
  let sum = 0;
  for (let i = 0; i < 512; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i]!;
    sum += h.signedChecksum && v > 127 ? v - 256 : v;
  }
  if (h.badChecksum) sum += 1;
  b.write(`${(sum >>> 0).toString(8).padStart(6, '0')}\0 `, OFF.chksum, 8, 'latin1');
  return b;
}

export function pad(content: Buffer): Buffer {
  const rest = (512 - (content.length % 512)) % 512;
  return Buffer.concat([content, Buffer.alloc(rest)]);
}

/** A header and its padded content. */
export function rawEntry(h: RawHeader, content: Buffer | string = Buffer.alloc(0)): Buffer {
  const data = Buffer.from(content);
  return Buffer.concat([rawHeader({ ...h, size: h.size ?? data.length }), pad(data)]);
}

/** A pax header ('x' or 'g') with the given records (values may be binary). */
export function paxEntry(records: [string, string | Buffer][], type: 'x' | 'g' = 'x', name = 'PaxHeader/x'): Buffer {
  const body = Buffer.concat(
    records.map(([k, v]) => {
      const value = Buffer.from(v);
      const rest = Buffer.byteLength(k) + value.length + 3;
      let len = rest + 1;
      while (String(len).length + rest !== len) len = String(len).length + rest;
      return Buffer.concat([Buffer.from(`${len} ${k}=`), value, Buffer.from('\n')]);
    }),
  );
  return rawEntry({ name, type }, body);
}

export const EOF = Buffer.alloc(1024);

// ---- images from raw layer tars ----

export interface LayerInput {
  tar: Buffer;
  compression?: 'gzip' | 'zstd' | 'none';
}

/** Pushes layers (compressed as asked), a config and a manifest; returns the manifest and layer descriptors. */
export async function pushImage(
  store: Store,
  layers: LayerInput[],
  options: { platform?: Platform; tags?: string[] } = {},
): Promise<{ manifest: Descriptor; layers: Descriptor[]; diffIds: Digest[] }> {
  const descs: Descriptor[] = [];
  const diffIds: Digest[] = [];
  for (const layer of layers) {
    const kind = layer.compression ?? 'gzip';
    const blob =
      kind === 'none'
        ? layer.tar
        : kind === 'gzip'
          ? gzipSync(layer.tar)
          : await collect(compressor('zstd', { workers: 1 }).compress(Readable.from([layer.tar])));
    const mediaType = kind === 'none' ? MediaType.ociLayer : kind === 'gzip' ? MediaType.ociLayerGzip : MediaType.ociLayerZstd;
    const desc: Descriptor = { mediaType, digest: digestOf(blob), size: blob.length };
    if (!(await store.has(desc))) await store.pushBlob(desc, Readable.from([blob]));
    descs.push(desc);
    diffIds.push(digestOf(layer.tar));
  }
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const config = canonicalJsonBytes({
    architecture: platform.architecture,
    os: platform.os,
    config: {},
    rootfs: { type: 'layers', diff_ids: diffIds },
  });
  const configDesc: Descriptor = { mediaType: MediaType.ociConfig, digest: digestOf(config), size: config.length };
  await store.pushBlob(configDesc, Readable.from([Buffer.from(config)]));
  const manifest = canonicalJsonBytes({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDesc, layers: descs });
  const desc: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf(manifest), size: manifest.length };
  await store.pushManifest(desc, manifest, { tags: options.tags ?? [], root: true });
  return { manifest: { ...desc, platform }, layers: descs, diffIds };
}

/** The tree as a sorted list of `path type mode uid:gid [content|target]` lines, for comparisons. */
export function describeTree(tree: FileTree, read: (e: Entry) => string | undefined = () => undefined): string[] {
  const lines: string[] = [];
  for (const e of tree.walk()) {
    if (e.path === '') continue;
    const extra = e.type === 'symlink' || e.type === 'hardlink' ? ` -> ${e.linkTarget}` : e.type === 'file' ? ` ${read(e) ?? e.size}` : '';
    lines.push(`${e.path} ${e.type} ${e.mode.toString(8)} ${e.uid}:${e.gid}${extra}`);
  }
  return lines;
}
