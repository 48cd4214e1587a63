/**
 * `docker://HOST/REPO`: one repository of a registry, behind the same Store interface as a layout.
 * Speaks the OCI distribution spec: manifests by tag and digest (Docker-Content-Digest checked), blobs
 * with Range resume, uploads (upload.ts), mounts, paginated tags, referrers with the tag-schema fallback.
 * Every byte it hands out has been checked against its digest.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { LadingError } from '../../errors.js';
import { type Digest, digestOf, isDigest, parseDigest, verifiedStream, verifyBytes } from '../../oci/digest.js';
import { canonicalJsonBytes } from '../../oci/canonical-json.js';
import { MediaType, isManifestMediaType } from '../../oci/media-types.js';
import type { Descriptor, ImageIndex } from '../../oci/types.js';
import { MAX_MANIFEST_BYTES } from '../../oci/types.js';
import type { Store } from '../store.js';
import { repositoryScope } from './challenge.js';
import { type RegistryClient, type RegistryResponse, header } from './client.js';
import { backoffMs, isTransientError } from './retry.js';
import { type UploadOptions, uploadBlob } from './upload.js';

export const MANIFEST_ACCEPT = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList].join(
  ', ',
);

/** Tag lists are paged; refuse to collect more than this many (a hostile or broken registry). */
const MAX_TAGS = 1_000_000;

export class RegistryStore implements Store {
  readonly name: string;
  readonly host: string;
  private readonly scopes: string[];
  private tagCache: Promise<Set<string>> | undefined;

  constructor(
    readonly client: RegistryClient,
    readonly domain: string,
    readonly repository: string,
    access: 'pull' | 'push',
    /** Close the client with the store (when the store was opened without a shared client). */
    private readonly ownsClient = false,
  ) {
    this.host = clientHost(domain);
    this.name = `docker://${domain}/${repository}`;
    this.scopes = [repositoryScope(repository, access === 'push' ? ['pull', 'push'] : ['pull'])];
  }

  async resolve(ref: string | undefined): Promise<Descriptor> {
    const reference = ref ?? 'latest';
    const res = await this.request('HEAD', `manifests/${reference}`, { accept: MANIFEST_ACCEPT });
    if (res.status === 404) throw new LadingError('NOT_FOUND', `${this.refName(reference)} not found: manifest unknown`);
    this.expectOk(res, `resolve ${this.refName(reference)}`);
    const mediaType = header(res.headers, 'content-type')?.split(';')[0]?.trim();
    const digest = header(res.headers, 'docker-content-digest');
    const length = Number(header(res.headers, 'content-length'));
    if (mediaType && isManifestMediaType(mediaType) && digest && isDigest(digest) && Number.isSafeInteger(length)) {
      if (isDigest(reference) && digest !== reference) throw this.lyingDigest(reference, digest);
      return { mediaType, digest: digest as Digest, size: length };
    }
    // The registry left something out of its HEAD answer: read the manifest and work it out.
    const got = await this.getManifest(reference);
    const actual = digestOf(got.bytes, isDigest(reference) ? parseDigest(reference).algorithm : 'sha256');
    if (isDigest(reference) && actual !== reference) throw this.lyingDigest(reference, actual);
    return { mediaType: got.mediaType, digest: actual, size: got.bytes.byteLength };
  }

  async fetchManifest(desc: Descriptor): Promise<Uint8Array> {
    if (desc.size > MAX_MANIFEST_BYTES) throw tooLarge(this.refName(desc.digest), desc.size);
    const { bytes, headerDigest } = await this.getManifest(desc.digest);
    if (headerDigest !== undefined && headerDigest !== desc.digest) throw this.lyingDigest(desc.digest, headerDigest);
    verifyBytes(bytes, desc, `manifest from ${this.name}:`);
    return bytes;
  }

