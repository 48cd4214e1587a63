/**
 * Release signatures (OTA-666): the simple signatures of a release image, fetched from OpenShift-layout
 * stores (`<store>/sha256=<hex>/signature-N`) and, when keyrings are given, verified the way the
 * cluster-version-operator verifies them: every keyring must vouch for a signature, each signature's
 * digest must be the release digest, and the identity is not compared (a mirrored release keeps its
 * original name in its signatures). Unlike oc-mirror, every signature-N is read, not just the first,
 * and unlike oc, verification happens before anything is written or copied.
 *
 * Without keyrings nothing is verified; the signatures are still filtered to those whose (unverified)
 * payload names the release digest, so a wrong store never hands out another release's signature, and
 * the result says `verified: false`.
 */
import { LadingError } from '../errors.js';
import { parseDigest } from '../oci/digest.js';
import type { Keyring } from './keyring.js';
import { type SignerInfo, unverifiedPayload } from './openpgp-verify.js';
import { type StoreReadOptions, readSignatures } from './signature-store.js';
import { parsePayload } from './simple-signing.js';
import { verifySimpleSignatures } from './verify-image.js';

export interface ReleaseSignatureRequest {
  /** What to call the release in messages. */
  image: string;
  digest: string;
  /** Signature stores (OpenShift layout): directories, file://, http:// or https:// URLs. */
  stores: readonly string[];
  /** Verify against these; every one must be satisfied. Empty or absent: no verification. */
  keyrings?: readonly Keyring[];
  storeOptions?: StoreReadOptions;
  now?: Date;
}

export interface ReleaseSignature {
  /** Where it was read (file path or URL). */
  location: string;
  bytes: Uint8Array;
  /** The identity its payload names. */
  identity: string;
  /** The keyrings' keys that made it, when verified. */
  signers: SignerInfo[];
}

export interface ReleaseSignatureResult {
  digest: string;
  verified: boolean;
  /** Keyrings satisfied (all of them when verified). */
  keyrings: string[];
  signatures: ReleaseSignature[];
  /** Signatures read but not kept, and why. */
  rejected: { location: string; reason: string }[];
}

/**
 * Reads and (with keyrings) verifies the release's signatures. Throws LadingError naming the release,
 * the signatures and the reasons when none is usable or a keyring is left unsatisfied; a store that
 * fails (500, HTML, unreachable) is an error too, before anything is returned.
 */
export async function releaseSignatures(req: ReleaseSignatureRequest): Promise<ReleaseSignatureResult> {
  parseDigest(req.digest);
  if (req.stores.length === 0) {
    throw new LadingError('USAGE', `no signature store for ${req.image}: pass --store URL (the release payload names none)`);
  }
  const read: { location: string; bytes: Uint8Array }[] = [];
  const seen = new Set<string>();
  for (const base of req.stores) {
    for (const s of await readSignatures({ layout: 'openshift', base }, { digest: req.digest }, req.storeOptions)) {
      const key = Buffer.from(s.bytes).toString('base64');
      if (seen.has(key)) continue; // the same signature mirrored in two stores counts once
      seen.add(key);
      read.push({ location: s.location, bytes: s.bytes });
    }
  }
  const from = req.stores.join(', ');

  if (req.keyrings !== undefined && req.keyrings.length > 0) {
    const result = await verifySimpleSignatures({
      image: req.image,
      digest: req.digest,
      identity: { type: 'none' },
      keyrings: req.keyrings,
      keyringRule: 'all',
      signatures: read.map((r) => ({ name: r.location, bytes: r.bytes })),
      from,
      ...(req.now !== undefined && { now: req.now }),
    });
    const byName = new Map(read.map((r) => [r.location, r.bytes]));
    return {
      digest: req.digest,
      verified: true,
      keyrings: result.keyrings,
      signatures: result.accepted.map((a) => ({
        location: a.name,
        bytes: byName.get(a.name) ?? new Uint8Array(),
        identity: a.payload.identity,
        signers: a.signers,
      })),
      rejected: result.rejected.map((r) => ({ location: r.name, reason: r.reason })),
    };
  }

  const signatures: ReleaseSignature[] = [];
  const rejected: { location: string; reason: string }[] = [];
  for (const r of read) {
    try {
      const payload = parsePayload(await unverifiedPayload(r.bytes));
      if (payload.digest !== req.digest) rejected.push({ location: r.location, reason: `it signs ${payload.digest}, not ${req.digest}` });
      else signatures.push({ location: r.location, bytes: r.bytes, identity: payload.identity, signers: [] });
    } catch (e) {
      if (!(e instanceof LadingError)) throw e;
      rejected.push({ location: r.location, reason: e.message });
    }
  }
  if (signatures.length === 0) {
    const why =
      rejected.length === 0 ? `no signatures found in ${from}` : rejected.map((r) => `signature ${r.location}: ${r.reason}`).join('; ');
    throw new LadingError('SIGNATURE', `no usable signature of ${req.image} (${req.digest}): ${why}`, {
      image: req.image,
      digest: req.digest,
    });
  }
  return { digest: req.digest, verified: false, keyrings: [], signatures, rejected };
}
