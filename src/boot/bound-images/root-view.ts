/**
 * A read-only view of a root filesystem, so bound images read the same from an unpacked root on disk
 * and from an image's flattened layers, and path resolution inside either behaves as
 * openat2(RESOLVE_IN_ROOT) does: an absolute symlink target starts again at the root, `..` at the root
 * stays at the root, and a chain of more than 40 links fails (ELOOP, Linux's MAXSYMLINKS).
 *
 * The views only answer questions about one path whose parent components are real directories (they
 * never follow a link themselves); `resolveInRoot` walks a path one component at a time, reading links
 * through the view, so a link can never lead outside the root. Node has no openat2, hence the walk.
 */
import { constants } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { LadingError, fsError } from '../../errors.js';
import type { Entry, FileTree } from '../../fs/tree.js';

export type RootFileType = 'file' | 'directory' | 'symlink' | 'other';

export interface RootStat {
  type: RootFileType;
  /** Regular files: their size. */
  size: number;
}

export interface RootDirEntry {
  name: string;
  /** False when the name on disk is not valid UTF-8 (`name` then shows it with U+FFFD). */
  utf8: boolean;
}

/** One root filesystem. Paths are in tree form: relative to the root, '/'-separated, '' for the root. */
export interface RootView {
  /** What to call the root in messages: a directory, or an image digest. */
  readonly description: string;
  /** The entry itself (a link is not followed); undefined when absent. */
  lstat(path: string): Promise<RootStat | undefined>;
  /** A symlink's target as written. */
  readlink(path: string): Promise<string>;
  /** A regular file's bytes; refuses files over `limit` bytes. */
  readFile(path: string, limit: number): Promise<Uint8Array>;
  /** Names in a directory, unsorted. */
  readdir(path: string): Promise<RootDirEntry[]>;
}

/** Linux's MAXSYMLINKS: the links one resolution may follow before ELOOP. */
export const MAX_SYMLINKS = 40;

export type Resolution =
  { ok: true; path: string; stat: RootStat | undefined } | { ok: false; errno: 'ENOENT' | 'ENOTDIR' | 'ELOOP'; at: string };

/**
 * Resolves `path` (absolute or relative, both taken from the root) inside the root. With `followFinal`
 * a link in the last component is followed too (open without O_NOFOLLOW). A missing last component is
 * not an error: the result has `stat` undefined and the path it would have.
 */
export async function resolveInRoot(view: RootView, path: string, options: { followFinal: boolean }): Promise<Resolution> {
  const resolved: string[] = [];
  let pending = components(path);
  let links = 0;
  let stat: RootStat | undefined = { type: 'directory', size: 0 };
  while (pending.length > 0) {
    const name = pending[0]!;
    pending = pending.slice(1);
    if (name === '..') {
      resolved.pop(); // at the root, '..' is the root
      stat = { type: 'directory', size: 0 };
      continue;
    }
    const candidate = [...resolved, name].join('/');
    const st = await view.lstat(candidate);
    const last = pending.length === 0;
    if (st === undefined) {
      if (last) return { ok: true, path: candidate, stat: undefined };
      return { ok: false, errno: 'ENOENT', at: candidate };
    }
    if (st.type === 'symlink' && (!last || options.followFinal)) {
      if (++links > MAX_SYMLINKS) return { ok: false, errno: 'ELOOP', at: candidate };
      const target = await view.readlink(candidate);
      if (target === '') return { ok: false, errno: 'ENOENT', at: candidate };
      if (target.startsWith('/')) resolved.length = 0;
      pending = [...components(target), ...pending];
      stat = { type: 'directory', size: 0 };
      continue;
    }
    if (!last && st.type !== 'directory') return { ok: false, errno: 'ENOTDIR', at: candidate };
    resolved.push(name);
    stat = st;
  }
  return { ok: true, path: resolved.join('/'), stat };
}

