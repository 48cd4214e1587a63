/**
 * The "simple signing" payload of containers/image and OpenShift (containers-signature(5)): the JSON that
 * an OpenPGP signed message (or a cosign signature) wraps, naming one manifest digest and the reference
 * it was signed for:
 *
 *   {"critical":{"identity":{"docker-reference":R},"image":{"docker-manifest-digest":D},"type":T},
 *    "optional":{"creator":C,"timestamp":S}}
 *
 * Parsing is as strict as containers/image's: exactly `critical` and `optional` at the top, exactly
 * `type`, `image` and `identity` in `critical` (a consumer must refuse what it does not understand there),
 * exactly one member in `image` and in `identity`, no repeated keys anywhere, a creator that is a string
 * and a timestamp that is an integer; unknown members of `optional` are ignored, as the format says.
 * Hand-written because the format is these few rules; no npm package implements it.
 */
import { LadingError } from '../errors.js';
import { canonicalJson } from '../oci/canonical-json.js';
import { isDigest } from '../oci/digest.js';
import { parseJsonNoDuplicates } from './strict-json.js';

/** `critical.type` of an OpenPGP simple signature. */
export const ATOMIC_SIGNATURE_TYPE = 'atomic container signature';

export interface SimpleSigningPayload {
  type: string;
  /** `critical.image["docker-manifest-digest"]`: the manifest or index digest that was signed. */
  digest: string;
  /** `critical.identity["docker-reference"]`: the reference the image was signed for. */
  identity: string;
  creator?: string;
  /** Seconds since the epoch. */
  timestamp?: number;
}

/** Payloads are a few hundred bytes; refuse to parse anything absurd. */
const MAX_PAYLOAD_BYTES = 64 * 1024;

/**
 * The payload bytes for `digest` signed as `identity`: keys sorted, no whitespace, Go's escaping (the
 * bytes containers/image writes for the same fields).
 */
export function buildPayload(fields: {
  digest: string;
  identity: string;
  type?: string;
  creator?: string;
  timestamp?: number;
}): Uint8Array {
  if (!isDigest(fields.digest)) throw new LadingError('SIGNATURE', `cannot sign ${fields.digest}: not a valid digest`);
  if (fields.identity === '') throw new LadingError('SIGNATURE', `cannot sign ${fields.digest}: the identity is empty`);
  const optional: Record<string, unknown> = {};
  if (fields.creator !== undefined) optional.creator = fields.creator;
  if (fields.timestamp !== undefined) {
    if (!Number.isSafeInteger(fields.timestamp)) throw new LadingError('SIGNATURE', 'the signature timestamp must be whole seconds');
    optional.timestamp = fields.timestamp;
  }
  const payload = {
    critical: {
      identity: { 'docker-reference': fields.identity },
      image: { 'docker-manifest-digest': fields.digest },
      type: fields.type ?? ATOMIC_SIGNATURE_TYPE,
    },
    optional,
  };
  return new TextEncoder().encode(canonicalJson(payload));
}

/**
 * Parses and checks a payload whose signature has been verified. Throws LadingError('SIGNATURE') whose
 * message is the reason alone ("critical has an unknown member "x""); callers add which image and which
 * signature.
 */
export function parsePayload(bytes: Uint8Array, expectedType: string = ATOMIC_SIGNATURE_TYPE): SimpleSigningPayload {
  if (bytes.byteLength > MAX_PAYLOAD_BYTES) throw bad(`the payload is ${bytes.byteLength} bytes, over the ${MAX_PAYLOAD_BYTES}-byte limit`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw bad('the payload is not UTF-8 text');
  }
  let doc: unknown;
  try {
    doc = parseJsonNoDuplicates(text);
  } catch (e) {
    throw bad(`the payload is not valid JSON (${(e as Error).message})`);
  }
  const top = exactObject(doc, 'the payload', ['critical', 'optional']);
  const critical = exactObject(top.critical, 'critical', ['type', 'image', 'identity']);
  if (typeof critical.type !== 'string') throw bad('critical.type is not a string');
  if (critical.type !== expectedType) {
    throw bad(`critical.type is ${JSON.stringify(critical.type)}, expected ${JSON.stringify(expectedType)}`);
  }
  const image = exactObject(critical.image, 'critical.image', ['docker-manifest-digest']);
  const digest = image['docker-manifest-digest'];
  if (typeof digest !== 'string') throw bad('critical.image.docker-manifest-digest is not a string');
  if (!isDigest(digest)) throw bad(`critical.image.docker-manifest-digest ${JSON.stringify(digest.slice(0, 80))} is not a valid digest`);
  const identity = exactObject(critical.identity, 'critical.identity', ['docker-reference']);
  const reference = identity['docker-reference'];
  if (typeof reference !== 'string') throw bad('critical.identity.docker-reference is not a string');
  if (reference === '') throw bad('critical.identity.docker-reference is empty');

  const optional = top.optional;
  if (!isPlainObject(optional)) throw bad('optional is not an object');
  const result: SimpleSigningPayload = { type: critical.type, digest, identity: reference };
  if (Object.hasOwn(optional, 'creator')) {
    if (typeof optional.creator !== 'string') throw bad('optional.creator is not a string');
    result.creator = optional.creator;
  }
  if (Object.hasOwn(optional, 'timestamp')) {
    if (typeof optional.timestamp !== 'number' || !Number.isSafeInteger(optional.timestamp)) {
      throw bad('optional.timestamp is not an integer');
    }
    result.timestamp = optional.timestamp;
  }
  return result;
}

/** An object with exactly the members `names`: a missing one and an unknown one are both refused. */
function exactObject(value: unknown, what: string, names: readonly string[]): Record<string, unknown> {
  if (!isPlainObject(value)) throw bad(`${what} is not an object`);
  for (const key of Object.keys(value)) {
    if (!names.includes(key)) throw bad(`${what} has an unknown member ${JSON.stringify(key.slice(0, 80))}`);
  }
  for (const name of names) if (!Object.hasOwn(value, name)) throw bad(`${what} has no ${JSON.stringify(name)} member`);
  return value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(reason: string): LadingError {
  return new LadingError('SIGNATURE', reason);
}
