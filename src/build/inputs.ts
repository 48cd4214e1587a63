/**
 * A spec layer's files for one platform, read from the host into a FileTree: metadata only (content
 * stays a reference to the host file, read and re-checked when the tar is written).
 *
 * Nothing of the host leaks into the tree: every mtime is the build's epoch, owners are 0:0 unless the
 * spec says otherwise, and modes are fixed: 0644, or 0755 when any execute bit is set on the host (so a
 * checkout made under umask 077 gives the same image as one made under 022); directories 0755.
 *
 * A top-level `src` is followed if it is a symlink (its real path must stay inside the spec's
 * directory unless allowed); symlinks found while copying a directory are copied as symlinks, never
 * followed, so they cannot pull in anything from outside. A symlink that loops is refused, as is
 * anything that is not a file, directory or symlink.
 */
import { lstat, readdir, readlink, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, join, relative, resolve as resolvePath, sep } from 'node:path';
import { fsError, LadingError } from '../errors.js';
import { formatPlatform } from '../oci/platform.js';
import type { Platform } from '../oci/types.js';
import { compareNames, type Entry, FileTree, makeEntry } from '../fs/tree.js';
import { type BuildSpec, type FileSpec, type LayerSpec, substitute } from './spec.js';

export interface InputOptions {
  /** Seconds since the epoch: every mtime in the tree. */
  epoch: number;
  /** Let `src` resolve outside the spec's directory. */
  allowOutsideContext?: boolean;
}

/** How strongly a path is defined: explicitly (twice is an error) or as a directory something lives in. */
type Strength = 'strong' | 'weak';

interface Definition {
  strength: Strength;
  origin: string;
  type: Entry['type'];
}

/** The host paths a spec reads for `platform` (lexically resolved, before following symlinks), for --check. */
export function inputPaths(spec: BuildSpec, platform: Platform): string[] {
  const out: string[] = [];
  for (const layer of spec.layers) {
    for (const f of layer.files) if (f.kind === 'copy') out.push(resolvePath(spec.dir, substitute(f.src, platform)));
  }
  return out;
}

/** Builds the tree of one spec layer for one platform; throws INVALID_SPEC naming the entry's line. */
export async function layerTree(
  spec: BuildSpec,
  layer: LayerSpec,
  platform: Platform,
  options: InputOptions,
  /** The trees of the spec's layers below this one, bottom first (hardlinks may point into them). */
  lower: readonly FileTree[] = [],
): Promise<FileTree> {
  const context = await realpath(spec.dir).catch((e: unknown) => {
    throw fsError(e, 'read', spec.dir);
  });
  const dirDefaults = { mode: 0o755, uid: 0, gid: 0, mtime: options.epoch };
  const tree = new FileTree(dirDefaults);
  const defined = new Map<string, Definition>();
  const where = `for ${formatPlatform(platform)}`;
  const fail = (f: FileSpec, message: string, code: 'INVALID_SPEC' | 'NOT_FOUND' | 'UNSAFE_PATH' = 'INVALID_SPEC') =>
    new LadingError(code, `${spec.path} line ${f.line}: ${f.at}: ${message}`, { spec: spec.path, line: String(f.line) });

  const put = (f: FileSpec, entry: Entry, strength: Strength, origin: string): void => {
    const have = defined.get(entry.path);
    const shown = `/${entry.path}`;
    if (have !== undefined) {
      const bothDirs = have.type === 'directory' && entry.type === 'directory';
      if (have.strength === 'strong' && strength === 'strong') {
        throw fail(f, `${shown} is given twice in this layer: by ${have.origin} and by ${origin}; keep one`);
      }
      if (!bothDirs) {
        throw fail(f, `${shown} is a ${have.type} from ${have.origin} and a ${entry.type} from ${origin}; a path can be only one thing`);
      }
      if (strength === 'weak') return; // an explicit directory entry keeps its metadata
    } else if (entry.type !== 'directory' && tree.get(entry.path)?.type === 'directory') {
      // A directory made only as the parent of other entries: replacing it would drop them.
      const child = tree.children(entry.path)?.[0];
      throw fail(f, `${shown} is a directory here (it holds /${entry.path}/${child ?? ''}) and a ${entry.type} from ${origin}`);
    }
    try {
      tree.set(entry, dirDefaults);
    } catch (e) {
      throw fail(f, (e as Error).message, 'UNSAFE_PATH');
    }
    defined.set(entry.path, { strength, origin, type: entry.type });
  };

  for (const f of layer.files) {
    const origin = `${f.at} (line ${f.line})`;
    const owner = { uid: 'uid' in f ? (f.uid ?? 0) : 0, gid: 'gid' in f ? (f.gid ?? 0) : 0 };
    switch (f.kind) {
      case 'directory':
        put(f, makeEntry(f.dest, 'directory', { mode: f.mode ?? 0o755, ...owner, mtime: options.epoch }), 'strong', origin);
        break;
      case 'symlink':
        put(f, makeEntry(f.dest, 'symlink', { mode: 0o777, ...owner, mtime: options.epoch, linkTarget: f.target }), 'strong', origin);
        break;
      case 'hardlink':
        put(f, makeEntry(f.dest, 'hardlink', { mode: 0o644, mtime: options.epoch, linkTarget: f.target }), 'strong', origin);
        break;
      case 'copy': {
        const src = substitute(f.src, platform);
        const abs = resolvePath(spec.dir, src);
        const real = await realpath(abs).catch((e: NodeJS.ErrnoException) => {
          if (e.code === 'ENOENT') return Promise.reject(fail(f, `src ${src} does not exist (${where}, looked for ${abs})`, 'NOT_FOUND'));
          if (e.code === 'ELOOP') return Promise.reject(fail(f, `src ${src} is a symlink loop`, 'UNSAFE_PATH'));
          return Promise.reject(fsError(e, 'read', abs));
        });
        if (!options.allowOutsideContext && !inside(context, real)) {
          throw fail(
            f,
            `src ${src} is outside the spec's directory ${context} (it resolves to ${real}): move it inside, or pass --allow-outside-context`,
            'UNSAFE_PATH',
          );
        }
        const st = await stat(real).catch((e: unknown) => Promise.reject(fsError(e, 'read', real)));
        if (st.isFile()) {
          if (src.endsWith('/')) throw fail(f, `src ${src} ends with / but is a file`);
          const dest = f.destIsDir ? `${f.dest}/${basename(abs)}` : f.dest;
          put(f, fileEntry(dest, real, st, f.mode, owner, options.epoch), 'strong', `${origin}`);
        } else if (st.isDirectory()) {
          if (f.mode !== undefined) {
            throw fail(f, `mode applies to a single file; the files of directory ${src} get 0644, or 0755 when executable`);
          }
          if (f.dest !== '') put(f, makeEntry(f.dest, 'directory', { mode: 0o755, ...owner, mtime: options.epoch }), 'weak', origin);
          await copyDirectory(real, f.dest, src, (entry, strength, hostPath) => put(f, entry, strength, `${origin} (${hostPath})`), {
            owner,
            epoch: options.epoch,
            fail: (m) => fail(f, m, 'UNSAFE_PATH'),
          });
        } else {
          throw fail(f, `src ${src} is ${kindOf(st)}: only files, directories and symlinks can be copied`);
        }
        break;
      }
    }
  }

  for (const f of layer.files) {
    if (f.kind !== 'hardlink') continue;
    if (f.target === f.dest) throw fail(f, `hardlink /${f.dest} points at itself`);
    let target = tree.get(f.target);
    if (target === undefined) {
      // A link to a file of a lower spec layer: a tar hardlink must name an entry of its own layer, so
      // the file is written again here (same content and metadata, as an overlayfs copy-up would).
      const lowerFile = fromLower(lower, f.target);
      if (lowerFile !== undefined) {
        tree.set({ ...lowerFile, path: f.target }, dirDefaults);
        target = lowerFile;
      }
    }
    if (target === undefined || (target.type !== 'file' && target.type !== 'hardlink')) {
      throw fail(
        f,
        `hardlink target /${f.target} must be a regular file this build adds (in this layer or a lower one; not the base image's)${target ? `, but it is a ${target.type}` : ''}`,
      );
    }
    // The header of a link carries its file's mode and owner (extractors ignore them; readers and diffs do not).
    let holder: Entry | undefined = target;
    for (let hops = 0; holder?.type === 'hardlink' && hops < 64; hops++) holder = tree.get(holder.linkTarget ?? '');
    const link = tree.get(f.dest);
    if (holder?.type === 'file' && link?.type === 'hardlink') tree.set({ ...link, mode: holder.mode, uid: holder.uid, gid: holder.gid });
  }
  return tree;
}

