/**
 * Blob uploads (distribution spec "pushing blobs"). Small blobs are read whole and go as POST then one
 * PUT. Larger ones stream: POST, one PATCH carrying the rest of the blob straight from the source (no
 * copy into chunk buffers), then a PUT without body. Two things keep that safe and resumable:
 *
 * - The last bytes of a blob are held back until the source stream has ended cleanly. A source that
 *   verifies its digest (every store's fetchBlob does) errors instead of ending on a mismatch, so the
 *   registry never receives a complete corrupt blob, the PUT is never sent, and the upload is cancelled.
 * - The most recently sent bytes stay referenced (not copied) in a replay window. When a PATCH fails
 *   mid-way, the registry is asked how far it got (`Range`), and the upload resumes from there with the
 *   bytes it lacks. A registry that lost more than the window holds, or lost the session, makes the copy
 *   engine send the blob again from the start (`restart: 'upload'`).
 *
 * A registry that refuses a large PATCH (411, 413, 416, 501: a proxy with a body-size limit, or a
 * registry without streamed uploads) gets chunks of CHUNK_SIZE, or its OCI-Chunk-Min-Length, instead,
 * for the rest of the run.
 */
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { LadingError } from '../../errors.js';
import { sizeMismatch, verifiedStream } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/types.js';
import { header } from './client.js';
import type { RegistryStore } from './registry-store.js';
import { registryError } from './registry-store.js';
import { backoffMs, isTransientError } from './retry.js';

/** Blobs up to this size are buffered and sent in one PUT (which can be retried as it is). */
export const MONOLITHIC_MAX = 8 * 1024 * 1024;
/** Chunk size for registries that refuse one large PATCH (raised to the registry's minimum when it asks for more). */
export const CHUNK_SIZE = 16 * 1024 * 1024;
/** Bytes already sent that stay referenced, so that a dropped PATCH resumes without the source. */
export const REPLAY_BYTES = 16 * 1024 * 1024;

export interface UploadOptions {
  /**
   * The stream errors instead of ending when its bytes do not match `desc` (a store's fetchBlob, seen
   * through nothing but pass-throughs): it is not hashed a second time here.
   */
  verified?: boolean;
  /** Bytes read from the source so far, as they are read. */
  onBytes?: (read: number) => void;
}

export async function uploadBlob(store: RegistryStore, desc: Descriptor, content: Readable, options: UploadOptions = {}): Promise<void> {
  const source = options.verified === true ? content : verifiedStream(content, desc, 'blob from source:');
  let location: UploadLocation | undefined;
  try {
    if (desc.size <= MONOLITHIC_MAX) {
      // Read while the upload session is being opened.
      const [started, body] = await Promise.allSettled([startUpload(store), readAll(source, desc.size)]);
      if (started.status === 'fulfilled') location = started.value;
      if (body.status === 'rejected') throw body.reason;
      if (started.status === 'rejected') throw started.reason;
      options.onBytes?.(body.value.length);
      await finish(store, desc, started.value.url, body.value);
      return;
    }
    location = await startUpload(store);
    location = await sendStream(store, desc, location, source, options.onBytes);
    await finish(store, desc, location.url, undefined);
  } catch (e) {
    source.destroy();
    if (location !== undefined) await cancel(store, location.url);
    throw e;
  }
}

interface UploadLocation {
  url: string;
  minChunk: number;
}

async function startUpload(store: RegistryStore): Promise<UploadLocation> {
  const res = await store.client.send(store.host, {
    method: 'POST',
    path: `/v2/${store.repository}/blobs/uploads/`,
    repository: store.repository,
    scopes: store.requestScopes,
    headers: { 'content-length': '0' },
    idempotent: true, // an unused upload session is harmless
  });
  const text = await res.body.text().catch(() => '');
  const url = header(res.headers, 'location');
  if (res.status !== 202 || url === undefined) {
    throw new LadingError(
      'REGISTRY',
      `${store.host} refused to start an upload to ${store.repository} (${res.status}): ${registryError(text)}`,
    );
  }
  return { url, minChunk: Number(header(res.headers, 'oci-chunk-min-length') ?? 0) || 0 };
}

/**
 * The bytes read from the source and not yet known to be safe at the registry: a list of the source's
 * own buffers (never copied) covering [start, end).
 */
