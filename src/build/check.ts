/**
 * `lading build --check`: the reproducibility test a release pipeline runs. The spec and every input
 * it reads are copied twice into separate temporary trees that differ the way two checkouts on two
 * machines do (mtimes, permission bits left by a different umask, owner when run as root, the order
 * files were created in, which some filesystems return from readdir), each copy is built into its own
 * temporary layout, and the two digests must be equal. When they are not, `diffImages` says where.
 *
 * A base image given by a relative oci:/oci-archive: path is read from where the spec is, not copied.
 */
import { chmod, chown, copyFile, lchown, lstat, mkdir, mkdtemp, readdir, readlink, rm, stat, symlink, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, parse as parsePath, relative, resolve as resolvePath, sep } from 'node:path';
import { fsError, LadingError } from '../errors.js';
import { LayoutStore } from '../store/layout/layout-store.js';
import { type BuildOptions, type BuildReport, buildImage } from './build.js';
import { defaultPlatforms, resolveBase } from './base.js';
import { type DiffReport, diffImages } from './diff.js';
import { inputPaths } from './inputs.js';
import { readSpec } from './spec.js';

/** How one copy of the inputs differs from the other. */
interface Variant {
  mtime: number;
  /** Permission bits cleared, as a umask would. */
  umask: number;
  /** Owner to give the files when running as root. */
  owner?: { uid: number; gid: number };
  reverse: boolean;
}

const VARIANTS: [Variant, Variant] = [
  { mtime: 1_000_000_000, umask: 0o022, reverse: false },
  { mtime: 2_000_000_000, umask: 0o077, owner: { uid: 4242, gid: 4343 }, reverse: true },
];

export interface CheckReport {
  reproducible: boolean;
  digest: string;
  builds: [BuildReport, BuildReport];
  /** When the digests differ: what differs. */
  diff?: DiffReport;
}

/**
 * Builds `specPath` from two perturbed copies of its inputs and compares. Resolves with the report
 * either way; `assertReproducible` turns a difference into an error.
 */
export async function checkBuild(specPath: string, options: BuildOptions = {}): Promise<CheckReport> {
  return compareBuilds(specPath, options, options);
}

/** As checkBuild, with separate options for each build (so a test can make them differ on purpose). */
export async function compareBuilds(specPath: string, optionsA: BuildOptions, optionsB: BuildOptions): Promise<CheckReport> {
  const spec = await readSpec(specPath);
  const inputs = new Set<string>();
  const base = await resolveBase(spec, optionsA);
  try {
    for (const p of await defaultPlatforms(spec, base)) for (const path of inputPaths(spec, p)) inputs.add(path);
  } finally {
    await base?.store.close();
  }
  const root = commonRoot([spec.dir, ...inputs]);
  const work = await mkdtemp(join(tmpdir(), 'lading-check-'));
  try {
    const builds: BuildReport[] = [];
    const layouts: string[] = [];
    for (const [i, variant] of VARIANTS.entries()) {
      const tree = join(work, `inputs-${i}`);
      const paths = [spec.path, ...inputs].sort();
      for (const p of variant.reverse ? paths.reverse() : paths) await copyInput(p, join(tree, relative(root, p)), variant);
      const layout = join(work, `image-${i}`);
      layouts.push(layout);
      const store = await LayoutStore.open(layout, 'write');
      try {
        const opts = i === 0 ? optionsA : optionsB;
        builds.push(
          await buildImage(join(tree, relative(root, spec.path)), store, [], {
            ...opts,
            baseDir: opts.baseDir ?? spec.dir,
            cacheDir: false,
          }),
        );
        await store.close();
      } catch (e) {
        await store.abort();
        throw e;
      }
    }
    const [a, b] = builds as [BuildReport, BuildReport];
    if (a.digest === b.digest) return { reproducible: true, digest: a.digest, builds: [a, b] };
    const [sa, sb] = await Promise.all(layouts.map((l) => LayoutStore.open(l, 'read')));
    try {
      const diff = await diffImages({ store: sa!, ref: undefined }, { store: sb!, ref: undefined }, { limit: 50 });
      return { reproducible: false, digest: a.digest, builds: [a, b], diff };
    } finally {
      await sa!.close();
      await sb!.close();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Throws NOT_REPRODUCIBLE with the first difference when the check failed. */
export function assertReproducible(report: CheckReport, spec: string): void {
  if (report.reproducible) return;
  const first = report.diff?.differences[0]?.message ?? 'the digests differ, but no difference was found in the images';
  const count = report.diff?.differences.length ?? 0;
  throw new LadingError(
    'NOT_REPRODUCIBLE',
    `${spec} is not reproducible: two builds from copies of its inputs gave ${report.builds[0].digest} and ${report.builds[1].digest}; first difference: ${first}${count > 1 ? ` (and ${count - 1} more${report.diff?.truncated ? '+' : ''}; run lading diff on the two builds for all)` : ''}`,
    { a: report.builds[0].digest, b: report.builds[1].digest },
  );
}

/** The deepest directory holding every path (the spec's directory when everything is inside it). */
function commonRoot(paths: string[]): string {
  const split = (p: string) => resolvePath(p).split(sep);
  let common = split(paths[0]!);
  for (const p of paths.slice(1)) {
    const parts = split(p);
    let n = 0;
    while (n < common.length && n < parts.length && common[n] === parts[n]) n++;
    common = common.slice(0, n);
  }
  const joined = common.join(sep);
  return joined === '' ? parsePath(resolvePath(paths[0]!)).root : joined;
}

/** Copies a file, or a directory tree (symlinks as symlinks), applying `v`; a top-level symlink is followed. */
async function copyInput(from: string, to: string, v: Variant, top = true): Promise<void> {
  const st = await lstat(from).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined; // reported by the build itself, with the spec's line
    throw fsError(e, 'read', from);
  });
  if (st === undefined) return;
  await mkdir(dirname(to), { recursive: true });
  if (st.isSymbolicLink() && !top) {
    await rm(to, { force: true });
    await symlink(await readlink(from), to);
    if (v.owner && process.getuid?.() === 0) await lchown(to, v.owner.uid, v.owner.gid).catch(() => undefined);
    return;
  }
  const real = st.isSymbolicLink() ? await stat(from).catch(() => undefined) : st;
  if (real === undefined) {
    await symlink(await readlink(from), to); // dangling or looping: the build reports it, with the spec's line
    return;
  }
  if (real.isDirectory()) {
    await mkdir(to, { recursive: true });
    const names = await readdir(from);
    for (const name of v.reverse ? names.sort().reverse() : names.sort()) await copyInput(join(from, name), join(to, name), v, false);
    await finish(to, 0o777, v);
  } else if (real.isFile()) {
    await copyFile(from, to);
    await finish(to, (real.mode & 0o111) !== 0 ? 0o777 : 0o666, v);
  }
}

async function finish(path: string, mode: number, v: Variant): Promise<void> {
  await chmod(path, mode & ~v.umask);
  if (v.owner && process.getuid?.() === 0) await chown(path, v.owner.uid, v.owner.gid);
  await utimes(path, v.mtime, v.mtime);
}
