/**
 * Unified Kernel Images as a bootable image holds them (`/boot/EFI/Linux/*.efi`, where bootc and
 * kernel-install put them) and the composefs digests their `.cmdline` sections name. A multi-profile
 * UKI has one `.cmdline` per profile: every one of them is read.
 */
import { LadingError } from '../../errors.js';
import { cmdlineText, type ComposefsKarg, composefsKargs } from './cmdline.js';
import type { PeFile, PeSection } from './pe.js';

export const UKI_DIR = 'boot/EFI/Linux';
const UKI_PATH = /^boot\/EFI\/Linux\/[^/]+\.efi$/;

/** Whether a tree path names a UKI (`boot/EFI/Linux/NAME.efi`). */
export function isUkiPath(path: string): boolean {
  return UKI_PATH.test(path);
}

export const wantCmdline = (name: string): boolean => name === '.cmdline';

export interface UkiCmdline {
  /** Each `.cmdline` section's text, in section order. */
  cmdlines: string[];
  kargs: ComposefsKarg[];
}

/** The composefs digests a UKI's `.cmdline` sections name; INVALID_UKI when there are none. */
export function ukiCmdline(read: { pe: PeFile; sections: Map<PeSection, Buffer> }, what: string): UkiCmdline {
  const sections = read.pe.sections.filter((s) => s.name === '.cmdline');
  if (sections.length === 0) {
    throw new LadingError('INVALID_UKI', `${what} has no .cmdline section: it is not a UKI, or its command line is not built in`);
  }
  const cmdlines = sections.map((s) => cmdlineText(read.sections.get(s) ?? Buffer.alloc(0), what));
  const kargs = cmdlines.flatMap((c) => composefsKargs(c, what));
  if (kargs.length === 0) {
    throw new LadingError(
      'INVALID_UKI',
      `${what}: its command line names no composefs digest (composefs.digest=v1-sha512-12:<hex> or composefs=<hex>): ${JSON.stringify(cmdlines[0])}`,
    );
  }
  return { cmdlines, kargs };
}
