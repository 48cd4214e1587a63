/**
 * Signature stores: directories of simple signatures laid out by image, read over file://, http:// and
 * https://, written on the local filesystem only.
 *
 *   lookaside (containers/image, registries.d):  <base>/<repository path>@sha256=<hex>/signature-<N>
 *   openshift (release signature stores):        <base>/sha256=<hex>/signature-<N>
 *
 * N counts from 1; readers take 1, 2, … until one is missing (404 or no such file), writers take the
 * next free N. Hand-written because the layout is two path rules; nothing on npm reads it.
 *
 * A store is untrusted: every signature read is capped at MAX_SIGNATURE_BYTES (refused early, from the
 * Content-Length or the file size, before its bytes are read), a store answering anything but 200 or 404
 * (a 500, a 403) or answering with an HTML page (a proxy's or a login page) is an error that names the
 * URL, and a repository path that could climb out of the base (`..`) is refused before any request.
 */
import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, readFile, readdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, type Dispatcher, interceptors, request } from 'undici';
import { LadingError, fsError } from '../errors.js';
import { parseDigest } from '../oci/digest.js';
import { MAX_SIGNATURE_BYTES } from './openpgp-verify.js';

export type SignatureLayout = 'lookaside' | 'openshift';

export interface SignatureStoreLocation {
  layout: SignatureLayout;
  /** A directory path, a file:// URL, or an http(s):// URL. */
  base: string;
}

/** Which image's signatures: the digest, and for the lookaside layout the repository path (`ns/name`, no host). */
export interface SignedImage {
  digest: string;
  repository?: string;
}

export interface StoredSignature {
  index: number;
  bytes: Uint8Array;
  /** The file path or URL it came from, for messages. */
  location: string;
}

export interface StoreReadOptions {
  /** Stop after this many signatures (default 64). */
  max?: number;
  /** Extra CA certificates (PEM) to trust for https stores. */
  ca?: readonly string[];
  /** false: do not verify https certificates. */
  tlsVerify?: boolean;
}

const DEFAULT_MAX = 64;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/** Checks a repository path for the lookaside layout; refuses anything that could leave the store's base. */
export function checkRepositoryPath(repository: string): string {
  const parts = repository.split('/');
  for (const p of parts) {
    if (p === '..' || p === '.' || p === '') {
      throw new LadingError(
        'UNSAFE_PATH',
        `refusing lookaside path for repository ${JSON.stringify(repository)}: it contains ${p === '' ? 'an empty component' : `"${p}"`}`,
        {
          repository,
        },
      );
    }
    if (!PATH_COMPONENT.test(p)) {
      throw new LadingError(
        'UNSAFE_PATH',
        `refusing lookaside path for repository ${JSON.stringify(repository)}: ${JSON.stringify(p)} is not a repository path component`,
        {
          repository,
        },
      );
    }
  }
  return repository;
}

