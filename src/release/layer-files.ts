/**
 * Reads a few named files out of an image without unpacking it: the layers are streamed from the top
 * down, and a file is taken from the highest layer that has it, unless a layer above removed it
 * (a `.wh.` whiteout of it or of a parent, an opaque `.wh..wh..opq` in a parent, or a parent replaced by
 * something that is not a directory). Layers below the last file found are never read.
 *
 * Within one layer, whiteouts apply to the layers below only (image-spec layer.md), so a file the same
 * layer adds wins over a whiteout next to it. A symlink is followed (from the top again, at most 8 hops);
 * a hardlink's content is read from its target in the same layer with a second pass over that layer.
 *
 * Each layer is read to its end, so the store's digest check of the layer runs before this returns: a
 * caller that spools a file's content must keep it provisional until then, and drop it on an error.
 */
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { LadingError } from '../errors.js';
import { layerReadError, openLayerStream } from '../fs/layer-stream.js';
import { readTar, type TarHeader } from '../fs/tar-reader.js';
import { baseName, normalizePath, parentOf } from '../fs/tree.js';
import type { Descriptor } from '../oci/types.js';
import type { Store } from '../store/store.js';

export type FileLookup = { state: 'found'; path: string; header: TarHeader; layer: Descriptor } | { state: 'missing'; reason: string };

const OPAQUE = '.wh..wh..opq';
const WHITEOUT = '.wh.';
const MAX_HOPS = 8;

/** Is `path` the same as or under `dir` ('' is the root)? */
function within(path: string, dir: string): boolean {
  return dir === '' || path === dir || path.startsWith(`${dir}/`);
}

/**
 * Looks for each of `paths` (tree form) in `layers` (bottom first, as a manifest lists them) and hands
 * each file found to `consume` with its content stream, which it must read or drain. Returns, per
 * requested path, where it was found or why not.
 */
export async function readFilesFromLayers(
  store: Store,
  layers: readonly Descriptor[],
  paths: readonly string[],
  consume: (requested: string, header: TarHeader, content: Readable) => Promise<void>,
): Promise<Map<string, FileLookup>> {
  const result = new Map<string, FileLookup>();
  /** Still looking: requested path -> the path currently searched for (differs after a symlink). */
  let pending = new Map(paths.map((p) => [p, p] as [string, string]));
  const hops = new Map<string, number>();

  while (pending.size > 0) {
    const restart = new Map<string, string>();
    for (let i = layers.length - 1; i >= 0 && pending.size > 0; i--) {
      const layer = layers[i]!;
      const where = `layer ${layer.digest} in ${store.name}`;
      const found = new Map<string, TarHeader>();
      const hidden = new Map<string, string>();
      const links = new Map<string, { requested: string; header: TarHeader }>();
      const stream = await openLayerStream(store, layer);
      try {
        await readTar(stream, async (h, content) => {
          for (const [requested, target] of pending) {
            if (found.has(requested)) continue;
            if (h.path === target) {
              if (h.type === 'file') {
                found.set(requested, h);
                await consume(requested, h, content);
              } else if (h.type === 'hardlink') {
                found.set(requested, h);
                links.set(h.linkTarget ?? '', { requested, header: h });
              } else if (h.type === 'symlink') {
                const link = h.linkTarget ?? '';
                restart.set(requested, normalizePath(link.startsWith('/') ? link : posix.join(parentOf(target), link)));
              } else {
                hidden.set(requested, `/${target} is a ${h.type} in ${where}, not a file`);
              }
              continue;
            }
            const base = baseName(h.path);
            const dir = parentOf(h.path);
            if (base === OPAQUE && within(target, dir) && target !== dir) {
              hidden.set(requested, `/${target} was removed by an opaque whiteout of /${dir} in ${where}`);
            } else if (base.startsWith(WHITEOUT) && base !== OPAQUE) {
              const removed = dir === '' ? base.slice(WHITEOUT.length) : `${dir}/${base.slice(WHITEOUT.length)}`;
              if (within(target, removed)) hidden.set(requested, `/${target} was removed by the whiteout ${h.rawName} in ${where}`);
            } else if (h.type !== 'directory' && within(target, h.path) && target !== h.path) {
              hidden.set(requested, `/${h.path} is a ${h.type} in ${where}, so /${target} cannot exist below it`);
            }
          }
        });
      } catch (e) {
        throw layerReadError(e, where);
      }
      for (const [linkTarget, { requested, header }] of links) {
        await readLinkedFile(store, layer, linkTarget, header, (h, content) => consume(requested, h, content));
      }
      for (const [requested, header] of found) {
        result.set(requested, { state: 'found', path: header.path, header, layer });
        pending.delete(requested);
        restart.delete(requested);
      }
      for (const requested of restart.keys()) pending.delete(requested);
      for (const [requested, reason] of hidden) {
        if (found.has(requested) || restart.has(requested)) continue;
        result.set(requested, { state: 'missing', reason });
        pending.delete(requested);
      }
    }
    for (const requested of pending.keys()) {
      result.set(requested, { state: 'missing', reason: `/${pending.get(requested)} is in none of the ${layers.length} layers` });
    }
    pending = new Map();
    for (const [requested, target] of restart) {
      const n = (hops.get(requested) ?? 0) + 1;
      hops.set(requested, n);
      if (n > MAX_HOPS) result.set(requested, { state: 'missing', reason: `/${requested}: too many levels of symlinks` });
      else pending.set(requested, target);
    }
  }
  return result;
}

/** The content of `target`, which a hardlink in `layer` named: a second pass over that layer. */
async function readLinkedFile(
  store: Store,
  layer: Descriptor,
  target: string,
  link: TarHeader,
  consume: (header: TarHeader, content: Readable) => Promise<void>,
): Promise<void> {
  let done = false;
  const stream = await openLayerStream(store, layer);
  try {
    await readTar(stream, async (h, content) => {
      if (!done && h.path === target && h.type === 'file') {
        done = true;
        await consume({ ...h, path: link.path, rawName: link.rawName, mode: link.mode }, content);
      }
    });
  } catch (e) {
    throw layerReadError(e, `layer ${layer.digest} in ${store.name}`);
  }
  if (!done) {
    throw new LadingError(
      'INVALID_ARCHIVE',
      `${link.rawName} in layer ${layer.digest} is a hardlink to ${target}, which that layer does not hold`,
    );
  }
}
