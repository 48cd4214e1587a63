/**
 * Logically bound images (bootc): the application images a bootable image declares in
 * `usr/lib/bootc/bound-images.d`, each entry a symlink to a quadlet `.image` or `.container` file.
 * bootc reads them only on the machine, at upgrade time; reading them here, from a root on disk or an
 * image's flattened layers, lets a build check them, pin them, mirror them and stage them beforehand.
 *
 * The rules follow bootc's boundimage.rs, with what it leaves out filled in as quadlet would read the
 * same files: links resolve inside the root (RESOLVE_IN_ROOT); `[Image] Image=` in `.image` files and
 * `[Container] Image=` in `.container` files (a `.container` naming `x.image` gets that unit's image,
 * found beside the `.container` file, then in the quadlet directories); `%%` is `%` and every other
 * specifier is an error; `[Image] AuthFile=` is looked up in the image's root, then the host's.
 */
import { isLadingError, LadingError } from '../../errors.js';
import { type ImageReference, parseImageReference } from '../../oci/reference.js';
import { HostRootView, resolveInRoot, resolutionProblem, type RootView } from './root-view.js';
import { unescapeSpecifiers } from './specifiers.js';
import { lookupLast, MAX_UNIT_FILE_BYTES, parseUnitFile, type UnitAssignment, type UnitFile, unquote } from './unit-file.js';

export const BOUND_IMAGE_DIR = 'usr/lib/bootc/bound-images.d';
/** Where quadlet looks for system units, inside the root, in its order. */
export const QUADLET_DIRS = ['etc/containers/systemd', 'usr/share/containers/systemd'] as const;

/** Auth files are small JSON; anything bigger is not one. */
const MAX_AUTH_FILE_BYTES = 1024 * 1024;

export interface AuthFileLocation {
  /** The path as `AuthFile=` gives it (after unescaping). */
  path: string;
  /** Which root holds it: the image's own, or the host's. */
  foundIn: 'image' | 'host';
  /** Where it resolved, inside that root (absolute, links followed). */
  resolved: string;
  /** The file's bytes (not enumerable, so printing a BoundImage as JSON never shows credentials). */
  readonly content?: Uint8Array;
}

export interface BoundImage {
  /** The image as declared, after unquoting and unescaping `%%`. */
  image: string;
  /** The same, parsed and normalized (docker.io/library/… for short Docker Hub names). */
  reference: ImageReference;
  /** The entry in bound-images.d that declares it, e.g. /usr/lib/bootc/bound-images.d/app.image. */
  source: string;
  /** The unit file whose `Image=` names the image (links followed). */
  file: string;
  /** The `.container` file, when it names the image through an `.image` unit (`Image=app.image`). */
  container?: string;
  /** The `Image=` assignment in `file` (for rewriting it). */
  assignment: UnitAssignment;
  authFile?: AuthFileLocation;
  /** Floating references, short names, lines systemd would ignore. */
  warnings: string[];
}

export interface BoundImageProblem {
  source: string;
  message: string;
}

export interface ScanOptions {
  /** The host's root, for `AuthFile=` paths the image does not hold (default: this machine's /). */
  hostRoot?: RootView;
  /**
   * Look `AuthFile=` up (default true). A mirror passes false: the host an `AuthFile=` means is the
   * machine that will run the image, not the one mirroring it, so a file missing here is no error there.
   */
  authFiles?: boolean;
}

/**
 * Every bound image a root declares, and every problem found, entry by entry (in byte order of the
 * entry names). A missing bound-images.d declares none.
 */
