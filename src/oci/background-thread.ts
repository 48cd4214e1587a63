/**
 * Hashing workers run at a lower scheduling priority than the thread that feeds them: on a machine
 * with fewer cores than busy threads, the main thread (parsing what the workers then hash, and the
 * only thread that can finish the job) otherwise gets a fair share at best and becomes the critical
 * path. Linux applies setpriority(PRIO_PROCESS, tid) to a single thread; /proc/thread-self names it.
 * Elsewhere, or if refused, nothing changes.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

const BACKGROUND_NICE = 10;

export function lowerThreadPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, BACKGROUND_NICE);
  } catch {
    // not Linux, or not allowed: the worker runs at the process's priority
  }
}
