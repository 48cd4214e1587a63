/**
 * `lading diff A B`: what differs between two images, the way diffoci's default (strict) mode sees it,
 * said so a person can act on it (`layer 1 /usr/bin/app: mode 0755 != 0644`).
 *
 * Compared: index fields, annotations and entries (paired by platform), manifest fields and
 * annotations, every config field (as JSON, path by path), and for each pair of layers whose digests
 * differ every tar entry: name as written, type, mode, uid/gid, uname/gname, mtime (with nanoseconds),
 * link target, device, size, content digest, xattrs, the remaining PAX records, and entry order. Two
 * layers with the same diff_id but different blobs are reported as "compressed differently" without
 * reading them. Equal digests end the comparison there: equal bytes have nothing to show.
 *
 * Tar entries are held as metadata and a content digest (never content), one layer pair at a time.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { LadingError } from '../errors.js';
import { isManifestMediaType } from '../oci/media-types.js';
import { parseManifest } from '../oci/parse.js';
import { formatPlatform, platformMatches } from '../oci/platform.js';
import type { Descriptor, ImageIndex, ImageManifest, Manifest, Platform } from '../oci/types.js';
import { isImageConfig, readSmallBlob } from '../store/inspect.js';
import type { Store } from '../store/store.js';
import { layerReadError, openLayerStream } from '../fs/layer-stream.js';
import { readTar, type TarHeader } from '../fs/tar-reader.js';

export interface Difference {
  /** The platform of the image within an index ('' at the top). */
  image: string;
  /** 'index', 'manifest', 'config' or 'layer N' (1-based). */
  part: string;
  /** A file in the layer, as an absolute path. */
  path?: string;
  /** What differs: a field name or a JSON path. */
  field: string;
  a?: unknown;
  b?: unknown;
  /** The whole difference as one line. */
  message: string;
}

export interface DiffReport {
  a: { name: string; digest: string };
  b: { name: string; digest: string };
  identical: boolean;
  differences: Difference[];
  /** More differences were found than `limit`; the rest were not collected. */
  truncated: boolean;
}

export interface DiffOptions {
  /** For indexes: compare only this platform's images. */
  platform?: Platform;
  /** Stop collecting after this many differences (default 1000). */
  limit?: number;
}

export interface ImageSide {
  store: Store;
  ref: string | undefined;
}

const MAX_CONFIG = 8 * 1024 * 1024;
/** PAX keys shown as their own fields (or as the name); the rest are compared as records. */
const PAX_AS_FIELDS = new Set(['path', 'linkpath', 'size', 'uid', 'gid', 'uname', 'gname', 'mtime']);

export async function diffImages(a: ImageSide, b: ImageSide, options: DiffOptions = {}): Promise<DiffReport> {
  const [da, db] = await Promise.all([a.store.resolve(a.ref), b.store.resolve(b.ref)]);
  const d = new Differ(a.store, b.store, options.limit ?? 1000);
  if (da.digest !== db.digest) {
    if (options.platform !== undefined) {
      await d.compare(
        await pick(a.store, da, options.platform),
        await pick(b.store, db, options.platform),
        formatPlatform(options.platform),
      );
    } else {
      await d.compare(da, db, '');
    }
  }
  return {
    a: { name: a.store.name, digest: da.digest },
    b: { name: b.store.name, digest: db.digest },
    identical: d.out.length === 0,
    differences: d.out,
    truncated: d.truncated,
  };
}

/** The differences as lines of text (without a trailing newline). */
export function formatDiff(report: DiffReport): string {
  const lines = [`A: ${report.a.name}@${report.a.digest}`, `B: ${report.b.name}@${report.b.digest}`];
  if (report.identical) lines.push('identical');
  else lines.push(...report.differences.map((x) => x.message));
  if (report.truncated) lines.push(`(stopped after ${report.differences.length} differences)`);
  return lines.join('\n');
}

