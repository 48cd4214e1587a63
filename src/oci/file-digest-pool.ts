/**
 * SHA-256/512 of local files on other cores. Verifying a layout's blobs as they are read (composefs
 * digests, builds, copies to a registry) costs the main thread as much as everything else it does with
 * the bytes; a worker that reads the same file descriptor with pread and hashes it leaves the main
 * thread only the reading it needs anyway. Workers are started on first use (at most one per spare
 * core), kept referenced only while they have work, so an idle pool never holds the process open.
 *
 * When the compiled worker script is not there (running from TypeScript sources, as the unit tests
 * do) or the machine has one core, `offThreadHashing()` is false and callers hash inline instead.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { DigestAlgorithm } from './digest.js';
import type { HashReply, HashRequest } from './file-digest-worker.js';

export interface HashJob {
  /** The hex digest of the bytes read, and how many there were. */
  result: Promise<{ hex: string; bytes: number }>;
  /** Asks the worker to stop reading (the result then covers fewer bytes). */
  cancel(): void;
  /**
   * The caller has handed over every range of the file it will (verity-pool.ts hashes a layer in
   * the same pass as the files in it, and can finish the layer only then). Absent: nothing to say.
   */
  inputDone?(): void;
}

interface Slot {
  worker: Worker;
  inFlight: number;
}

const SCRIPT = fileURLToPath(new URL('./file-digest-worker.js', import.meta.url));
const MAX_WORKERS = Math.max(0, Math.min(4, availableParallelism() - 1));

const slots: Slot[] = [];
const pending = new Map<number, { resolve: (r: { hex: string; bytes: number }) => void; reject: (e: Error) => void; slot: Slot }>();
let nextId = 0;
let available: boolean | undefined;

/** Whether hashFileRange runs off the main thread here. */
export function offThreadHashing(): boolean {
  available ??= MAX_WORKERS > 0 && existsSync(SCRIPT);
  return available;
}

function startWorker(): Slot {
  const slot: Slot = { worker: new Worker(SCRIPT), inFlight: 0 };
  slot.worker.unref();
  slot.worker.on('message', (reply: HashReply) => {
    const p = pending.get(reply.id);
    if (p === undefined) return;
    pending.delete(reply.id);
    if (--slot.inFlight === 0) slot.worker.unref();
    if ('error' in reply) p.reject(Object.assign(new Error(reply.error.message), { code: reply.error.code }));
    else p.resolve(reply);
  });
  const fail = (e: Error) => {
    slots.splice(slots.indexOf(slot), 1);
    for (const [id, p] of pending) {
      if (p.slot !== slot) continue;
      pending.delete(id);
      p.reject(e);
    }
  };
  slot.worker.on('error', fail);
  slot.worker.on('exit', (code) => fail(new Error(`the hashing worker exited (code ${code})`)));
  slots.push(slot);
  return slot;
}

/** The least busy worker, or a new one while every worker has work and a core is spare. */
function pick(): Slot {
  let best: Slot | undefined;
  for (const s of slots) if (best === undefined || s.inFlight < best.inFlight) best = s;
  if (best === undefined || (best.inFlight > 0 && slots.length < MAX_WORKERS)) return startWorker();
  return best;
}

/**
 * Hashes `length` bytes of the open file `fd` from `start` on a worker. The caller keeps `fd` open
 * until `result` settles. Only call when offThreadHashing() is true.
 */
export function hashFileRange(fd: number, algorithm: DigestAlgorithm, start: number, length: number): HashJob {
  const slot = pick();
  const id = nextId++;
  const cancel = new Int32Array(new SharedArrayBuffer(4));
  const result = new Promise<{ hex: string; bytes: number }>((resolve, reject) => pending.set(id, { resolve, reject, slot }));
  if (slot.inFlight++ === 0) slot.worker.ref();
  const req: HashRequest = { id, fd, algorithm, start, length, cancel };
  slot.worker.postMessage(req);
  return { result, cancel: () => Atomics.store(cancel, 0, 1) };
}