export async function scanBoundImages(
  view: RootView,
  options: ScanOptions = {},
): Promise<{ images: BoundImage[]; problems: BoundImageProblem[] }> {
  const images: BoundImage[] = [];
  const problems: BoundImageProblem[] = [];
  const dir = await resolveInRoot(view, BOUND_IMAGE_DIR, { followFinal: true });
  if (!dir.ok) {
    if (dir.errno === 'ENOENT') return { images, problems };
    throw new LadingError('INVALID_BOUND_IMAGE', `cannot read /${BOUND_IMAGE_DIR} in ${view.description}: ${resolutionProblem(dir)}`);
  }
  if (dir.stat === undefined) return { images, problems };
  if (dir.stat.type !== 'directory') {
    throw new LadingError('INVALID_BOUND_IMAGE', `/${BOUND_IMAGE_DIR} in ${view.description} is not a directory`);
  }
  const entries = (await view.readdir(dir.path)).sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  const host = options.hostRoot ?? new HostRootView('/');
  for (const entry of entries) {
    const source = `/${BOUND_IMAGE_DIR}/${entry.name}`;
    try {
      if (!entry.utf8) throw problem(`invalid non-UTF-8 file name ${JSON.stringify(entry.name)} in /${BOUND_IMAGE_DIR}`);
      images.push(await readEntry(view, options.authFiles === false ? undefined : host, `${dir.path}/${entry.name}`, source));
    } catch (e) {
      if (!isLadingError(e)) throw e;
      problems.push({ source, message: `bound image ${source}: ${e.message}` });
    }
  }
  return { images, problems };
}