async function pick(store: Store, desc: Descriptor, platform: Platform): Promise<Descriptor> {
  const parsed = parseManifest(await store.fetchManifest(desc), desc, `manifest ${desc.digest} in ${store.name}`);
  if (parsed.kind !== 'index') return desc;
  const found = parsed.index.manifests.find((m) => m.platform !== undefined && platformMatches(platform, m.platform));
  if (found === undefined)
    throw new LadingError('NO_MATCHING_PLATFORM', `${store.name}@${desc.digest} has no image for ${formatPlatform(platform)}`);
  return found;
}

interface EntryInfo {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: string;
  linkTarget?: string;
  rdev?: number;
  size: number;
  digest?: string;
  xattrs: Record<string, string>;
  pax: Record<string, string>;
}

class Differ {
  readonly out: Difference[] = [];
  truncated = false;

  constructor(
    private readonly sa: Store,
    private readonly sb: Store,
    private readonly limit: number,
  ) {}

  private get full(): boolean {
    return this.out.length >= this.limit;
  }

  add(image: string, part: string, field: string, a: unknown, b: unknown, path?: string): void {
    if (this.full) {
      this.truncated = true;
      return;
    }
    const where = `${image ? `${image} ` : ''}${part}${path !== undefined ? ` ${path}` : ''}`;
    let what: string;
    if (a === undefined) what = `${field} only in B (${show(field, b)})`;
    else if (b === undefined) what = `${field} only in A (${show(field, a)})`;
    else what = `${field} ${show(field, a)} != ${show(field, b)}`;
    this.out.push({
      image,
      part,
      ...(path !== undefined && { path }),
      field,
      ...(a !== undefined && { a }),
      ...(b !== undefined && { b }),
      message: `${where}: ${what}`,
    });
  }

  async compare(da: Descriptor, db: Descriptor, image: string): Promise<void> {
    const [pa, pb] = await Promise.all([this.manifest(this.sa, da), this.manifest(this.sb, db)]);
    if (pa.kind !== pb.kind) {
      this.add(image, 'manifest', 'kind', pa.kind, pb.kind);
      return;
    }
    if (pa.kind === 'index' && pb.kind === 'index') await this.index(pa.index, pb.index, image);
    else if (pa.kind === 'manifest' && pb.kind === 'manifest') await this.image(pa.manifest, pb.manifest, image);
  }

  private async manifest(store: Store, desc: Descriptor): Promise<Manifest> {
    return parseManifest(await store.fetchManifest(desc), desc, `manifest ${desc.digest} in ${store.name}`);
  }

  private async index(a: ImageIndex, b: ImageIndex, image: string): Promise<void> {
    const { manifests: ma, ...restA } = a;
    const { manifests: mb, ...restB } = b;
    deepDiff(restA, restB, '', (p, x, y) => this.add(image, 'index', p, x, y));
    const key = (m: Descriptor, i: number) => (m.platform ? formatPlatform(m.platform) : `manifests[${i}]`);
    const ka = ma.map(key);
    const kb = mb.map(key);
    for (const k of ka) if (!kb.includes(k)) this.add(image, 'index', `manifest for ${k}`, ma[ka.indexOf(k)]!.digest, undefined);
    for (const k of kb) if (!ka.includes(k)) this.add(image, 'index', `manifest for ${k}`, undefined, mb[kb.indexOf(k)]!.digest);
    const common = ka.filter((k) => kb.includes(k));
    const orderB = kb.filter((k) => ka.includes(k));
    const at = common.findIndex((k, i) => orderB[i] !== k);
    if (at >= 0) this.add(image, 'index', 'manifest order', common.join(', '), orderB.join(', '));
    for (const k of common) {
      if (this.full) break;
      const x = ma[ka.indexOf(k)]!;
      const y = mb[kb.indexOf(k)]!;
      const { digest: _xd, size: _xs, ...xr } = x;
      const { digest: _yd, size: _ys, ...yr } = y;
      deepDiff(xr, yr, `manifests[${k}]`, (p, u, v) => this.add(image, 'index', p, u, v));
      if (x.digest === y.digest) continue;
      const child = image ? `${image} ${k}` : k;
      if (isManifestMediaType(x.mediaType) && isManifestMediaType(y.mediaType)) await this.compare(x, y, child);
      else this.add(child, 'index', 'digest', x.digest, y.digest);
    }
  }