  /**
   * The blob's bytes, verified. A connection that drops mid-blob is resumed with a Range request from
   * the last byte received, as often as the retry policy allows, so a flaky link costs time, not the run.
   */
  async fetchBlob(desc: Descriptor): Promise<Readable> {
    const first = await this.openBlob(desc, 0);
    const chunks = async function* (this: RegistryStore): AsyncGenerator<Buffer> {
      let res: RegistryResponse | undefined = first;
      let offset = 0;
      let failures = 0;
      while (offset < desc.size || res !== undefined) {
        try {
          res ??= await this.openBlob(desc, offset);
          const skip = offset > 0 && res.status === 200 ? offset : 0; // the server ignored our Range
          let skipped = 0;
          for await (const chunk of res.body as AsyncIterable<Buffer>) {
            let c = chunk;
            if (skipped < skip) {
              const drop = Math.min(skip - skipped, c.length);
              skipped += drop;
              c = c.subarray(drop);
              if (c.length === 0) continue;
            }
            offset += c.length;
            yield c;
          }
          res = undefined;
          if (offset >= desc.size) return;
          failures++; // a clean end before the last byte: ask again for the rest
        } catch (e) {
          res = undefined;
          if (!isTransientError(e) || ++failures >= this.client.retry.attempts) throw this.transferError(desc, offset, e);
        }
        if (failures >= this.client.retry.attempts) throw this.transferError(desc, offset, undefined);
        await sleep(backoffMs(this.client.retry, failures));
      }
    }.call(this);
    return verifiedStream(Readable.from(chunks, { objectMode: false }), desc, `blob from ${this.name}:`);
  }

  async has(desc: Descriptor): Promise<boolean> {
    const kind = isManifestMediaType(desc.mediaType) ? 'manifests' : 'blobs';
    const res = await this.request('HEAD', `${kind}/${desc.digest}`, kind === 'manifests' ? { accept: MANIFEST_ACCEPT } : {});
    if (res.status === 404) return false;
    this.expectOk(res, `check ${desc.digest}`);
    const length = header(res.headers, 'content-length');
    return length === undefined || Number(length) === desc.size;
  }

  /** Uploads a blob; see upload.ts for `options` (a source already verifying its digest is not hashed twice). */
  async pushBlob(desc: Descriptor, content: Readable, options?: UploadOptions): Promise<void> {
    await uploadBlob(this, desc, content, options);
  }

  /** Cross-repository mount within this registry; true when the registry mounted it. */
  async mountBlob(desc: Descriptor, fromRepository: string): Promise<boolean> {
    const scopes = [...this.scopes, repositoryScope(fromRepository, ['pull'])];
    const query = `?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(fromRepository)}`;
    const res = await this.client.send(this.host, {
      method: 'POST',
      path: `/v2/${this.repository}/blobs/uploads/${query}`,
      repository: this.repository,
      scopes,
      headers: { 'content-length': '0' },
      idempotent: true,
    });
    await res.body.dump().catch(() => undefined);
    if (res.status === 201) return true;
    // 202: the registry started an upload instead of mounting; cancel it so it does not linger.
    const location = header(res.headers, 'location');
    if (res.status === 202 && location !== undefined) {
      const del = await this.client.send(this.host, { method: 'DELETE', path: location, repository: this.repository, scopes: this.scopes });
      await del.body.dump().catch(() => undefined);
    }
    return false;
  }

  async pushManifest(desc: Descriptor, bytes: Uint8Array, options: { tags?: readonly string[]; root?: boolean } = {}): Promise<void> {
    verifyBytes(bytes, desc, 'manifest');
    const targets = options.tags?.length ? options.tags : [desc.digest];
    if (options.tags?.length) this.tagCache = undefined;
    let subjectHandled = false;
    for (const target of targets) {
      const res = await this.request('PUT', `manifests/${target}`, { 'content-type': desc.mediaType }, Buffer.from(bytes), true);
      const text = await res.body.text().catch(() => '');
      if (res.status === 413) throw tooLarge(this.refName(target), bytes.byteLength);
      if (res.status !== 201 && res.status !== 200) {
        throw new LadingError('REGISTRY', `${this.host} refused manifest ${this.refName(target)} (${res.status}): ${registryError(text)}`, {
          registry: this.host,
        });
      }
      const digest = header(res.headers, 'docker-content-digest');
      if (digest !== undefined && digest !== desc.digest) throw this.lyingDigest(desc.digest, digest);
      subjectHandled ||= header(res.headers, 'oci-subject') !== undefined;
    }
    const referrer = referrerEntry(desc, bytes);
    if (referrer !== undefined && !subjectHandled) await this.addToReferrersTag(referrer.subject, referrer.entry);
  }

