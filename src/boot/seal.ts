/**
 * `lading boot seal`: puts a UKI into a bootable image as a final layer (`/boot/EFI/Linux/NAME.efi`),
 * after checking that its `.cmdline` names the bootable composefs digest of the image it will be in.
 * /boot is emptied in the bootable variant, so adding the UKI does not change that digest: the UKI can
 * name the digest of the image that carries it (composefs-rs#21, resolved by emptying /boot).
 *
 * The digests are computed on the image as sealed (the original tree with the new layer applied in
 * memory), so `lading boot check` on the result passes by construction. Nothing is written unless the
 * check passes: `prepareSeal` reads and checks, `writeSeal` writes (the caller opens the target only in
 * between). The manifest records the digests as the composefs OCI sealing spec's inline mode has them:
 * `composefs.merged.bootable.erofs.v1.fsverity-<alg>-12` and `composefs.merged.erofs.v1.…` in the
 * manifest annotations, `composefs.config.fsverity-<alg>-12` on the config descriptor.
 *
 * The UKI is copied to a private temp file first and read only from there, so the bytes checked are the
 * bytes sealed even if the original changes meanwhile. Everything in the new layer is root-owned with
 * /usr's mtime (directories the image already has keep their metadata), so sealing is reproducible.
 */
import { copyFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fsError, LadingError } from '../errors.js';
import type { Compression } from '../fs/compress.js';
import { type Entry, FileTree, makeEntry } from '../fs/tree.js';
import type { Descriptor, ImageManifest, Platform } from '../oci/types.js';
import { parseManifest } from '../oci/parse.js';
import type { Store } from '../store/store.js';
import { fsverityDigest, type VerityAlgorithm } from '../verity/fsverity.js';
import { erofsOf, verityOf } from '../composefs/image-digest.js';
import { composefsTree, INLINE_MAX, type ImageTree, makeBootable, readImageTree } from '../composefs/image-tree.js';
import { detachLink } from '../composefs/tree-links.js';
import { appendLayer } from './append-layer.js';
import type { KargCheck } from './check.js';
import { kargKind } from './uki/cmdline.js';
import { readPeFile } from './uki/pe.js';
import { isUkiPath, UKI_DIR, ukiCmdline, wantCmdline } from './uki/uki.js';

export interface SealOptions {
  /** The UKI file on the host. */
  uki: string;
  /** Its name under /boot/EFI/Linux (default: the file's name, `.efi` added when missing). */
  name?: string;
  platform?: Platform;
  compression?: Compression;
}

export interface SealPlan {
  /** The image manifest sealed (for an index: the platform's). */
  manifest: Descriptor;
  /** Where the UKI goes in the image (`/boot/EFI/Linux/NAME.efi`). */
  path: string;
  /** Other UKIs the image already holds (boot check checks them too). */
  otherUkis: string[];
  kargs: KargCheck[];
  /** What the sealed manifest's annotations and config descriptor will record. */
  annotations: Record<string, string>;
  configAnnotations: (config: Uint8Array) => Record<string, string>;
  layerTree: FileTree;
  manifestBytes: Uint8Array;
  parsed: ImageManifest;
  /** Removes the UKI snapshot (after writing, or instead of it). */
  dispose: () => Promise<void>;
}

const HISTORY_BY = 'lading boot seal';

function ukiName(options: SealOptions): string {
  const name = options.name ?? (basename(options.uki).endsWith('.efi') ? basename(options.uki) : `${basename(options.uki)}.efi`);
  if (!/^[^/\0]+\.efi$/.test(name) || name === '.efi') {
    throw new LadingError('USAGE', `--name ${JSON.stringify(name)}: give a file name ending in .efi, without '/'`);
  }
  return name;
}

/** The new layer: /boot/EFI/Linux and the UKI, with the image's directory metadata where it has them. */
function sealLayer(image: ImageTree, path: string, snapshot: string, size: number): FileTree {
  const usr = image.tree.get('usr');
  const mtime = usr?.mtime ?? 0;
  const layer = new FileTree();
  for (const dir of ['boot', 'boot/EFI', UKI_DIR]) {
    const have = image.tree.get(dir);
    layer.set(have?.type === 'directory' ? { ...have, xattrs: new Map(have.xattrs) } : makeEntry(dir, 'directory', { mode: 0o755, mtime }));
  }
  layer.set(makeEntry(path, 'file', { mode: 0o644, mtime, size, content: { kind: 'file', path: snapshot } }));
  return layer;
}

/** Applies the layer to the image tree in memory, as flattening the sealed image would. */
async function applyLayer(image: ImageTree, layer: FileTree, algorithm: VerityAlgorithm): Promise<void> {
  for (const e of layer.walk()) {
    if (e.path === '') continue;
    if (e.type !== 'file') {
      image.tree.set({ ...e, xattrs: new Map(e.xattrs) });
      continue;
    }
    if (image.tree.has(e.path)) detachLink(image.tree, e.path);
    const file = (e.content as { kind: 'file'; path: string }).path;
    const own: Entry = { ...e, xattrs: new Map(e.xattrs) };
    if (e.size <= INLINE_MAX) own.content = { kind: 'bytes', data: await readFile(file) };
    else own.verity = (await fsverityDigest(file, algorithm)).toString('hex');
    image.tree.set(own);
  }
}

