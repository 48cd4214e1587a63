/**
 * `lading pin`: locks a binary to a release by writing the release image, version and architecture into
 * the placeholders it was built with (markers.ts), without rebuilding it.
 *
 * How a file is pinned, and why this way: the kernel copies the file into a temp file next to the output
 * (a clone on btrfs/XFS, copy_file_range elsewhere: no byte passes through this process) while the input
 * is scanned for the markers in 1 MiB reads, the two at once on two cores; then the few hundred bytes of
 * each value are written into the copy at the offsets found, after checking the copy holds the marker
 * there. The copy is made with COPYFILE_EXCL on a fresh name: without it libuv truncates the new file
 * first, and ext4 then writes the whole file back synchronously when it is closed (auto_da_alloc),
 * doubling the time of a 1 GiB pin. Should the kernel copy fail, the file is streamed once through two
 * 1 MiB buffers, markers found and patched on the way (copyReplacingFile). Memory stays at two read
 * buffers either way. The temp file is renamed over the output only when everything succeeded, with the
 * input's permission bits; a failure leaves the output as it was.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, copyFile, type FileHandle, open, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fsError, isLadingError, LadingError } from '../errors.js';
import { MARKERS, type MarkerKind, type Replacement, replacementFor } from './markers.js';
import { type MarkerMatch, MarkerReplacer, matchWindow } from './marker-replacer.js';
import { showPinned } from './pin-show.js';

/** Read size for scanning: large enough to amortize the syscalls, small enough to stay in cache while searched. */
export const SCAN_CHUNK = 1 << 20;

export interface PinValues {
  releaseImage?: string;
  version?: string;
  arch?: string;
}

export interface PinOptions {
  /** Where to write the pinned binary; default: the input itself (replaced atomically). */
  output?: string;
}

export interface PinResult {
  input: string;
  output: string;
  size: number;
  mode: number;
  pinned: { kind: MarkerKind; name: string; value: string; offset: number }[];
}

/** The replacements `values` asks for, in oc's order (image, version, architecture). */
export function pinReplacements(values: PinValues): { kind: MarkerKind; replacement: Replacement }[] {
  const out: { kind: MarkerKind; replacement: Replacement }[] = [];
  if (values.releaseImage !== undefined) out.push({ kind: 'image', replacement: replacementFor('image', values.releaseImage) });
  if (values.version !== undefined) out.push({ kind: 'version', replacement: replacementFor('version', values.version) });
  if (values.arch !== undefined) out.push({ kind: 'arch', replacement: replacementFor('arch', values.arch) });
  return out;
}

/**
 * Finds the first occurrence of each marker in a file, streaming it in `chunk`-sized reads. The last
 * (longest marker - 1) bytes of each read are moved to the front of the buffer and the next read lands
 * after them, so a marker split across reads is found without copying the chunks.
 */
export async function scanFile(path: string, markers: readonly Replacement[], chunk = SCAN_CHUNK): Promise<MarkerMatch[]> {
  const pending = [...markers];
  const matches: MarkerMatch[] = [];
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fsError(e, 'read', path);
  }
  try {
    const buf = Buffer.allocUnsafe(longestMarker(markers) + chunk);
    let carried = 0;
    /** File offset of buf[0]. */
    let base = 0;
    while (pending.length > 0) {
      const { bytesRead } = await fh.read(buf, carried, chunk, null);
      if (bytesRead === 0) break;
      const end = carried + bytesRead;
      const keep = matchWindow(buf.subarray(0, end), pending, base, false, matches);
      buf.copyWithin(0, end - keep, end);
      base += end - keep;
      carried = keep;
    }
  } catch (e) {
    throw fsError(e, 'read', path);
  } finally {
    await fh.close();
  }
  return matches;
}

function longestMarker(markers: readonly Replacement[]): number {
  return Math.max(0, ...markers.map((m) => m.marker.length - 1));
}

