/**
 * Cross-process coordination inside one layout, with no daemon and nothing but the filesystem:
 *
 * - An exclusive lock file (`.lading/lock`, created with O_EXCL) guards read-modify-write of index.json
 *   and garbage collection. It holds the owner's pid and host, so a lock left by a killed process on this
 *   host is taken over rather than blocking forever.
 * - A writer lease (`.lading/writers/<pid>-<nonce>`) exists while a process may be adding blobs that no
 *   manifest references yet; gc refuses to run while a live lease exists, so it never deletes them.
 *
 * Node has no flock(2), and an O_EXCL file plus a liveness check is what git and containers/storage's
 * lockfile fallbacks do too.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fsError, LadingError } from '../../errors.js';

export const PRIVATE_DIR = '.lading';

interface Owner {
  pid: number;
  host: string;
}

function alive(owner: Owner): boolean {
  if (owner.host !== hostname()) return true; // cannot tell for another host: assume it is alive
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(path: string): Promise<Owner | undefined> {
  try {
    const [pid, host] = (await readFile(path, 'utf8')).trim().split(' ');
    return { pid: Number(pid), host: host ?? '' };
  } catch {
    return undefined;
  }
}

/** Holds the layout's exclusive lock while `fn` runs. Waits up to `timeoutMs` for another holder. */
export async function withLayoutLock<T>(layoutDir: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const dir = join(layoutDir, PRIVATE_DIR);
  const path = join(dir, 'lock');
  await mkdir(dir, { recursive: true }).catch((e) => {
    throw fsError(e, 'create', dir);
  });
  const deadline = Date.now() + timeoutMs;
  for (let wait = 5; ; wait = Math.min(wait * 2, 250)) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(`${process.pid} ${hostname()}\n`);
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(e, 'create lock', path);
      const owner = await readOwner(path);
      if (owner && !alive(owner)) {
        await rm(path, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new LadingError(
          'LOCKED',
          `${layoutDir} is locked by lading pid ${owner?.pid ?? '?'} on ${owner?.host ?? '?'}: wait for it to finish, or remove ${path} if that process is gone`,
        );
      }
      await sleep(wait);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}

/** Registers this process as a writer of the layout until `release` is called. */
export async function acquireWriterLease(layoutDir: string): Promise<{ release: () => Promise<void> }> {
  const dir = join(layoutDir, PRIVATE_DIR, 'writers');
  await mkdir(dir, { recursive: true }).catch((e) => {
    throw fsError(e, 'create', dir);
  });
  const path = join(dir, `${process.pid}-${randomBytes(4).toString('hex')}`);
  const fh = await open(path, 'wx').catch((e) => {
    throw fsError(e, 'create', path);
  });
  await fh.writeFile(`${process.pid} ${hostname()}\n`);
  await fh.close();
  return { release: () => rm(path, { force: true }) };
}

/** Live writers other than this process; leases of dead processes are removed on the way. */
export async function liveWriters(layoutDir: string): Promise<Owner[]> {
  const dir = join(layoutDir, PRIVATE_DIR, 'writers');
  const names = await readdir(dir).catch(() => [] as string[]);
  const live: Owner[] = [];
  for (const name of names) {
    const owner = await readOwner(join(dir, name));
    if (owner === undefined) continue;
    if (!alive(owner)) await rm(join(dir, name), { force: true });
    else if (owner.pid !== process.pid || owner.host !== hostname()) live.push(owner);
  }
  return live;
}