/** Like scanBoundImages, but any problem is an error (the first one, with a count of the rest). */
export async function readBoundImages(view: RootView, options: ScanOptions = {}): Promise<BoundImage[]> {
  const { images, problems } = await scanBoundImages(view, options);
  const first = problems[0];
  if (first !== undefined) {
    const more =
      problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''} in /${BOUND_IMAGE_DIR})` : '';
    throw new LadingError('INVALID_BOUND_IMAGE', `${first.message}${more}`, { source: first.source });
  }
  return images;
}

async function readEntry(view: RootView, host: RootView | undefined, path: string, source: string): Promise<BoundImage> {
  const st = await view.lstat(path);
  if (st?.type !== 'symlink') throw problem('not a symlink: bound images are declared by symlinks to .image or .container files');
  const kind = path.endsWith('.image') ? 'image' : path.endsWith('.container') ? 'container' : undefined;
  if (kind === undefined) throw problem('invalid file extension: the link must be named NAME.image or NAME.container');
  const target = await view.readlink(path);
  const r = await resolveInRoot(view, path, { followFinal: true });
  if (!r.ok) throw problem(`dangling link to ${target}: ${resolutionProblem(r)}`);
  if (r.stat === undefined) throw problem(`dangling link to ${target}: /${r.path} does not exist`);
  if (r.stat.type !== 'file') throw problem(`the link points at /${r.path}, which is not a regular file`);
  if (!r.path.endsWith(`.${kind}`)) throw problem(`the link points at /${r.path}, which is not a .${kind} file`);
  const file = `/${r.path}`;
  const unit = await readUnit(view, r.path);
  if (kind === 'image') return fromImageUnit(view, host, unit, { source, file });

  const assignment = lookupLast(unit, 'Container', 'Image');
  if (assignment === undefined) throw problem(`${file} has no Image= in its [Container] section`);
  const image = imageValue(assignment, file);
  if (image.endsWith('.build'))
    throw problem(`${file}: Image=${image} names a quadlet build unit; a bound image must be pulled, not built`);
  if (!image.endsWith('.image')) return bound(image, { source, file, assignment, unit });
  if (image.includes('/')) throw problem(`${file}: Image=${image} must name an .image unit by its file name alone`);
  const unitPath = await findImageUnit(view, r.path, image);
  return fromImageUnit(view, host, await readUnit(view, unitPath), { source, file: `/${unitPath}`, container: file });
}

/** An `.image` unit's image and auth file. */
async function fromImageUnit(
  view: RootView,
  host: RootView | undefined,
  unit: UnitFile,
  where: { source: string; file: string; container?: string },
): Promise<BoundImage> {
  const assignment = lookupLast(unit, 'Image', 'Image');
  if (assignment === undefined) throw problem(`${where.file} has no Image= in its [Image] section`);
  const image = imageValue(assignment, where.file);
  const result = bound(image, { ...where, assignment, unit });
  const auth = lookupLast(unit, 'Image', 'AuthFile');
  if (auth !== undefined && host !== undefined) result.authFile = await findAuthFile(view, host, auth, where.file);
  return result;
}

function bound(
  image: string,
  where: { source: string; file: string; container?: string; assignment: UnitAssignment; unit: UnitFile },
): BoundImage {
  let reference: ImageReference;
  try {
    reference = parseImageReference(image);
  } catch (e) {
    if (isLadingError(e)) throw problem(`${where.file}: ${e.message}`);
    throw e;
  }
  const warnings = where.unit.warnings.map((w) => `systemd ignores ${w}`);
  if (reference.digest === undefined) {
    const tag = reference.tag ?? 'latest';
    warnings.push(
      tag === 'latest'
        ? `floating reference: ${image} follows :latest, which moves, and bootc never pulls an image again once present; pin it by digest (lading bound-images pin)`
        : `floating reference: ${image} has no digest, so tag ${tag} can move; pin it by digest (lading bound-images pin)`,
    );
  }
  if (!image.startsWith(`${reference.domain}/`)) {
    warnings.push(
      `short name: ${image} names no registry, so podman resolves it through registries.conf; write ${reference.domain}/${reference.path}`,
    );
  }
  return {
    image,
    reference,
    source: where.source,
    file: where.file,
    ...(where.container !== undefined && { container: where.container }),
    assignment: where.assignment,
    warnings,
  };
}

/** The `.image` unit a `.container` names: beside the `.container` file, then in the quadlet directories. */
async function findImageUnit(view: RootView, containerPath: string, name: string): Promise<string> {
  const beside = containerPath.includes('/') ? containerPath.slice(0, containerPath.lastIndexOf('/')) : '';
  const dirs = [...new Set([beside, ...QUADLET_DIRS])];
  for (const dir of dirs) {
    const r = await resolveInRoot(view, dir === '' ? name : `${dir}/${name}`, { followFinal: true });
    if (r.ok && r.stat?.type === 'file') return r.path;
  }
  throw problem(`/${containerPath}: Image=${name} names an image unit that is in none of ${dirs.map((d) => `/${d}`).join(', ')}`);
}

/** `AuthFile=`: the image's own root first, then the host's; missing from both is an error naming both. */
async function findAuthFile(view: RootView, host: RootView, assignment: UnitAssignment, file: string): Promise<AuthFileLocation> {
  const path = specValue(unquote(assignment.value), file, 'AuthFile');
  if (path === '') throw problem(`${file}: AuthFile= is empty`);
  for (const [root, foundIn] of [
    [view, 'image'],
    [host, 'host'],
  ] as const) {
    const r = await resolveInRoot(root, path, { followFinal: true });
    if (!r.ok || r.stat?.type !== 'file') continue;
    const content = await root.readFile(r.path, MAX_AUTH_FILE_BYTES);
    const location: AuthFileLocation = { path, foundIn, resolved: `/${r.path}` };
    Object.defineProperty(location, 'content', { value: content, enumerable: false });
    return location;
  }
  throw problem(
    `${file}: AuthFile=${path} is in neither the image (${path} in ${view.description}) nor the host (${path} in ${host.description})`,
  );
}

async function readUnit(view: RootView, path: string): Promise<UnitFile> {
  return parseUnitFile(await view.readFile(path, MAX_UNIT_FILE_BYTES), `/${path}`);
}

function imageValue(assignment: UnitAssignment, file: string): string {
  const image = specValue(unquote(assignment.value), file, 'Image');
  if (image === '') throw problem(`${file}: Image= is empty`);
  return image;
}

function specValue(value: string, file: string, key: string): string {
  try {
    return unescapeSpecifiers(value);
  } catch (e) {
    if (isLadingError(e)) throw problem(`${file}: ${key}=: ${e.message}`);
    throw e;
  }
}

function problem(message: string): LadingError {
  return new LadingError('INVALID_BOUND_IMAGE', message);
}
