/** Real UKIs for the boot tests: the systemd-boot stub with a `.cmdline` section added by objcopy. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ok } from '../helpers/run.js';

export const STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';

/** Writes `DIR/NAME` from the stub with `cmdline` (NUL-terminated, as ukify writes it) as its .cmdline. */
export async function makeUki(dir: string, name: string, cmdline: string): Promise<string> {
  const text = join(dir, `${name}.cmdline`);
  await writeFile(text, `${cmdline}\0`);
  const out = join(dir, name);
  await ok(
    'objcopy',
    '--add-section',
    `.cmdline=${text}`,
    '--change-section-vma',
    '.cmdline=0x30000',
    '--set-section-flags',
    '.cmdline=data,readonly',
    STUB,
    out,
  );
  return out;
}
