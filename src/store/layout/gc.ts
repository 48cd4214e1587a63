/**
 * `lading gc`: deletes blobs that nothing in index.json reaches, and temp files left by killed writers.
 * It runs under the layout lock and refuses while another process is writing (its new blobs are not
 * referenced yet), or while a manifest cannot be read (its children would look unreferenced).
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LadingError } from '../../errors.js';
import { listBlobFiles } from './fsck.js';
import type { LayoutStore } from './layout-store.js';
import { liveWriters, PRIVATE_DIR, withLayoutLock } from './lock.js';
import { reachable } from './reachable.js';

export interface GcReport {
  layout: string;
  removed: { digest: string; size: number }[];
  bytes: number;
  tempFiles: number;
  dryRun: boolean;
}

export async function gcLayout(store: LayoutStore, options: { dryRun?: boolean } = {}): Promise<GcReport> {
  const dryRun = options.dryRun ?? false;
  return withLayoutLock(store.dir, async () => {
    const writers = await liveWriters(store.dir);
    if (writers[0] !== undefined) {
      throw new LadingError('LOCKED', `${store.name} is being written by lading pid ${writers[0].pid}: run gc after it finishes`);
    }
    const graph = await reachable(store, await store.readIndex());
    const unreadable = graph.problems.find((p) => p.kind !== 'missing');
    if (unreadable !== undefined) {
      throw new LadingError('INVALID_LAYOUT', `gc stopped, nothing removed: ${unreadable.message} (run lading fsck)`);
    }
    const report: GcReport = { layout: store.name, removed: [], bytes: 0, tempFiles: 0, dryRun };
    for (const { digest, path } of await listBlobFiles(store.dir)) {
      if (graph.blobs.has(digest)) continue;
      const { size } = await stat(path);
      report.removed.push({ digest, size });
      report.bytes += size;
      if (!dryRun) await rm(path, { force: true });
    }
    const tmpDir = join(store.dir, PRIVATE_DIR, 'tmp');
    for (const name of await readdir(tmpDir).catch(() => [] as string[])) {
      report.tempFiles++;
      if (!dryRun) await rm(join(tmpDir, name), { force: true });
    }
    return report;
  });
}