  private async image(a: ImageManifest, b: ImageManifest, image: string): Promise<void> {
    const strip = (m: ImageManifest) => {
      const { config: _c, layers: _l, ...rest } = m;
      return rest;
    };
    deepDiff(strip(a), strip(b), '', (p, x, y) => this.add(image, 'manifest', p, x, y));
    deepDiff(
      { mediaType: a.config.mediaType, annotations: a.config.annotations },
      { mediaType: b.config.mediaType, annotations: b.config.annotations },
      'config',
      (p, x, y) => this.add(image, 'manifest', p, x, y),
    );
    let diffIdsA: unknown[] = [];
    let diffIdsB: unknown[] = [];
    if (!isImageConfig(a.config) || !isImageConfig(b.config)) {
      if (a.config.digest !== b.config.digest) this.add(image, 'manifest', 'config.digest', a.config.digest, b.config.digest);
    } else if (a.config.digest !== b.config.digest) {
      const [ca, cb] = await Promise.all([this.json(this.sa, a.config), this.json(this.sb, b.config)]);
      deepDiff(ca, cb, '', (p, x, y) => this.add(image, 'config', p, x, y));
      diffIdsA = diffIds(ca);
      diffIdsB = diffIds(cb);
    } else {
      diffIdsA = diffIdsB = diffIds(await this.json(this.sa, a.config));
    }
    if (a.layers.length !== b.layers.length) this.add(image, 'manifest', 'number of layers', a.layers.length, b.layers.length);
    for (let i = 0; i < Math.min(a.layers.length, b.layers.length); i++) {
      if (this.full) break;
      const la = a.layers[i]!;
      const lb = b.layers[i]!;
      const part = `layer ${i + 1}`;
      deepDiff(
        { mediaType: la.mediaType, annotations: la.annotations },
        { mediaType: lb.mediaType, annotations: lb.annotations },
        '',
        (p, x, y) => this.add(image, part, p, x, y),
      );
      if (la.digest === lb.digest) continue;
      if (diffIdsA[i] !== undefined && diffIdsA[i] === diffIdsB[i]) {
        this.add(image, part, 'blob (same content, compressed differently)', la.digest, lb.digest);
        continue;
      }
      await this.layer(la, lb, image, part);
    }
  }

  private async json(store: Store, desc: Descriptor): Promise<unknown> {
    const bytes = await readSmallBlob(store, desc, MAX_CONFIG);
    try {
      return JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
    } catch {
      throw new LadingError('INVALID_MANIFEST', `config ${desc.digest} in ${store.name} is not JSON`);
    }
  }

  private async layer(la: Descriptor, lb: Descriptor, image: string, part: string): Promise<void> {
    const [ea, eb] = await Promise.all([entries(this.sa, la), entries(this.sb, lb)]);
    for (const [key, x] of ea) {
      const y = eb.get(key);
      const path = shownPath(key);
      if (y === undefined) {
        this.add(image, part, 'entry', `${x.type}${x.type === 'file' ? `, ${x.size} bytes` : ''}`, undefined, path);
        continue;
      }
      for (const field of [
        'name',
        'type',
        'mode',
        'uid',
        'gid',
        'uname',
        'gname',
        'mtime',
        'linkTarget',
        'rdev',
        'size',
        'digest',
      ] as const) {
        if (x[field] !== y[field]) this.add(image, part, field === 'digest' ? 'content' : field, x[field], y[field], path);
      }
      deepDiff(x.xattrs, y.xattrs, 'xattr', (p, u, v) => this.add(image, part, p, u, v, path));
      deepDiff(x.pax, y.pax, 'pax', (p, u, v) => this.add(image, part, p, u, v, path));
      if (this.full) {
        this.truncated = true;
        return;
      }
    }
    for (const [key, y] of eb) {
      if (!ea.has(key))
        this.add(image, part, 'entry', undefined, `${y.type}${y.type === 'file' ? `, ${y.size} bytes` : ''}`, shownPath(key));
    }
    const orderA = [...ea.keys()].filter((k) => eb.has(k));
    const orderB = [...eb.keys()].filter((k) => ea.has(k));
    const at = orderA.findIndex((k, i) => orderB[i] !== k);
    if (at >= 0) this.add(image, part, `entry order at position ${at + 1}`, shownPath(orderA[at]!), shownPath(orderB[at]!));
  }
}