/** The regular file at `path` in the nearest lower layer that has the path (following hardlinks there). */
function fromLower(lower: readonly FileTree[], path: string): Entry | undefined {
  for (let i = lower.length - 1; i >= 0; i--) {
    const t = lower[i]!;
    let e = t.get(path);
    if (e === undefined) continue;
    for (let hops = 0; e?.type === 'hardlink' && hops < 64; hops++) e = t.get(e.linkTarget ?? '');
    return e?.type === 'file' ? e : undefined;
  }
  return undefined;
}

function fileEntry(
  dest: string,
  hostPath: string,
  st: Stats,
  mode: number | undefined,
  owner: { uid: number; gid: number },
  epoch: number,
): Entry {
  return makeEntry(dest, 'file', {
    mode: mode ?? ((st.mode & 0o111) !== 0 ? 0o755 : 0o644),
    ...owner,
    mtime: epoch,
    size: st.size,
    content: { kind: 'file', path: hostPath },
  });
}

async function copyDirectory(
  hostDir: string,
  dest: string,
  shown: string,
  put: (entry: Entry, strength: Strength, hostPath: string) => void,
  o: { owner: { uid: number; gid: number }; epoch: number; fail: (message: string) => LadingError },
): Promise<void> {
  const names = (
    await readdir(hostDir).catch((e: unknown) => {
      throw fsError(e, 'read', hostDir);
    })
  ).sort(compareNames);
  for (const name of names) {
    const host = join(hostDir, name);
    const path = dest === '' ? name : `${dest}/${name}`;
    const st = await lstat(host).catch((e: unknown) => Promise.reject(fsError(e, 'read', host)));
    if (st.isDirectory()) {
      put(makeEntry(path, 'directory', { mode: 0o755, ...o.owner, mtime: o.epoch }), 'weak', host);
      await copyDirectory(host, path, shown, put, o);
    } else if (st.isFile()) {
      put(fileEntry(path, host, st, undefined, o.owner, o.epoch), 'strong', host);
    } else if (st.isSymbolicLink()) {
      await stat(host).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ELOOP') throw o.fail(`${host} (in src ${shown}) is a symlink loop: remove it or point it somewhere real`);
        // A dangling symlink is copied as it is: it may point at something the image provides.
      });
      const target = await readlink(host).catch((e: unknown) => Promise.reject(fsError(e, 'read', host)));
      put(makeEntry(path, 'symlink', { mode: 0o777, ...o.owner, mtime: o.epoch, linkTarget: target }), 'strong', host);
    } else {
      throw o.fail(`${host} (in src ${shown}) is ${kindOf(st)}: only files, directories and symlinks can be copied`);
    }
  }
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !rel.startsWith(sep));
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}