  /**
   * For a registry without the referrers API: adds `entry` to the `sha256-<hex>` index of its subject,
   * with a conditional PUT (If-Match on the ETag) so concurrent writers do not drop each other's entries.
   */
  private async addToReferrersTag(subject: string, entry: Descriptor): Promise<void> {
    const tag = referrersTag(subject);
    for (let attempt = 0; attempt < 5; attempt++) {
      const res = await this.request('GET', `manifests/${tag}`, { accept: MediaType.ociIndex });
      let index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
      const etag = header(res.headers, 'etag');
      if (res.status === 200) index = (await res.body.json()) as ImageIndex;
      else {
        await res.body.dump().catch(() => undefined);
        if (res.status !== 404) this.expectOk(res, `read referrers tag ${tag}`);
      }
      if (index.manifests.some((m) => m.digest === entry.digest)) return;
      const next = canonicalJsonBytes({ ...index, manifests: [...index.manifests, entry] });
      const headers: Record<string, string> = { 'content-type': MediaType.ociIndex };
      if (etag !== undefined) headers['if-match'] = etag;
      const put = await this.request('PUT', `manifests/${tag}`, headers, Buffer.from(next), true);
      await put.body.dump().catch(() => undefined);
      if (put.status === 201 || put.status === 200) {
        // The tag may be new: a cached tag list read before this PUT would say it does not exist.
        this.tagCache = this.tagCache?.then((tags) => tags.add(tag));
        return;
      }
      if (put.status !== 412) this.expectOk(put, `update referrers tag ${tag}`);
    }
    throw new LadingError('REGISTRY', `${this.name}: the referrers tag ${tag} kept changing under us; try again`);
  }

  async tags(): Promise<string[]> {
    const tags: string[] = [];
    let path: string | undefined = `/v2/${this.repository}/tags/list?n=1000`;
    while (path !== undefined) {
      const res = await this.client.send(this.host, { method: 'GET', path, repository: this.repository, scopes: this.scopes });
      if (res.status === 404) {
        await res.body.dump();
        return [];
      }
      this.expectOk(res, 'list tags');
      const body = (await res.body.json()) as { tags?: unknown };
      if (body.tags !== null && body.tags !== undefined && !Array.isArray(body.tags)) {
        throw new LadingError('REGISTRY', `${this.host} sent a malformed tag list for ${this.repository}`);
      }
      for (const t of (body.tags as unknown[] | null | undefined) ?? []) if (typeof t === 'string') tags.push(t);
      if (tags.length > MAX_TAGS) throw new LadingError('REGISTRY', `${this.name} lists more than ${MAX_TAGS} tags: refusing to read on`);
      path = nextLink(header(res.headers, 'link'));
    }
    return [...new Set(tags)].sort();
  }

  /**
   * Manifests that name `desc` as their subject: the referrers API, or, where the registry has none
   * (404), the `sha256-<hex>` tag schema index, as the distribution spec says clients must fall back to.
   */
  async referrers(desc: Descriptor): Promise<Descriptor[]> {
    // While the first question to this registry is open, the others wait for what it learns.
    for (let probe = this.client.referrersProbes.get(this.host); probe !== undefined; probe = this.client.referrersProbes.get(this.host)) {
      await probe.catch(() => undefined);
    }
    if (this.client.referrersApi.get(this.host) !== false) {
      const ask = this.referrersFromApi(desc);
      if (!this.client.referrersApi.has(this.host)) {
        const probe = ask.finally(() => this.client.referrersProbes.delete(this.host));
        probe.catch(() => undefined); // its failure is this call's to report
        this.client.referrersProbes.set(this.host, probe);
      }
      const found = await ask;
      if (found !== undefined) return found;
    }
    // The tag schema: one tag list per repository and run tells which subjects have a referrers index.
    const tag = referrersTag(desc.digest);
    if (!(await this.cachedTags()).has(tag)) return [];
    const index = await this.resolve(tag);
    const parsed = JSON.parse(Buffer.from(await this.fetchManifest(index)).toString('utf8')) as ImageIndex;
    return Array.isArray(parsed.manifests) ? parsed.manifests : [];
  }