/** Every entry of a layer by path (a repeated path gets ` (2)`, ` (3)`…), in tar order. */
async function entries(store: Store, desc: Descriptor): Promise<Map<string, EntryInfo>> {
  const out = new Map<string, EntryInfo>();
  const stream = await openLayerStream(store, desc);
  try {
    await readTar(stream, async (h, content) => {
      let key = h.path;
      for (let n = 2; out.has(key); n++) key = `${h.path} (${n})`;
      out.set(key, await info(h, content));
    });
  } catch (e) {
    throw layerReadError(e, `layer ${desc.digest} in ${store.name}`);
  }
  return out;
}

async function info(h: TarHeader, content: Readable): Promise<EntryInfo> {
  let digest: string | undefined;
  if (h.type === 'file') {
    const hash = createHash('sha256');
    for await (const chunk of content) hash.update(chunk as Buffer);
    digest = `sha256:${hash.digest('hex')}`;
  }
  const pax: Record<string, string> = {};
  for (const [k, v] of Object.entries(h.pax)) if (!PAX_AS_FIELDS.has(k) && !k.startsWith('SCHILY.xattr.')) pax[k] = v;
  const xattrs: Record<string, string> = {};
  for (const [k, v] of h.xattrs) xattrs[k] = Buffer.from(v).toString('base64');
  return {
    name: h.rawName,
    type: h.type,
    mode: h.mode,
    uid: h.uid,
    gid: h.gid,
    uname: h.uname,
    gname: h.gname,
    mtime: h.mtimeNsec === 0 ? String(h.mtime) : `${h.mtime}.${String(h.mtimeNsec).padStart(9, '0')}`,
    ...(h.linkTarget !== undefined && { linkTarget: h.linkTarget }),
    ...(h.rdev !== undefined && { rdev: h.rdev }),
    size: h.size,
    ...(digest !== undefined && { digest }),
    xattrs,
    pax,
  };
}

function diffIds(config: unknown): unknown[] {
  const ids = (config as { rootfs?: { diff_ids?: unknown } } | null)?.rootfs?.diff_ids;
  return Array.isArray(ids) ? ids : [];
}

/** Calls `emit(path, a, b)` for each leaf where `a` and `b` differ (undefined: absent on that side). */
export function deepDiff(a: unknown, b: unknown, path: string, emit: (path: string, a: unknown, b: unknown) => void): void {
  if (a === b) return;
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) deepDiff(a[i], b[i], `${path}[${i}]`, emit);
    return;
  }
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) deepDiff(a[k], b[k], joinKey(path, k), emit);
    return;
  }
  emit(path === '' ? '(value)' : path, a, b);
}

function joinKey(path: string, key: string): string {
  if (/^[A-Za-z_$][\w$]*$/.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

function shownPath(key: string): string {
  return `/${key}`;
}

function show(field: string, v: unknown): string {
  if (field === 'mode' && typeof v === 'number') return `0${v.toString(8).padStart(3, '0')}`;
  if (field === 'mtime' && typeof v === 'string') {
    const secs = Number(v.split('.')[0]);
    const iso = Number.isFinite(secs) && Math.abs(secs) < 8.64e12 ? new Date(secs * 1000).toISOString().replace(/\.000Z$/, 'Z') : '';
    return iso ? `${v} (${iso})` : v;
  }
  if (typeof v === 'string') return field === 'entry' ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}