/** The directory (path or URL, no trailing slash) holding `image`'s signatures in `store`. */
export function signatureDirectory(store: SignatureStoreLocation, image: SignedImage): string {
  const { algorithm, encoded } = parseDigest(image.digest);
  let leaf = `${algorithm}=${encoded}`;
  if (store.layout === 'lookaside') {
    if (image.repository === undefined) {
      throw new LadingError(
        'USAGE',
        `a lookaside store needs the image's repository, not just ${image.digest}: name the image as HOST/REPO@${image.digest}`,
      );
    }
    leaf = `${checkRepositoryPath(image.repository)}@${leaf}`;
  }
  const base = parseBase(store.base);
  if (base.kind === 'file') return join(base.path, leaf);
  const url = new URL(base.url.href);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${leaf}`;
  return url.href;
}

/** Reads signature-1, signature-2, … of `image` until one is missing. */
export async function readSignatures(
  store: SignatureStoreLocation,
  image: SignedImage,
  options: StoreReadOptions = {},
): Promise<StoredSignature[]> {
  const dir = signatureDirectory(store, image);
  const max = options.max ?? DEFAULT_MAX;
  const out: StoredSignature[] = [];
  const base = parseBase(store.base);
  const fetcher = base.kind === 'file' ? undefined : new HttpFetcher(options);
  try {
    for (let n = 1; n <= max; n++) {
      const location = base.kind === 'file' ? join(dir, `signature-${n}`) : `${dir}/signature-${n}`;
      const bytes = fetcher === undefined ? await readFileSignature(location) : await fetcher.get(location, store.base);
      if (bytes === undefined) break;
      out.push({ index: n, bytes, location });
    }
  } finally {
    await fetcher?.close();
  }
  return out;
}

/**
 * Writes `bytes` as the next free signature-N of `image` (local stores only) and returns where. Two
 * writers never take the same N: the file appears by hard link, which fails if the name exists.
 */
export async function writeSignature(store: SignatureStoreLocation, image: SignedImage, bytes: Uint8Array): Promise<StoredSignature> {
  const base = parseBase(store.base);
  if (base.kind !== 'file')
    throw new LadingError('USAGE', `cannot write signatures to ${store.base}: only local directories (or file://) are writable`);
  const dir = signatureDirectory(store, image);
  const tmp = join(dir, `.tmp-signature-${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(tmp, bytes, { mode: 0o644 });
    for (let n = 1; ; n++) {
      const path = join(dir, `signature-${n}`);
      try {
        await link(tmp, path);
        return { index: n, bytes, location: path };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
  } catch (e) {
    throw fsError(e, 'write signature in', dir);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** Reads one signature file, refusing (before reading it) anything that is not a file of signature size. */
export async function readSignatureFile(path: string): Promise<Uint8Array> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new LadingError('SIGNATURE', `signature ${path} is not a regular file`, { signature: path });
    if (info.size > MAX_SIGNATURE_BYTES) {
      throw new LadingError(
        'SIGNATURE',
        `signature ${path} is ${info.size} bytes, over the ${MAX_SIGNATURE_BYTES}-byte limit: not a signature`,
        {
          signature: path,
        },
      );
    }
    return await readFile(path);
  } catch (e) {
    throw fsError(e, 'read signature', path);
  }
}

/** TLS options for https stores: verification off, or extra CAs from a directory of *.crt files (as --cert-dir). */
export async function storeTlsOptions(options: { tlsVerify?: boolean; certDir?: string }): Promise<StoreReadOptions> {
  if (options.tlsVerify === false) return { tlsVerify: false };
  if (options.certDir === undefined) return {};
  const dir = options.certDir;
  const names = await readdir(dir).catch((e: unknown) => {
    throw fsError(e, 'read the CA directory', dir);
  });
  return { ca: await Promise.all(names.filter((n) => n.endsWith('.crt')).map((n) => readFile(join(dir, n), 'utf8'))) };
}

type Base = { kind: 'file'; path: string } | { kind: 'http'; url: URL };

function parseBase(base: string): Base {
  if (/^https?:\/\//i.test(base)) {
    let url: URL;
    try {
      url = new URL(base);
    } catch {
      throw new LadingError('USAGE', `invalid signature store URL ${JSON.stringify(base)}`);
    }
    if (url.search !== '' || url.hash !== '')
      throw new LadingError('USAGE', `signature store URL ${base} must not have a query or fragment`);
    return { kind: 'http', url };
  }
  if (/^file:/i.test(base)) return { kind: 'file', path: fileURLToPath(base) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(base)) {
    throw new LadingError('USAGE', `unsupported signature store ${JSON.stringify(base)}: use a directory, file://, http:// or https://`);
  }
  return { kind: 'file', path: resolve(base) };
}

async function readFileSignature(path: string): Promise<Uint8Array | undefined> {
  try {
    const info = await lstat(path);
    if (!info.isFile()) throw new LadingError('SIGNATURE_STORE', `${path} is not a regular file`, { path });
    if (info.size > MAX_SIGNATURE_BYTES) {
      throw new LadingError(
        'SIGNATURE_STORE',
        `signature ${path} is ${info.size} bytes, over the ${MAX_SIGNATURE_BYTES}-byte limit: not a signature`,
        { path },
      );
    }
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw fsError(e, 'read signature', path);
  }
}

/** GETs signatures over HTTP(S), following redirects, with the size cap enforced while reading. */
class HttpFetcher {
  private readonly agent: Agent;
  private readonly dispatcher: Dispatcher;

  constructor(options: StoreReadOptions) {
    this.agent = new Agent({
      connections: 4,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
      connect: options.tlsVerify === false ? { rejectUnauthorized: false } : options.ca !== undefined ? { ca: [...options.ca] } : {},
    });
    this.dispatcher = this.agent.compose(interceptors.redirect({ maxRedirections: 5 }));
  }

  async get(url: string, storeName: string): Promise<Uint8Array | undefined> {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { method: 'GET', dispatcher: this.dispatcher, headers: { 'user-agent': 'lading/0.1' } });
    } catch (e) {
      throw new LadingError(
        'SIGNATURE_STORE',
        `cannot reach signature store ${storeName} (${(e as Error).message}) for ${url}`,
        { url },
        { cause: e },
      );
    }
    if (res.statusCode === 404) {
      await res.body.dump().catch(() => undefined);
      return undefined;
    }
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined);
      throw new LadingError(
        'SIGNATURE_STORE',
        `signature store ${storeName} answered ${res.statusCode} for ${url}: check the store URL, or try again later`,
        {
          url,
          status: String(res.statusCode),
        },
      );
    }
    const type = String(res.headers['content-type'] ?? '');
    if (/text\/html|application\/xhtml/i.test(type)) {
      await res.body.dump().catch(() => undefined);
      throw htmlError(storeName, url);
    }
    const length = Number(res.headers['content-length'] ?? Number.NaN);
    if (Number.isFinite(length) && length > MAX_SIGNATURE_BYTES) {
      res.body.destroy();
      throw tooLarge(url, `${length} bytes`);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of res.body) {
      total += (chunk as Buffer).length;
      if (total > MAX_SIGNATURE_BYTES) {
        res.body.destroy();
        throw tooLarge(url, `more than ${MAX_SIGNATURE_BYTES} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    const bytes = Buffer.concat(chunks);
    if (/^\s*</.test(bytes.subarray(0, 64).toString('latin1'))) throw htmlError(storeName, url);
    return bytes;
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

function htmlError(store: string, url: string): LadingError {
  return new LadingError(
    'SIGNATURE_STORE',
    `signature store ${store} answered an HTML page for ${url}, not a signature: check the store URL (a proxy or login page?)`,
    {
      url,
    },
  );
}

function tooLarge(url: string, size: string): LadingError {
  return new LadingError('SIGNATURE_STORE', `signature ${url} is ${size}, over the ${MAX_SIGNATURE_BYTES}-byte limit: not a signature`, {
    url,
  });
}
