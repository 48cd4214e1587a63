/**
 * The composefs arguments of a kernel command line, as the composefs initramfs (composefs-rs
 * `cmdline.rs`) and bootc read them:
 *
 * - `composefs.digest=vN-<hash>-<blockbits>:<hex>` (`v1-sha512-12`, `v1-sha256-12`, `v2-…`), several
 *   allowed; a `?` right after `=` makes fs-verity optional at boot ("insecure");
 * - the legacy `composefs=<hex>` (`composefs=?<hex>`), read only when no `composefs.digest=` is present:
 *   the algorithm follows from the length (64 hex digits SHA-256, 128 SHA-512) and the format is read as
 *   version 1, what bootc's `ukify` writes today (UKIs sealed by composefs-rs before 2026-06 named a
 *   version 2 digest this way).
 *
 * Splitting follows the kernel: whitespace separates arguments except inside double quotes.
 */
import { LadingError } from '../../errors.js';
import type { VerityAlgorithm } from '../../verity/fsverity.js';

export interface ComposefsKarg {
  /** The argument as written. */
  text: string;
  /** EROFS format version the digest is of. */
  version: 1 | 2;
  algorithm: VerityAlgorithm;
  /** Lowercase hex. */
  digest: string;
  /** `?`: fs-verity not required at boot. */
  insecure: boolean;
  legacy: boolean;
}

const HEX_LENGTH: Record<VerityAlgorithm, number> = { sha256: 64, sha512: 128 };

/** The command line in a `.cmdline` section: UTF-8, trailing NULs and whitespace dropped. */
export function cmdlineText(section: Uint8Array, what: string): string {
  let end = section.length;
  while (end > 0 && (section[end - 1] === 0 || section[end - 1] === 0x20 || (section[end - 1]! >= 0x09 && section[end - 1]! <= 0x0d)))
    end--;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(section.subarray(0, end));
  } catch {
    throw new LadingError('INVALID_UKI', `${what}: the .cmdline section is not UTF-8 text`);
  }
}

/** Kernel-style splitting: whitespace outside double quotes separates arguments. */
export function splitCmdline(cmdline: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (const c of cmdline) {
    if (c === '"') quoted = !quoted;
    if (!quoted && /\s/.test(c) && c.charCodeAt(0) < 0x80) {
      if (current !== '') out.push(current);
      current = '';
    } else current += c;
  }
  if (current !== '') out.push(current);
  return out;
}

function hexDigest(hex: string, algorithm: VerityAlgorithm, arg: string, what: string): string {
  if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length !== HEX_LENGTH[algorithm]) {
    throw new LadingError('INVALID_UKI', `${what}: ${arg} does not end in ${HEX_LENGTH[algorithm]} hex digits (a ${algorithm} digest)`);
  }
  return hex.toLowerCase();
}

/** Parses `vN-<hash>-<bits>:<hex>` (after the optional `?`). */
function digestValue(value: string, arg: string, what: string): Omit<ComposefsKarg, 'text' | 'insecure' | 'legacy'> {
  const m = /^v(\d+)-([a-z0-9]+)-(\d+):(.*)$/.exec(value);
  if (!m) throw new LadingError('INVALID_UKI', `${what}: ${arg} is not composefs.digest=vN-<hash>-<blockbits>:<hex>`);
  const [, v, hash, bits, hex] = m as unknown as [string, string, string, string, string];
  if (v !== '1' && v !== '2') throw new LadingError('INVALID_UKI', `${what}: ${arg} names format version ${v} (composefs knows v1 and v2)`);
  if (hash !== 'sha256' && hash !== 'sha512')
    throw new LadingError('INVALID_UKI', `${what}: ${arg} names hash ${hash} (expected sha256 or sha512)`);
  if (bits !== '12') {
    throw new LadingError(
      'INVALID_UKI',
      `${what}: ${arg} names ${2 ** Number(bits)}-byte fs-verity blocks; only 4096-byte blocks (12) are supported`,
    );
  }
  return { version: v === '1' ? 1 : 2, algorithm: hash, digest: hexDigest(hex, hash, arg, what) };
}

/** Every composefs digest a command line names (empty when it names none). */
export function composefsKargs(cmdline: string, what: string): ComposefsKarg[] {
  const args = splitCmdline(cmdline);
  const out: ComposefsKarg[] = [];
  for (const arg of args) {
    if (!arg.startsWith('composefs.digest=')) continue;
    let value = arg.slice('composefs.digest='.length);
    const insecure = value.startsWith('?');
    if (insecure) value = value.slice(1);
    out.push({ text: arg, ...digestValue(value, arg, what), insecure, legacy: false });
  }
  if (out.length > 0) return out;
  const legacy = args.find((a) => a.startsWith('composefs='));
  if (legacy === undefined) return out;
  let hex = legacy.slice('composefs='.length);
  const insecure = hex.startsWith('?');
  if (insecure) hex = hex.slice(1);
  const algorithm: VerityAlgorithm | undefined = hex.length === 64 ? 'sha256' : hex.length === 128 ? 'sha512' : undefined;
  if (algorithm === undefined) {
    throw new LadingError('INVALID_UKI', `${what}: ${legacy} is not 64 or 128 hex digits (a SHA-256 or SHA-512 digest)`);
  }
  return [{ text: legacy, version: 1, algorithm, digest: hexDigest(hex, algorithm, legacy, what), insecure, legacy: true }];
}

/** How a karg names its digest kind, for messages and annotations: `v1-sha512-12`. */
export function kargKind(k: Pick<ComposefsKarg, 'version' | 'algorithm'>): string {
  return `v${k.version}-${k.algorithm}-12`;
}
