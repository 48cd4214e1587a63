/**
 * `lading boot check`: every UKI a bootable image holds (`/boot/EFI/Linux/*.efi`) must name, in its
 * `.cmdline`, the image's bootable composefs digest computed the way the argument says (format version
 * and hash), or the initramfs would refuse to mount the root it was built for. The UKIs are read while
 * the layers stream (their PE headers and `.cmdline` only); the layers are read once, or twice when a
 * UKI names a SHA-256 digest (files are hashed with SHA-512 first, what bootc uses).
 */
import { LadingError } from '../errors.js';
import type { Entry } from '../fs/tree.js';
import type { Descriptor, Platform } from '../oci/types.js';
import type { Store } from '../store/store.js';
import type { VerityAlgorithm } from '../verity/fsverity.js';
import { erofsOf } from '../composefs/image-digest.js';
import { composefsTree, type ImageTree, readImageTree, type Tap } from '../composefs/image-tree.js';
import { type ComposefsKarg, kargKind } from './uki/cmdline.js';
import { PeReader } from './uki/pe.js';
import { isUkiPath, UKI_DIR, type UkiCmdline, ukiCmdline, wantCmdline } from './uki/uki.js';

export interface KargCheck extends ComposefsKarg {
  /** The image's bootable digest of the kind the argument names. */
  expected: string;
  ok: boolean;
}

export interface UkiCheck {
  path: string;
  cmdlines: string[];
  kargs: KargCheck[];
}

export interface BootCheck {
  /** The image manifest checked (for an index: the platform's). */
  manifest: Descriptor;
  ukis: UkiCheck[];
  ok: boolean;
}

/** A PeReader fed from a layer stream; a malformed file is reported only if it is a UKI in the end. */
class TappedUki {
  readonly reader: PeReader;
  error: unknown;
  constructor(size: number, what: string) {
    this.reader = new PeReader(size, what, wantCmdline);
  }
  update(chunk: Uint8Array): void {
    if (this.error !== undefined) return;
    try {
      this.reader.update(chunk);
    } catch (e) {
      this.error = e;
    }
  }
}

/** Taps every file at a UKI path while the layers stream; `found` gives the final image's UKIs. */
export function ukiTap(): { tap: Tap; found: (image: ImageTree) => { path: string; cmdline: UkiCmdline }[] } {
  const readers = new Map<string, TappedUki>();
  const tap: Tap = (h, layer) => {
    if (!isUkiPath(h.path)) return undefined;
    const t = new TappedUki(h.size, `/${h.path}`);
    readers.set(`${layer.digest}@${h.offset}`, t);
    return (chunk) => t.update(chunk);
  };
  const found = (image: ImageTree) => {
    const out: { path: string; cmdline: UkiCmdline }[] = [];
    for (const name of image.tree.children(UKI_DIR) ?? []) {
      const path = `${UKI_DIR}/${name}`;
      if (!isUkiPath(path)) continue;
      let e: Entry | undefined = image.tree.get(path);
      if (e?.type === 'hardlink') e = image.tree.get(e.linkTarget ?? '');
      if (e?.type !== 'file') continue;
      out.push({ path: `/${path}`, cmdline: ukiCmdline(readTapped(e, readers, `/${path}`), `/${path}`) });
    }
    return out;
  };
  return { tap, found };
}

function readTapped(e: Entry, readers: Map<string, TappedUki>, what: string) {
  if (e.content?.kind === 'bytes') {
    const r = new PeReader(e.size, what, wantCmdline);
    r.update(e.content.data);
    return r.finish();
  }
  const t = e.content?.kind === 'layer' ? readers.get(`${e.content.layer}@${e.content.offset}`) : undefined;
  if (t === undefined) throw new LadingError('INVALID_UKI', `${what}: its bytes were not seen while reading the layers`);
  if (t.error !== undefined) throw t.error;
  return t.reader.finish();
}

/**
 * The bootable digests of every kind `kargs` name. `first` is the image already read with SHA-512 (it
 * is transformed in place); another algorithm reads the layers again through `reread`.
 */
export async function bootableDigests(
  first: ImageTree,
  kargs: readonly ComposefsKarg[],
  reread: (algorithm: VerityAlgorithm) => Promise<ImageTree>,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const algorithms = [...new Set(kargs.map((k) => k.algorithm))].sort((a, b) => (a === 'sha512' ? -1 : b === 'sha512' ? 1 : 0));
  for (const algorithm of algorithms) {
    const image = algorithm === 'sha512' ? first : await reread(algorithm);
    composefsTree(image, { bootable: true });
    // Each format version the UKIs name (composefs-rs's legacy V2 too), or 1 alone.
    const versions = new Set<1 | 2>([1, ...kargs.filter((k) => k.algorithm === algorithm).map((k) => k.version)]);
    for (const version of versions) out.set(kargKind({ version, algorithm }), erofsOf(image.tree, version, algorithm).digest);
  }
  return out;
}

/** Checks every UKI in the image `desc` names; DIGEST_MISMATCH when one names another digest. */
export async function checkBoot(store: Store, desc: Descriptor, options: { platform?: Platform } = {}): Promise<BootCheck> {
  const platform = options.platform === undefined ? {} : { platform: options.platform };
  const { tap, found } = ukiTap();
  const first = await readImageTree(store, desc, { algorithm: 'sha512', tap, ...platform });
  const where = `${store.name}@${first.descriptor.digest}`;
  const ukis = found(first);
  if (ukis.length === 0) {
    throw new LadingError('NOT_FOUND', `${where} holds no UKI (/${UKI_DIR}/*.efi): nothing to check; add one with lading boot seal`);
  }
  const kargs = ukis.flatMap((u) => u.cmdline.kargs);
  const digests = await bootableDigests(first, kargs, (algorithm) => readImageTree(store, first.descriptor, { algorithm }));
  const checked: UkiCheck[] = ukis.map((u) => ({
    path: u.path,
    cmdlines: u.cmdline.cmdlines,
    kargs: u.cmdline.kargs.map((k) => {
      const expected = digests.get(kargKind(k))!;
      return { ...k, expected, ok: expected === k.digest };
    }),
  }));
  const result: BootCheck = { manifest: first.descriptor, ukis: checked, ok: checked.every((u) => u.kargs.every((k) => k.ok)) };
  const bad = checked.flatMap((u) => u.kargs.filter((k) => !k.ok).map((k) => ({ u, k })));
  if (bad.length > 0) {
    const { u, k } = bad[0]!;
    throw new LadingError(
      'DIGEST_MISMATCH',
      `${u.path} in ${where} names composefs digest ${kargKind(k)}:${k.digest}, but the image's bootable digest is ${k.expected}` +
        (bad.length > 1 ? ` (and ${bad.length - 1} more mismatch${bad.length > 2 ? 'es' : ''})` : ''),
      { uki: u.path, named: k.digest, expected: k.expected },
    );
  }
  return result;
}