class ReplayWindow {
  private readonly bufs: Buffer[] = [];
  start = 0;
  end = 0;

  push(b: Buffer): void {
    this.bufs.push(b);
    this.end += b.length;
  }

  /** The buffer pushed last. */
  get last(): Buffer | undefined {
    return this.bufs[this.bufs.length - 1];
  }

  /** Forgets bytes before `offset`, whole buffers at a time. */
  dropBefore(offset: number): void {
    for (let first = this.bufs[0]; first !== undefined && this.start + first.length <= offset; first = this.bufs[0]) {
      this.start += first.length;
      this.bufs.shift();
    }
  }

  /** Views of the bytes in [from, to), from <= to <= end, from >= start. */
  *slice(from: number, to: number): Generator<Buffer> {
    let pos = this.start;
    for (const b of this.bufs) {
      const bEnd = pos + b.length;
      if (bEnd > from && pos < to) yield b.subarray(Math.max(0, from - pos), Math.min(b.length, to - pos));
      pos = bEnd;
      if (pos >= to) return;
    }
  }
}

/** Statuses meaning "not one PATCH this large": the rest goes in chunks. */
const NO_STREAM_STATUS = new Set([411, 413, 416, 501]);

/** Sends the whole source in PATCHes, resuming after failures; returns the location to commit at. */
async function sendStream(
  store: RegistryStore,
  desc: Descriptor,
  first: UploadLocation,
  source: Readable,
  onBytes: ((n: number) => void) | undefined,
): Promise<UploadLocation> {
  const it = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const window = new ReplayWindow();
  let sourceError: unknown;
  let ended = false;
  /** Reads one buffer from the source into the window; false at its end. */
  const pull = async (): Promise<boolean> => {
    let r: IteratorResult<Buffer>;
    try {
      r = await it.next();
    } catch (e) {
      sourceError = e;
      throw e;
    }
    if (r.done) {
      ended = true;
      return false;
    }
    window.push(r.value);
    onBytes?.(window.end);
    return true;
  };
  /** The source must end exactly at desc.size; a verifying source errors here on a mismatch. */
  const confirmEnd = async (): Promise<void> => {
    if (ended) return;
    if (await pull()) throw (sourceError = sizeMismatch('blob from source:', desc.size, `more than ${desc.size}`));
  };
  /** [offset, end) of the blob: replayed from the window, then read on; the blob's last bytes wait for the source's end. */
  const body = async function* (offset: number, end: number): AsyncGenerator<Buffer> {
    let pos = offset;
    while (pos < end) {
      if (pos < window.end) {
        // Bytes read before (a resend after a failure, or the rest of a chunk that ended mid-buffer).
        const to = Math.min(end, window.end);
        if (to === desc.size) await confirmEnd();
        for (const b of window.slice(pos, to)) yield b;
        pos = to;
        continue;
      }
      if (!(await pull())) throw (sourceError = sizeMismatch('blob from source:', desc.size, window.end));
      const last = window.last as Buffer;
      const to = Math.min(end, window.end);
      if (to === desc.size) await confirmEnd();
      yield to === window.end ? last : last.subarray(0, last.length - (window.end - to));
      pos = to;
      window.dropBefore(pos - REPLAY_BYTES);
    }
  };

  let loc = first;
  let offset = 0; // bytes the registry has
  for (let failures = 0; ;) {
    const chunked = store.client.chunkedUploads.has(store.host);
    const end = chunked ? Math.min(desc.size, offset + Math.max(CHUNK_SIZE, loc.minChunk)) : desc.size;
    let refused = false;
    try {
      const res = await store.client.send(store.host, {
        method: 'PATCH',
        path: loc.url,
        repository: store.repository,
        scopes: store.requestScopes,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(end - offset),
          'content-range': `${offset}-${end - 1}`,
        },
        body: body(offset, end),
        idempotent: false,
      });
      const text = await res.body.text().catch(() => '');
      if (res.status === 202) {
        loc = { url: header(res.headers, 'location') ?? loc.url, minChunk: loc.minChunk };
        offset = end;
        window.dropBefore(offset);
        failures = 0;
        if (offset === desc.size) {
          await confirmEnd();
          return loc;
        }
        continue;
      }
      if (!chunked && NO_STREAM_STATUS.has(res.status)) {
        store.client.chunkedUploads.add(store.host);
        refused = true;
      } else if (res.status !== 416 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        throw new LadingError('REGISTRY', `${store.host} refused part of blob ${desc.digest} (${res.status}): ${registryError(text)}`);
      }
    } catch (e) {
      if (sourceError !== undefined) throw sourceError;
      if (e instanceof LadingError || !isTransientError(e)) throw e;
    }
    if (!refused) {
      if (++failures >= store.client.retry.attempts) {
        throw new LadingError('REGISTRY', `uploading blob ${desc.digest} to ${store.name} kept failing at byte ${offset}`);
      }
      await sleep(backoffMs(store.client.retry, failures));
    }
    const status = await uploadStatus(store, loc.url, desc);
    loc = { url: status.url, minChunk: loc.minChunk };
    if (status.received < window.start || status.received > window.end) {
      throw new LadingError(
        'REGISTRY',
        `${store.host} has ${status.received} bytes of the upload of blob ${desc.digest}, and the bytes from there are no longer at hand`,
        { digest: desc.digest, restart: 'upload' },
      );
    }
    offset = status.received;
    window.dropBefore(offset);
    if (offset === desc.size) {
      await confirmEnd();
      return loc;
    }
  }
}