  /** The referrers API's answer, or undefined when this registry has no such API (learned once per run). */
  private async referrersFromApi(desc: Descriptor): Promise<Descriptor[] | undefined> {
    const res = await this.request('GET', `referrers/${desc.digest}`, { accept: MediaType.ociIndex });
    if (res.status === 200 && header(res.headers, 'content-type')?.startsWith(MediaType.ociIndex)) {
      this.client.referrersApi.set(this.host, true);
      const index = (await res.body.json()) as ImageIndex;
      return Array.isArray(index.manifests) ? index.manifests : [];
    }
    await res.body.dump().catch(() => undefined);
    if (![200, 400, 404, 405].includes(res.status)) this.expectOk(res, 'list referrers');
    // A registry without the API answers so for every subject: ask it once per run, not per image.
    if (res.status !== 404 || this.client.referrersApi.get(this.host) === undefined) this.client.referrersApi.set(this.host, false);
    return undefined;
  }

  /** The repository's tags, read once per store (a store lives for one run). */
  cachedTags(): Promise<Set<string>> {
    this.tagCache ??= this.tags().then((t) => new Set(t));
    return this.tagCache;
  }

  async deleteManifest(digest: string): Promise<void> {
    const res = await this.request('DELETE', `manifests/${digest}`, {}, undefined, true);
    await res.body.dump().catch(() => undefined);
    if (res.status !== 202 && res.status !== 200 && res.status !== 404) this.expectOk(res, `delete ${digest}`);
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.client.close();
  }

  async abort(): Promise<void> {
    await this.close();
  }

  /** One request on this repository's API path (`/v2/<repo>/<rest>`), with this store's scopes. */
  request(
    method: 'GET' | 'HEAD' | 'PUT' | 'DELETE',
    rest: string,
    headers: Record<string, string> = {},
    body?: Buffer,
    idempotent?: boolean,
  ) {
    return this.client.send(this.host, {
      method,
      path: `/v2/${this.repository}/${rest}`,
      repository: this.repository,
      scopes: this.scopes,
      headers,
      ...(body !== undefined && { body }),
      ...(idempotent !== undefined && { idempotent }),
    });
  }

  /** Scopes for requests this store makes (used by upload.ts). */
  get requestScopes(): readonly string[] {
    return this.scopes;
  }

  refName(reference: string): string {
    return `${this.domain}/${this.repository}${isDigest(reference) ? '@' : ':'}${reference}`;
  }

  expectOk(res: RegistryResponse, what: string): void {
    if (res.status >= 200 && res.status < 300) return;
    throw new LadingError('REGISTRY', `${this.host} answered ${res.status} when asked to ${what} in ${this.repository}`, {
      registry: this.host,
      status: String(res.status),
    });
  }