/** Path components without empty and '.' ones ('..' is kept: only the walk knows where it leads). */
function components(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

/** What a failed resolution means, in words. */
export function resolutionProblem(r: Extract<Resolution, { ok: false }>): string {
  switch (r.errno) {
    case 'ENOENT':
      return `/${r.at} does not exist`;
    case 'ENOTDIR':
      return `/${r.at} is not a directory`;
    case 'ELOOP':
      return `too many levels of symbolic links at /${r.at} (more than ${MAX_SYMLINKS})`;
  }
}

/** An unpacked root on the host (`--root DIR`). */
export class HostRootView implements RootView {
  readonly description: string;

  constructor(readonly dir: string) {
    this.description = dir;
  }

  private host(path: string): string {
    return path === '' ? this.dir : join(this.dir, path);
  }

  async lstat(path: string): Promise<RootStat | undefined> {
    try {
      const st = await lstat(this.host(path));
      const type: RootFileType = st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'other';
      return { type, size: type === 'file' ? st.size : 0 };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw fsError(e, 'read', this.host(path));
    }
  }

  async readlink(path: string): Promise<string> {
    try {
      return await readlink(this.host(path));
    } catch (e) {
      throw fsError(e, 'read the link', this.host(path));
    }
  }

  async readFile(path: string, limit: number): Promise<Uint8Array> {
    const file = this.host(path);
    // O_NOFOLLOW: a link put in place after the walk checked this name is refused, not followed.
    const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((e: unknown) => {
      throw fsError(e, 'read', file);
    });
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new LadingError('IO', `cannot read ${file}: not a regular file`, { path: file });
      if (st.size > limit) throw new LadingError('IO', `${file} is ${st.size} bytes, over the ${limit}-byte limit`, { path: file });
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }

  async readdir(path: string): Promise<RootDirEntry[]> {
    const names = await readdir(this.host(path), { encoding: 'buffer' }).catch((e: unknown) => {
      throw fsError(e, 'list', this.host(path));
    });
    return names.map((raw) => {
      const name = raw.toString('utf8');
      return { name, utf8: Buffer.from(name, 'utf8').equals(raw) };
    });
  }
}

/**
 * An image's root as a FileTree (its layers flattened). Small files carry their bytes; for others,
 * `load` is asked for them (e.g. by reading the layer again), and without it reading them fails.
 */
export class TreeRootView implements RootView {
  constructor(
    private readonly tree: FileTree,
    readonly description: string,
    private readonly load?: (entry: Entry) => Promise<Uint8Array | undefined>,
  ) {}

  /** The entry at `path`, with a hard link replaced by the entry it links to. */
  private entry(path: string): Entry | undefined {
    let e = this.tree.get(path);
    for (let hops = 0; e?.type === 'hardlink' && hops < MAX_SYMLINKS; hops++) e = this.tree.get(e.linkTarget ?? '');
    return e?.type === 'hardlink' ? undefined : e;
  }

  lstat(path: string): Promise<RootStat | undefined> {
    const e = this.entry(path);
    if (e === undefined) return Promise.resolve(undefined);
    const type: RootFileType = e.type === 'file' || e.type === 'directory' || e.type === 'symlink' ? e.type : 'other';
    return Promise.resolve({ type, size: type === 'file' ? e.size : 0 });
  }

  readlink(path: string): Promise<string> {
    const e = this.entry(path);
    if (e?.type !== 'symlink') return Promise.reject(new LadingError('IO', `/${path} in ${this.description} is not a symbolic link`));
    return Promise.resolve(e.linkTarget ?? '');
  }

  async readFile(path: string, limit: number): Promise<Uint8Array> {
    const e = this.entry(path);
    if (e?.type !== 'file') throw new LadingError('IO', `/${path} in ${this.description} is not a regular file`, { path });
    if (e.size > limit) throw new LadingError('IO', `/${path} in ${this.description} is ${e.size} bytes, over the ${limit}-byte limit`);
    if (e.content?.kind === 'bytes') return e.content.data;
    if (e.size === 0) return new Uint8Array();
    const loaded = await this.load?.(e);
    if (loaded === undefined)
      throw new LadingError('IO', `the content of /${path} in ${this.description} was not kept in memory`, { path });
    return loaded;
  }

  readdir(path: string): Promise<RootDirEntry[]> {
    const names = this.tree.children(path) ?? [];
    return Promise.resolve(names.map((name) => ({ name, utf8: true })));
  }
}