/**
 * Streams `input` into the new file `output`, replacing the first occurrence of each marker on the way.
 * Two buffers take turns: one is written while the next read fills the other, which starts with the
 * bytes held back from the previous read (the tail where a pending marker may begin).
 */
export async function copyReplacingFile(
  input: string,
  output: string,
  markers: readonly Replacement[],
  chunk = SCAN_CHUNK,
): Promise<MarkerMatch[]> {
  const pending = [...markers];
  const matches: MarkerMatch[] = [];
  const src = await open(input, 'r').catch((e: unknown) => {
    throw fsError(e, 'read', input);
  });
  let dst: FileHandle | undefined;
  let writing: Promise<void> = Promise.resolve();
  try {
    dst = await open(output, 'wx', 0o600).catch((e: unknown) => {
      throw fsError(e, 'write', output);
    });
    const out = dst;
    const writeAll = async (buf: Buffer, length: number, position: number): Promise<void> => {
      for (let done = 0; done < length;) {
        const { bytesWritten } = await out.write(buf, done, length - done, position + done);
        done += bytesWritten;
      }
    };
    const bufs = [Buffer.allocUnsafe(longestMarker(markers) + chunk), Buffer.allocUnsafe(longestMarker(markers) + chunk)];
    let which = 0;
    let carried = 0;
    /** File offset of the current buffer's first byte. */
    let base = 0;
    for (;;) {
      const buf = bufs[which]!;
      const { bytesRead } = await src.read(buf, carried, chunk, null).catch((e: unknown) => {
        throw fsError(e, 'read', input);
      });
      const end = carried + bytesRead;
      const keep = bytesRead === 0 || pending.length === 0 ? 0 : matchWindow(buf.subarray(0, end), pending, base, true, matches);
      const cut = end - keep;
      await writing; // the other buffer is free once its write is done
      buf.copy(bufs[which ^ 1]!, 0, cut, end);
      writing = writeAll(buf, cut, base);
      if (bytesRead === 0) break;
      base += cut;
      carried = keep;
      which ^= 1;
    }
    await writing;
  } catch (e) {
    await writing.catch(() => undefined);
    throw isLadingError(e) ? e : fsError(e, 'write', output);
  } finally {
    await src.close();
    await dst?.close();
  }
  return matches;
}

/** Checks that `path` is a regular file we may pin; returns its stat. */
async function checkInput(path: string): Promise<{ size: number; mode: number }> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw fsError(e, 'read', path);
  }
  if (st.isDirectory()) throw new LadingError('USAGE', `${path} is a directory, not a binary: name the executable file to pin`, { path });
  if (!st.isFile()) throw new LadingError('USAGE', `${path} is not a regular file: name the executable file to pin`, { path });
  return { size: st.size, mode: st.mode & 0o7777 };
}

/**
 * Pins `input`: writes each value given into its marker's first occurrence. Every requested marker must
 * be present (a binary without one was not built to be pinned, or is pinned already); nothing is written
 * otherwise. Values are checked before any I/O.
 */