/** Where an upload stands: the registry's `Range: 0-<last>` after GET on the upload URL. */
async function uploadStatus(store: RegistryStore, url: string, desc: Descriptor): Promise<{ url: string; received: number }> {
  const res = await store.client.send(store.host, { method: 'GET', path: url, repository: store.repository, scopes: store.requestScopes });
  await res.body.dump().catch(() => undefined);
  if (res.status !== 204 && res.status !== 200) {
    // Some registries (distribution 2.8) drop a session after a failed chunk: the copy engine restarts the blob.
    throw new LadingError(
      'REGISTRY',
      `${store.host} lost the upload session of blob ${desc.digest} to ${store.repository} (${res.status}): the blob must be sent again`,
      { digest: desc.digest, restart: 'upload' },
    );
  }
  const end = /^(?:bytes=)?0-(\d+)$/.exec(header(res.headers, 'range') ?? '')?.[1];
  // distribution writes "0-0" for an empty upload as well as for one byte; resending that one byte
  // would append it twice, which the registry's digest check on the PUT then refuses.
  const received = end === undefined || end === '0' ? 0 : Number(end) + 1;
  return { url: header(res.headers, 'location') ?? url, received };
}

async function finish(store: RegistryStore, desc: Descriptor, url: string, body: Buffer | undefined): Promise<void> {
  const target = new URL(url, 'http://placeholder');
  target.searchParams.set('digest', desc.digest);
  const path = /^https?:\/\//.test(url)
    ? new URL(`${target.pathname}${target.search}`, url).toString()
    : `${target.pathname}${target.search}`;
  const res = await store.client.send(store.host, {
    method: 'PUT',
    path,
    repository: store.repository,
    scopes: store.requestScopes,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(body?.length ?? 0) },
    ...(body !== undefined && { body }),
    idempotent: true,
  });
  const text = await res.body.text().catch(() => '');
  if (res.status === 201) return;
  // A retried PUT may find the upload already committed by the first attempt.
  if (res.status === 404 && (await store.has(desc))) return;
  throw new LadingError('REGISTRY', `${store.host} refused blob ${desc.digest} (${res.status}): ${registryError(text)}`, {
    digest: desc.digest,
  });
}

async function cancel(store: RegistryStore, url: string): Promise<void> {
  try {
    const res = await store.client.send(store.host, {
      method: 'DELETE',
      path: url,
      repository: store.repository,
      scopes: store.requestScopes,
    });
    await res.body.dump();
  } catch {
    // best effort: an abandoned upload session expires on the registry
  }
}

async function readAll(stream: Readable, size: number): Promise<Buffer> {
  const out = Buffer.allocUnsafe(size);
  let n = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    if (n + c.length > size) throw sizeMismatch('blob from source:', size, `more than ${size}`);
    c.copy(out, n);
    n += c.length;
  }
  return out.subarray(0, n);
}
