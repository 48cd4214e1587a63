/**
 * Content digests: parsing, hashing, and the one streaming verifier every byte Lading hands out passes
 * through. A verifier fails on the first byte past the expected size, and at the end on a short stream or
 * a wrong digest, so a consumer never acts on content that does not match its name.
 */
import { createHash, type Hash } from 'node:crypto';
import { pipeline, type Readable, Transform, type TransformCallback } from 'node:stream';
import { LadingError } from '../errors.js';

export type DigestAlgorithm = 'sha256' | 'sha512';

/** A validated digest such as `sha256:<64 lowercase hex>`. */
export type Digest = string & { readonly __digest: unique symbol };

const ENCODED_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
// The image-spec grammar: algorithm-component [a-z0-9]+ joined by [+._-], then ':' and [a-zA-Z0-9=_-]+.
const GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Parses and validates a digest; unknown algorithms and malformed hex are errors that name the input. */
export function parseDigest(input: string): { algorithm: DigestAlgorithm; encoded: string; digest: Digest } {
  if (!GRAMMAR.test(input)) {
    throw new LadingError('INVALID_DIGEST', `invalid digest "${clip(input)}": expected sha256:<64 hex> or sha512:<128 hex>`);
  }
  const colon = input.indexOf(':');
  const algorithm = input.slice(0, colon);
  const encoded = input.slice(colon + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new LadingError('INVALID_DIGEST', `unsupported digest algorithm "${algorithm}" in "${clip(input)}": use sha256 or sha512`);
  }
  const want = ENCODED_LENGTH[algorithm];
  if (encoded.length !== want || !/^[0-9a-f]+$/.test(encoded)) {
    throw new LadingError('INVALID_DIGEST', `invalid ${algorithm} digest "${clip(input)}": expected ${want} lowercase hex characters`);
  }
  return { algorithm, encoded, digest: input as Digest };
}

/** Validates and brands a digest string. */
export function asDigest(input: string): Digest {
  return parseDigest(input).digest;
}

export function isDigest(input: string): input is Digest {
  try {
    parseDigest(input);
    return true;
  } catch {
    return false;
  }
}

/** The digest of bytes held in memory (manifests, configs: small by construction). */
export function digestOf(bytes: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}` as Digest;
}

/** Throws DIGEST_MISMATCH/SIZE_MISMATCH unless `bytes` is exactly the content `expected` names. */
export function verifyBytes(bytes: Uint8Array, expected: { digest: string; size?: number }, what = 'content'): void {
  const { algorithm } = parseDigest(expected.digest);
  if (expected.size !== undefined && bytes.byteLength !== expected.size) {
    throw sizeMismatch(what, expected.size, bytes.byteLength);
  }
  const actual = digestOf(bytes, algorithm);
  if (actual !== expected.digest) throw digestMismatch(what, expected.digest, actual);
}

/**
 * A pass-through stream that hashes and counts what flows through it and errors, instead of ending, when
 * the content is not exactly `digest` (and `size`, when given). Errors early, on the first excess byte,
 * when the stream is longer than `size`, so a hostile source cannot make us read forever.
 *
 * `checkedElsewhere`, when given, settles once someone else has checked the same bytes (a worker
 * reading the same local file, ./verified-file.ts), rejecting if they are not the content named: the
 * stream then only counts, and at its end waits for that check instead of hashing.
 */
export class DigestVerifier extends Transform {
  private readonly hash: Hash | undefined;
  private readonly algorithm: DigestAlgorithm;
  private count = 0;

  constructor(
    readonly expectedDigest: string,
    readonly expectedSize: number | undefined,
    private readonly what = 'blob',
    private readonly checkedElsewhere?: Promise<void>,
  ) {
    super();
    this.algorithm = parseDigest(expectedDigest).algorithm;
    if (checkedElsewhere === undefined) this.hash = createHash(this.algorithm);
    else checkedElsewhere.catch(() => undefined); // a failure surfaces at the end of the stream
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.count;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.count += chunk.length;
    if (this.expectedSize !== undefined && this.count > this.expectedSize) {
      done(sizeMismatch(this.what, this.expectedSize, `more than ${this.expectedSize}`));
      return;
    }
    this.hash?.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.expectedSize !== undefined && this.count !== this.expectedSize) {
      done(sizeMismatch(this.what, this.expectedSize, this.count));
      return;
    }
    if (this.hash === undefined) {
      this.checkedElsewhere!.then(() => done(), done);
      return;
    }
    const actual = `${this.algorithm}:${this.hash.digest('hex')}`;
    done(actual === this.expectedDigest ? null : digestMismatch(this.what, this.expectedDigest, actual));
  }
}

/**
 * `source` seen through a DigestVerifier: the returned stream errors instead of ending when the content
 * is not what `expected` names. pipeline() carries errors both ways (a failing source fails the result, an
 * abandoned result releases the source) without the unhandled-error pitfalls of `.pipe()`.
 */
export function verifiedStream(source: Readable, expected: { digest: string; size?: number }, what: string): Readable {
  return pipeline(source, new DigestVerifier(expected.digest, expected.size, what), () => undefined);
}

/** Hashes a stream to completion; returns its digest and length. */
export async function digestStream(
  source: AsyncIterable<Uint8Array>,
  algorithm: DigestAlgorithm = 'sha256',
): Promise<{ digest: Digest; size: number }> {
  const hash = createHash(algorithm);
  let size = 0;
  for await (const chunk of source) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { digest: `${algorithm}:${hash.digest('hex')}` as Digest, size };
}

export function digestMismatch(what: string, expected: string, actual: string): LadingError {
  return new LadingError('DIGEST_MISMATCH', `${what} ${expected} is corrupt: its content hashes to ${actual}`, {
    expected,
    actual,
  });
}

export function sizeMismatch(what: string, expected: number, actual: number | string): LadingError {
  return new LadingError('SIZE_MISMATCH', `${what} has the wrong length: expected ${expected} bytes, got ${actual}`, {
    expected: String(expected),
    actual: String(actual),
  });
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