export async function pinFile(input: string, values: PinValues, options: PinOptions = {}): Promise<PinResult> {
  const wanted = pinReplacements(values);
  if (wanted.length === 0) throw new LadingError('USAGE', 'nothing to pin: give --release-image, --version or --arch');
  new MarkerReplacer(wanted.map((w) => w.replacement)); // validates every value before any I/O
  const { size, mode } = await checkInput(input);
  // In place, a symlink keeps pointing at the (now pinned) file it names.
  const output = options.output ?? (await realpath(input));
  const inPlace = resolve(output) === resolve(input);
  if (inPlace && (mode & 0o222) === 0) {
    throw new LadingError(
      'USAGE',
      `${input} is read-only (mode ${mode.toString(8).padStart(4, '0')}): pass -o OUT to write a pinned copy, or make it writable first`,
      {
        path: input,
      },
    );
  }
  if (!inPlace) {
    const st = await stat(output).catch(() => undefined);
    if (st?.isDirectory()) throw new LadingError('USAGE', `-o ${output} is a directory: name the file to write`, { path: output });
  }

  const tmp = join(dirname(output), `.${basename(output)}.lading-pin-${randomBytes(6).toString('hex')}`);
  try {
    const markers = wanted.map((w) => w.replacement);
    // The kernel copy and the scan run side by side; the copy's outcome decides how to go on.
    const copied = copyFile(input, tmp, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE).then(
      () => true,
      () => false,
    );
    const scanned = scanFile(input, markers);
    scanned.catch(() => undefined); // awaited below unless the copy failed
    const kernelCopy = await copied;
    let matches: MarkerMatch[];
    if (kernelCopy) matches = await scanned;
    else {
      await scanned.catch(() => undefined);
      await rm(tmp, { force: true });
      matches = await copyReplacingFile(input, tmp, markers);
    }
    const missing = wanted.filter((w) => !matches.some((m) => m.name === w.replacement.name)).map((w) => w.kind);
    if (missing.length > 0) throw await missingMarkers(input, missing);
    if (kernelCopy) await patchCopy(tmp, input, wanted, matches, size);
    const pinned = wanted.map(({ kind, replacement }) => ({
      kind,
      name: replacement.name,
      value: Buffer.from(replacement.value).toString('utf8'),
      offset: matches.find((m) => m.name === replacement.name)!.offset,
    }));
    await chmod(tmp, mode).catch((e: unknown) => {
      throw fsError(e, 'set the mode of', tmp);
    });
    await rename(tmp, output).catch((e: unknown) => {
      throw fsError(e, 'write', output);
    });
    return { input, output, size, mode, pinned };
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Writes the values into the copy, checking first that it holds each marker where the scan saw it. */
async function patchCopy(
  tmp: string,
  input: string,
  wanted: readonly { kind: MarkerKind; replacement: Replacement }[],
  matches: readonly MarkerMatch[],
  size: number,
): Promise<void> {
  const fh = await open(tmp, 'r+').catch((e: unknown) => {
    throw fsError(e, 'write', tmp);
  });
  try {
    if ((await fh.stat()).size !== size) throw changed(input);
    for (const { replacement } of wanted) {
      const match = matches.find((m) => m.name === replacement.name)!;
      const here = Buffer.alloc(replacement.marker.length);
      await fh.read(here, 0, here.length, match.offset);
      if (!here.equals(replacement.marker)) throw changed(input);
      const patch = Buffer.concat([replacement.value, Buffer.from([0])]);
      await fh.write(patch, 0, patch.length, match.offset);
    }
  } finally {
    await fh.close();
  }
}

function changed(input: string): LadingError {
  return new LadingError('FILE_CHANGED', `${input} changed while it was being pinned: run lading pin again`, { path: input });
}

/** The error for markers `pin` did not find, saying whether the binary is pinned already. */
async function missingMarkers(input: string, kinds: readonly MarkerKind[]): Promise<LadingError> {
  const names = kinds.map((k) => MARKERS[k].name);
  let already: string[] = [];
  try {
    const shown = await showPinned(input);
    already = kinds.flatMap((k) => {
      const v = shown.values[k];
      return v.state === 'pinned' ? [`${MARKERS[k].name} ${JSON.stringify(v.value)}`] : [];
    });
  } catch {
    // The first error is the one to report.
  }
  const what = names.length === 1 ? `${names[0]} marker` : `${names.join(' or ')} markers`;
  const hint =
    already.length > 0
      ? `it is pinned already (${already.join(', ')}): pin the original, unpinned binary`
      : 'it was not built with the placeholder (see lading pin --show)';
  return new LadingError('MARKER_NOT_FOUND', `${input} has no ${what}: ${hint}`, { path: input, missing: names.join(', ') });
}
