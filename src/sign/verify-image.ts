/**
 * Verifying an image's simple signatures: each signature must be a signed message vouched for by the
 * keyrings (openpgp-verify.ts), its payload must parse strictly (simple-signing.ts), name exactly the
 * image's digest, and name an identity the rule accepts (identity.ts). Signatures that fail are
 * reported with their reason; the verdict is about the set:
 *
 * - keyrings 'all' (the cluster-version-operator's rule, and Lading's default with several --keyring):
 *   every keyring must vouch for at least one accepted signature;
 * - keyrings 'any' (a containers-policy.json `signedBy` with several keyPaths): one accepted signature
 *   by any of their keys is enough.
 */
import { LadingError } from '../errors.js';
import type { ImageReference } from '../oci/reference.js';
import { type IdentityVerdict, type SignedIdentity, identityMatches } from './identity.js';
import type { Keyring } from './keyring.js';
import { type SignerInfo, verifySignedMessage } from './openpgp-verify.js';
import { ATOMIC_SIGNATURE_TYPE, type SimpleSigningPayload, parsePayload } from './simple-signing.js';

export interface SignatureInput {
  /** What to call it in messages: a file path, a URL, `signature-2`. */
  name: string;
  bytes: Uint8Array;
}

export interface SimpleVerifyRequest {
  /** What to call the image in messages. */
  image: string;
  digest: string;
  /** The reference the image was asked for by; undefined when only the digest is known. */
  intended?: ImageReference | undefined;
  identity: SignedIdentity;
  keyrings: readonly Keyring[];
  keyringRule?: 'all' | 'any';
  signatures: readonly SignatureInput[];
  /** Where the signatures were looked for, for the "none found" message. */
  from?: string;
  now?: Date;
}

export interface AcceptedSignature {
  name: string;
  payload: SimpleSigningPayload;
  signers: SignerInfo[];
}

export interface SimpleVerifyResult {
  image: string;
  digest: string;
  accepted: AcceptedSignature[];
  rejected: { name: string; reason: string }[];
  /** Keyrings that vouch for at least one accepted signature. */
  keyrings: string[];
  /** Whether the request's rule is met. */
  satisfied: boolean;
}

/** Checks every signature; never throws for a bad signature (see `rejected`). */
export async function checkSimpleSignatures(req: SimpleVerifyRequest): Promise<SimpleVerifyResult> {
  const accepted: AcceptedSignature[] = [];
  const rejected: { name: string; reason: string }[] = [];
  for (const sig of req.signatures) {
    const verdict = await checkOne(req, sig);
    if ('reason' in verdict) rejected.push({ name: sig.name, reason: verdict.reason });
    else accepted.push(verdict);
  }
  const keyrings = [...new Set(accepted.flatMap((a) => a.signers.map((s) => s.keyring)))];
  const satisfied =
    (req.keyringRule ?? 'all') === 'all'
      ? accepted.length > 0 && req.keyrings.every((k) => keyrings.includes(k.name))
      : accepted.length > 0;
  return { image: req.image, digest: req.digest, accepted, rejected, keyrings, satisfied };
}

/** Like checkSimpleSignatures, but throws LadingError('SIGNATURE') naming the image, the signatures and the reasons unless satisfied. */
export async function verifySimpleSignatures(req: SimpleVerifyRequest): Promise<SimpleVerifyResult> {
  const result = await checkSimpleSignatures(req);
  if (!result.satisfied) throw verdictError(req, result);
  return result;
}

async function checkOne(req: SimpleVerifyRequest, sig: SignatureInput): Promise<AcceptedSignature | { reason: string }> {
  let signers: SignerInfo[];
  let payload: SimpleSigningPayload;
  try {
    const verified = await verifySignedMessage(sig.bytes, req.keyrings, req.now === undefined ? {} : { now: req.now });
    signers = verified.signers;
    payload = parsePayload(verified.payload, ATOMIC_SIGNATURE_TYPE);
  } catch (e) {
    if (e instanceof LadingError) return { reason: e.message };
    throw e;
  }
  if (payload.digest !== req.digest) return { reason: `it signs ${payload.digest}, not ${req.digest}` };
  const identity: IdentityVerdict = identityMatches(req.identity, req.intended, payload.identity);
  if (!identity.ok) return { reason: identity.reason };
  return { name: sig.name, payload, signers };
}

function verdictError(req: SimpleVerifyRequest, result: SimpleVerifyResult): LadingError {
  const what = req.image.includes(req.digest) ? req.image : `${req.image} (${req.digest})`;
  const context = { image: req.image, digest: req.digest };
  if (req.signatures.length === 0) {
    return new LadingError(
      'SIGNATURE',
      `cannot verify ${what}: no signatures found${req.from === undefined ? '' : ` in ${req.from}`}`,
      context,
    );
  }
  const reasons = result.rejected
    .slice(0, 4)
    .map((r) => `signature ${r.name}: ${r.reason}`)
    .concat(result.rejected.length > 4 ? [`and ${result.rejected.length - 4} more`] : []);
  if (result.accepted.length === 0) {
    const lead = req.signatures.length === 1 ? '' : `none of ${req.signatures.length} signatures is valid: `;
    return new LadingError('SIGNATURE', `cannot verify ${what}: ${lead}${reasons.join('; ')}`, context);
  }
  const missing = req.keyrings.filter((k) => !result.keyrings.includes(k.name)).map((k) => k.name);
  return new LadingError(
    'SIGNATURE',
    `cannot verify ${what} against keyrings: ${missing.join(', ')} (every keyring must vouch for a signature; ${result.accepted.length} accepted by ${result.keyrings.join(', ')})${reasons.length > 0 ? `; ${reasons.join('; ')}` : ''}`,
    context,
  );
}
