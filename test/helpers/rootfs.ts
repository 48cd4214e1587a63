import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

/** One entry of an unpacked root filesystem, as far as two unpackers must agree on it. */
export interface RootfsEntry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** Permission bits (mode & 0o7777). */
  mode: number;
  /** For a file: sha256 of its content. For a symlink: its target. */
  content?: string;
}

/**
 * Every entry under `root` keyed by its path relative to `root`: type, permissions, content hash or link
 * target. Times and owners are left out: they legitimately differ between unpacks (rootless remapping).
 */
export async function listRootfs(root: string): Promise<Record<string, RootfsEntry>> {
  const out: Record<string, RootfsEntry> = {};
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(root, rel), { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      const p = join(root, r);
      const st = await lstat(p);
      const mode = st.mode & 0o7777;
      if (st.isSymbolicLink()) out[r] = { type: 'symlink', mode, content: await readlink(p) };
      else if (st.isDirectory()) {
        out[r] = { type: 'dir', mode };
        await walk(r);
      } else if (st.isFile())
        out[r] = {
          type: 'file',
          mode,
          content: createHash('sha256')
            .update(await readFile(p))
            .digest('hex'),
        };
      else out[r] = { type: 'other', mode };
    }
  };
  await walk('');
  return out;
}

export function sha256Hex(bytes: string | Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