  private async getManifest(reference: string): Promise<{ bytes: Uint8Array; mediaType: string; headerDigest: string | undefined }> {
    const res = await this.request('GET', `manifests/${reference}`, { accept: MANIFEST_ACCEPT });
    if (res.status === 404) {
      await res.body.dump().catch(() => undefined);
      throw new LadingError('NOT_FOUND', `${this.refName(reference)} not found: manifest unknown`);
    }
    this.expectOk(res, `read manifest ${reference}`);
    const declared = Number(header(res.headers, 'content-length') ?? '0');
    if (declared > MAX_MANIFEST_BYTES) {
      res.body.destroy();
      throw tooLarge(this.refName(reference), declared);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > MAX_MANIFEST_BYTES) {
        res.body.destroy();
        throw tooLarge(this.refName(reference), total);
      }
      chunks.push(chunk);
    }
    const mediaType = header(res.headers, 'content-type')?.split(';')[0]?.trim() ?? '';
    return { bytes: Buffer.concat(chunks), mediaType, headerDigest: header(res.headers, 'docker-content-digest') };
  }

  private async openBlob(desc: Descriptor, offset: number): Promise<RegistryResponse> {
    const res = await this.request('GET', `blobs/${desc.digest}`, offset > 0 ? { range: `bytes=${offset}-` } : {});
    if (res.status === 404) {
      await res.body.dump().catch(() => undefined);
      throw new LadingError('BLOB_UNKNOWN', `blob ${desc.digest} is missing from ${this.name}`, { digest: desc.digest });
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body.dump().catch(() => undefined);
      this.expectOk(res, `read blob ${desc.digest}`);
    }
    const length = header(res.headers, 'content-length');
    const expected = res.status === 206 ? desc.size - offset : desc.size;
    if (length !== undefined && Number(length) > expected) {
      res.body.destroy();
      throw new LadingError(
        'SIZE_MISMATCH',
        `${this.host} says blob ${desc.digest} is ${length} bytes, but it is ${desc.size}: refusing it`,
        {
          digest: desc.digest,
        },
      );
    }
    if (res.status === 206) {
      const start = /bytes (\d+)-/.exec(header(res.headers, 'content-range') ?? '')?.[1];
      if (start !== undefined && Number(start) !== offset) {
        res.body.destroy();
        throw new LadingError('REGISTRY', `${this.host} resumed blob ${desc.digest} at byte ${start}, not ${offset}`);
      }
    }
    return res;
  }

  private transferError(desc: Descriptor, offset: number, cause: unknown): unknown {
    if (cause instanceof LadingError) return cause;
    const why = cause instanceof Error ? cause.message : 'the connection kept ending early';
    return new LadingError('REGISTRY', `reading blob ${desc.digest} from ${this.name} failed at byte ${offset} of ${desc.size}: ${why}`, {
      digest: desc.digest,
    });
  }

  private lyingDigest(expected: string, said: string): LadingError {
    return new LadingError('DIGEST_MISMATCH', `${this.host} sent ${said} for ${this.refName(expected)}: the registry is lying or corrupt`, {
      expected,
      actual: said,
    });
  }
}

/** For a manifest with a subject: the entry the referrers list gets for it. */
function referrerEntry(desc: Descriptor, bytes: Uint8Array): { subject: string; entry: Descriptor } | undefined {
  let m: { subject?: { digest?: unknown }; artifactType?: string; config?: { mediaType?: string }; annotations?: Record<string, string> };
  try {
    m = JSON.parse(Buffer.from(bytes).toString('utf8')) as typeof m;
  } catch {
    return undefined;
  }
  if (typeof m.subject?.digest !== 'string' || !isDigest(m.subject.digest)) return undefined;
  const artifactType = m.artifactType ?? m.config?.mediaType;
  const entry: Descriptor = {
    mediaType: desc.mediaType,
    digest: desc.digest,
    size: desc.size,
    ...(artifactType !== undefined && { artifactType }),
    ...(m.annotations !== undefined && { annotations: m.annotations }),
  };
  return { subject: m.subject.digest, entry };
}

/** The tag-schema name for the referrers of `digest`: `<alg>-<hex>`. */
export function referrersTag(digest: string): string {
  const { algorithm, encoded } = parseDigest(digest);
  return `${algorithm.slice(0, 32)}-${encoded.slice(0, 64)}`;
}

function clientHost(domain: string): string {
  return domain === 'docker.io' ? 'registry-1.docker.io' : domain;
}

function tooLarge(ref: string, size: number): LadingError {
  return new LadingError('MANIFEST_TOO_LARGE', `manifest ${ref} is ${size} bytes, over the 4 MiB limit`);
}

/** The `next` URL of an RFC 5988 Link header. */
function nextLink(link: string | undefined): string | undefined {
  const m = link === undefined ? null : /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
  return m?.[1];
}

/** The first message of a distribution-spec error body, or the raw text clipped. */
export function registryError(text: string): string {
  try {
    const body = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    const e = body.errors?.[0];
    if (e) return `${e.code ?? 'ERROR'}: ${e.message ?? ''}`.trim();
  } catch {
    // not JSON
  }
  return text.slice(0, 200).replace(/\s+/g, ' ').trim() || '(no details)';
}
