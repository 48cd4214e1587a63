/**
 * The payload a cosign signature signs: "simple signing" JSON with the type `cosign container image
 * signature` (sigstore/sigstore `pkg/signature/payload`). Written byte for byte as cosign writes it (Go's
 * encoding/json: `critical` with `identity`, `image`, `type` in that order, then `optional`, `null` when
 * there are no annotations), and read with the rules containers/image applies to `sigstoreSigned`
 * signatures (`signature/internal/sigstore_payload.go`): exactly the members `critical` and `optional`;
 * exactly `type`, `image`, `identity` in `critical`, and exactly one member in each of the latter two;
 * `optional` null or an object whose `creator` is a string and `timestamp` an integer; no duplicate keys.
 */
import { LadingError } from '../../errors.js';
import { canonicalJsonBytes } from '../../oci/canonical-json.js';
import { type Digest, parseDigest } from '../../oci/digest.js';
import { parseImageReference } from '../../oci/reference.js';
import { parseJsonNoDuplicates } from '../strict-json.js';

export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';

/** What a verified payload says. */
export interface CosignPayloadClaims {
  /** `critical.identity.docker-reference`: the repository (or reference) the signer named. */
  dockerReference: string;
  /** `critical.image.docker-manifest-digest`. */
  digest: Digest;
  /** `optional`, as signed (null when cosign signed no annotations). */
  optional: Record<string, unknown> | null;
  creator?: string;
  timestamp?: number;
}

/**
 * The payload cosign would sign for `digest` under `identity`. `annotations` become `optional` (cosign's
 * `-a key=value`); `creator` must be a string and `timestamp` an integer, or containers/image would refuse
 * the signature. Go's encoding/json and Lading's canonical JSON agree here: struct fields are already in
 * alphabetical order, map keys are sorted, and both escape `<`, `>`, `&` the same way.
 */
export function cosignPayload(identity: string, digest: string, annotations?: Readonly<Record<string, unknown>>): Uint8Array {
  parseDigest(digest);
  parseImageReference(identity); // containers/image refuses a docker-reference that does not parse
  const optional = annotations !== undefined && Object.keys(annotations).length > 0 ? { ...annotations } : null;
  if (optional !== null) {
    if (Object.hasOwn(optional, 'creator') && typeof optional.creator !== 'string') {
      throw new LadingError('USAGE', 'the cosign payload annotation "creator" must be a string');
    }
    if (Object.hasOwn(optional, 'timestamp') && !Number.isSafeInteger(optional.timestamp)) {
      throw new LadingError('USAGE', 'the cosign payload annotation "timestamp" must be an integer (seconds since the epoch)');
    }
  }
  return canonicalJsonBytes({
    critical: { identity: { 'docker-reference': identity }, image: { 'docker-manifest-digest': digest }, type: COSIGN_SIGNATURE_TYPE },
    optional,
  });
}

/**
 * Reads a payload with containers/image's rules. Throws LadingError('SIGNATURE') whose message is the
 * reason alone (the caller says which image and signature).
 */
export function parseCosignPayload(bytes: Uint8Array): CosignPayloadClaims {
  let doc: unknown;
  try {
    doc = parseJsonNoDuplicates(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw invalid(`the payload is not valid JSON (${(e as Error).message})`);
  }
  const top = exactObject(doc, ['critical', 'optional'], 'the payload');
  const critical = exactObject(top.critical, ['type', 'image', 'identity'], 'critical');
  if (typeof critical.type !== 'string') throw invalid('critical.type is not a string');
  if (critical.type !== COSIGN_SIGNATURE_TYPE) {
    throw invalid(`unrecognized signature type ${JSON.stringify(critical.type)} (expected "${COSIGN_SIGNATURE_TYPE}")`);
  }
  const image = exactObject(critical.image, ['docker-manifest-digest'], 'critical.image');
  const identity = exactObject(critical.identity, ['docker-reference'], 'critical.identity');
  const digest = image['docker-manifest-digest'];
  const reference = identity['docker-reference'];
  if (typeof digest !== 'string') throw invalid('critical.image.docker-manifest-digest is not a string');
  if (typeof reference !== 'string') throw invalid('critical.identity.docker-reference is not a string');
  let parsedDigest: Digest;
  try {
    parsedDigest = parseDigest(digest).digest;
  } catch (e) {
    throw invalid(`critical.image.docker-manifest-digest: ${(e as Error).message}`);
  }
  try {
    parseImageReference(reference);
  } catch (e) {
    throw invalid(`critical.identity.docker-reference: ${(e as Error).message}`);
  }

  const claims: CosignPayloadClaims = { dockerReference: reference, digest: parsedDigest, optional: null };
  if (top.optional !== null) {
    const optional = top.optional;
    if (typeof optional !== 'object' || Array.isArray(optional)) throw invalid('optional is neither null nor an object');
    const o = optional as Record<string, unknown>;
    claims.optional = o;
    if (Object.hasOwn(o, 'creator')) {
      if (typeof o.creator !== 'string') throw invalid('optional.creator is not a string');
      claims.creator = o.creator;
    }
    if (Object.hasOwn(o, 'timestamp')) {
      if (typeof o.timestamp !== 'number') throw invalid('optional.timestamp is not a number');
      if (!Number.isInteger(o.timestamp)) throw invalid('optional.timestamp is not an integer');
      claims.timestamp = o.timestamp;
    }
  }
  return claims;
}

/** `v` must be a JSON object with exactly `fields` (all present, nothing else). */
function exactObject(v: unknown, fields: readonly string[], what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`${what} is not a JSON object`);
  const o = v as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!fields.includes(key)) throw invalid(`${what} has the unknown field ${JSON.stringify(key)}`);
  }
  for (const f of fields) if (!Object.hasOwn(o, f)) throw invalid(`${what} lacks the field "${f}"`);
  return o;
}

function invalid(reason: string): LadingError {
  return new LadingError('SIGNATURE', reason);
}