/** Reads the image and the UKI, and checks that the UKI names the sealed image's bootable digest. */
export async function prepareSeal(src: Store, desc: Descriptor, options: SealOptions): Promise<SealPlan> {
  const name = ukiName(options);
  const path = `${UKI_DIR}/${name}`;
  const dir = await mkdtemp(join(tmpdir(), 'lading-seal-'));
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    const snapshot = join(dir, name);
    try {
      await copyFile(options.uki, snapshot);
    } catch (e) {
      throw fsError(e, 'read the UKI', options.uki);
    }
    const size = (await stat(snapshot)).size;
    const { kargs } = ukiCmdline(await readPeFile(snapshot, wantCmdline), options.uki);
    const platform = options.platform === undefined ? {} : { platform: options.platform };
    const algorithms = [...new Set(kargs.map((k) => k.algorithm))];
    const annotations: Record<string, string> = {};
    const bootable = new Map<string, string>();
    const otherUkis: string[] = [];
    let first: { image: ImageTree; layer: FileTree } | undefined;
    for (const algorithm of algorithms) {
      const image = await readImageTree(src, first?.image.descriptor ?? desc, { algorithm, ...platform });
      const layer = first?.layer ?? sealLayer(image, path, snapshot, size);
      if (first === undefined) {
        for (const other of image.tree.children(UKI_DIR) ?? []) {
          if (other !== name && isUkiPath(`${UKI_DIR}/${other}`)) otherUkis.push(`/${UKI_DIR}/${other}`);
        }
      }
      first ??= { image, layer };
      await applyLayer(image, layer, algorithm);
      composefsTree(image, { bootable: false });
      const kind = `erofs.v1.fsverity-${algorithm}-12`;
      annotations[`composefs.merged.${kind}`] = erofsOf(image.tree, 1, algorithm).digest;
      makeBootable(image);
      const digest = erofsOf(image.tree, 1, algorithm).digest;
      annotations[`composefs.merged.bootable.${kind}`] = digest;
      bootable.set(kargKind({ version: 1, algorithm }), digest);
      // A UKI may name composefs-rs's legacy V2 digest instead; the annotations keep to V1 (the spec's).
      if (kargs.some((k) => k.algorithm === algorithm && k.version === 2)) {
        bootable.set(kargKind({ version: 2, algorithm }), erofsOf(image.tree, 2, algorithm).digest);
      }
    }
    const checked: KargCheck[] = kargs.map((k) => {
      const expected = bootable.get(kargKind(k))!;
      return { ...k, expected, ok: expected === k.digest };
    });
    const bad = checked.find((k) => !k.ok);
    const image = first!.image;
    if (bad !== undefined) {
      throw new LadingError(
        'DIGEST_MISMATCH',
        `${options.uki} names composefs digest ${kargKind(bad)}:${bad.digest}, but ${src.name}@${image.descriptor.digest} with it sealed has bootable digest ${bad.expected}: rebuild the UKI with composefs.digest=${kargKind(bad)}:${bad.expected}; nothing was written`,
        { uki: options.uki, named: bad.digest, expected: bad.expected },
      );
    }
    const manifestBytes = await src.fetchManifest(image.descriptor);
    const parsed = parseManifest(manifestBytes, image.descriptor, `manifest ${image.descriptor.digest} in ${src.name}`);
    if (parsed.kind !== 'manifest') throw new LadingError('INVALID_MANIFEST', `${image.descriptor.digest} is not an image manifest`);
    return {
      manifest: image.descriptor,
      path: `/${path}`,
      otherUkis,
      kargs: checked,
      annotations,
      configAnnotations: (config) => Object.fromEntries(algorithms.map((a) => [`composefs.config.fsverity-${a}-12`, verityOf(config, a)])),
      layerTree: first!.layer,
      manifestBytes,
      parsed: parsed.manifest,
      dispose,
    };
  } catch (e) {
    await dispose();
    throw e;
  }
}

export interface SealResult {
  descriptor: Descriptor;
  layer: Descriptor;
  config: Descriptor;
}

/** Writes the sealed image into `dst` and tags it; the plan's snapshot is removed either way. */
export async function writeSeal(
  src: Store,
  dst: Store,
  plan: SealPlan,
  options: { tags: readonly string[]; compression?: Compression },
): Promise<SealResult> {
  try {
    const kinds = plan.kargs.map((k) => `${kargKind(k)}:${k.digest}`);
    const appended = await appendLayer(src, dst, plan.manifest, plan.parsed, plan.manifestBytes, plan.layerTree, {
      ...(options.compression !== undefined && { compression: options.compression }),
      history: { created_by: HISTORY_BY, comment: `UKI ${plan.path} sealed to composefs digest ${[...new Set(kinds)].join(' ')}` },
      annotate: (config) => ({ manifest: plan.annotations, config: plan.configAnnotations(config) }),
    });
    await dst.pushManifest(appended.descriptor, appended.bytes, { tags: options.tags, root: true });
    return { descriptor: appended.descriptor, layer: appended.layer, config: appended.config };
  } finally {
    await plan.dispose();
  }
}
