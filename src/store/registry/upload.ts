/**
 * Blob uploads (distribution spec "pushing blobs"). Small blobs go as POST then one PUT. Larger ones go
 * as ordered PATCH chunks (at least the registry's OCI-Chunk-Min-Length), each held in memory only while
 * it is in flight, so a dropped connection resends one chunk from where the registry says it stopped,
 * not the whole blob. The closing PUT is sent only after the local digest verifier has passed, and a
 * failed upload is cancelled, so a registry never receives a blob that does not match its digest.
 */
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { LadingError } from '../../errors.js';
import { verifiedStream } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/types.js';
import { header } from './client.js';
import type { RegistryStore } from './registry-store.js';
import { registryError } from './registry-store.js';
import { backoffMs, isTransientError } from './retry.js';

/** Blobs up to this size are buffered and sent in one PUT; larger ones are chunked. */
export const MONOLITHIC_MAX = 8 * 1024 * 1024;
/** Chunk size for chunked uploads (raised to the registry's minimum when it asks for more). */
export const CHUNK_SIZE = 16 * 1024 * 1024;

export async function uploadBlob(store: RegistryStore, desc: Descriptor, content: Readable): Promise<void> {
  const verified = verifiedStream(content, desc, 'blob from source:');
  let location = await startUpload(store);
  try {
    if (desc.size <= MONOLITHIC_MAX) {
      const body = await readAll(verified, desc.size);
      await finish(store, desc, location.url, body);
      return;
    }
    let offset = 0;
    for await (const chunk of chunks(verified, Math.max(CHUNK_SIZE, location.minChunk))) {
      location = await sendChunk(store, desc, location, chunk, offset);
      offset += chunk.length;
    }
    // The verifier has ended without error: every byte matched. Only now may the upload be committed.
    await finish(store, desc, location.url, undefined);
  } catch (e) {
    verified.destroy();
    await cancel(store, location.url);
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

/** PATCHes one chunk; on a dropped connection asks the registry how far it got and resends the rest. */
async function sendChunk(
  store: RegistryStore,
  desc: Descriptor,
  loc: UploadLocation,
  chunk: Buffer,
  offset: number,
): Promise<UploadLocation> {
  let sent = 0; // bytes of this chunk the registry has confirmed
  let url = loc.url;
  for (let failures = 0; ;) {
    const part = chunk.subarray(sent);
    try {
      const res = await store.client.send(store.host, {
        method: 'PATCH',
        path: url,
        repository: store.repository,
        scopes: store.requestScopes,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(part.length),
          'content-range': `${offset + sent}-${offset + chunk.length - 1}`,
        },
        body: part,
        idempotent: false,
      });
      const text = await res.body.text().catch(() => '');
      if (res.status === 202) return { url: header(res.headers, 'location') ?? url, minChunk: loc.minChunk };
      if (res.status !== 416 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        throw new LadingError('REGISTRY', `${store.host} refused part of blob ${desc.digest} (${res.status}): ${registryError(text)}`);
      }
    } catch (e) {
      if (e instanceof LadingError || !isTransientError(e)) throw e;
    }
    if (++failures >= store.client.retry.attempts) {
      throw new LadingError('REGISTRY', `uploading blob ${desc.digest} to ${store.name} kept failing at byte ${offset + sent}`);
    }
    await sleep(backoffMs(store.client.retry, failures));
    const status = await uploadStatus(store, url, desc);
    url = status.url;
    if (status.received < offset) {
      throw new LadingError(
        'REGISTRY',
        `${store.host} lost part of the upload of blob ${desc.digest} (it has ${status.received} of ${offset} bytes sent)`,
        {
          digest: desc.digest,
          restart: 'upload',
        },
      );
    }
    sent = Math.min(chunk.length, status.received - offset);
    if (sent === chunk.length) return { url, minChunk: loc.minChunk };
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
  // distribution writes "0-0" for an empty upload as well as for one byte; chunks are never one byte.
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
    c.copy(out, n);
    n += c.length;
  }
  return out.subarray(0, n);
}

/** Re-slices a stream into buffers of exactly `size` bytes (the last one shorter). */
async function* chunks(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let buf = Buffer.allocUnsafe(size);
  let n = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    let pos = 0;
    while (pos < c.length) {
      const take = Math.min(size - n, c.length - pos);
      c.copy(buf, n, pos, pos + take);
      n += take;
      pos += take;
      if (n === size) {
        yield buf;
        buf = Buffer.allocUnsafe(size);
        n = 0;
      }
    }
  }
  if (n > 0) yield buf.subarray(0, n);
}
