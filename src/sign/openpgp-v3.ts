/**
 * Version 3 OpenPGP signature packets (RFC 4880 §5.2.2), checked by hand. Red Hat's signing service
 * made V3 RSA signatures for years (the rhel7 and operator-bundle signatures in OpenShift's own test data
 * are V3), containers/image (through gpgme) and the cluster-version-operator (golang.org/x/crypto/openpgp)
 * accept them, but openpgp.js 6 no longer parses them: it hands them over as unparseable packets. The
 * format is small: five hashed bytes (type and creation time) after the data, an issuer key ID, and an
 * RSA PKCS#1 v1.5 signature over a SHA-2 digest, which node:crypto checks. The key itself (expiry and
 * revocation at the signature's time, usable for signing, large enough) is still judged by openpgp.js.
 *
 * Only RSA with SHA-224/256/384/512 over binary data is accepted; MD5 and SHA-1, DSA and text-mode V3
 * signatures are refused with a message saying so.
 */
import { constants, createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import type * as openpgp from 'openpgp';
import type { Keyring } from './keyring.js';

const HASHES: Readonly<Record<number, string>> = { 8: 'sha256', 9: 'sha384', 10: 'sha512', 11: 'sha224' };
const RSA_ALGORITHMS = new Set([1, 3]); // RSA (encrypt or sign), RSA sign-only
const MIN_RSA_BITS = 2047;

export interface V3Signature {
  signatureType: number;
  created: Date;
  keyID: string; // 16 lowercase hex
  publicKeyAlgorithm: number;
  hashAlgorithm: number;
  left16: Uint8Array;
  /** The RSA signature value, as an unsigned big-endian integer. */
  value: Uint8Array;
}

/** Parses a V3 signature packet body; throws Error with the reason when it is not one we can check. */
export function parseV3Signature(body: Uint8Array): V3Signature {
  if (body.byteLength < 19 || body[0] !== 3) throw new Error('not a version 3 signature packet');
  if (body[1] !== 5) throw new Error('malformed version 3 signature (hashed length is not 5)');
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const signatureType = body[2] ?? 0;
  const created = new Date(view.getUint32(3) * 1000);
  const keyID = Buffer.from(body.subarray(7, 15)).toString('hex');
  const publicKeyAlgorithm = body[15] ?? 0;
  const hashAlgorithm = body[16] ?? 0;
  const left16 = body.subarray(17, 19);
  if (!RSA_ALGORITHMS.has(publicKeyAlgorithm)) {
    throw new Error(`version 3 signatures with public-key algorithm ${publicKeyAlgorithm} are not supported (RSA only)`);
  }
  if (HASHES[hashAlgorithm] === undefined) {
    throw new Error(`version 3 signature uses hash algorithm ${hashAlgorithm}, which is refused (SHA-224/256/384/512 only)`);
  }
  if (signatureType !== 0)
    throw new Error(`version 3 signature of type 0x${signatureType.toString(16)} is not supported (binary data only)`);
  // One MPI: a two-byte bit count, then the bytes.
  if (body.byteLength < 21) throw new Error('malformed version 3 signature (truncated)');
  const bits = view.getUint16(19);
  const value = body.subarray(21, 21 + Math.ceil(bits / 8));
  if (value.byteLength !== Math.ceil(bits / 8) || 21 + value.byteLength !== body.byteLength) {
    throw new Error('malformed version 3 signature (bad length)');
  }
  return { signatureType, created, keyID, publicKeyAlgorithm, hashAlgorithm, left16, value };
}

/**
 * Checks `sig` over `data` against the keys of `keyring`. Returns the primary key whose key (or subkey)
 * made it; throws Error with the reason otherwise.
 */
export async function verifyV3Signature(
  sig: V3Signature,
  data: Uint8Array,
  keyring: Keyring,
  now: Date,
  config: openpgp.Config,
): Promise<openpgp.PublicKey> {
  let primary: openpgp.PublicKey | undefined;
  let signing: openpgp.PublicKey | openpgp.Subkey | undefined;
  for (const key of keyring.keys) {
    signing = key.getKeys().find((k) => k.getKeyID().toHex() === sig.keyID);
    if (signing !== undefined) {
      primary = key;
      break;
    }
  }
  if (primary === undefined || signing === undefined) throw new Error(`Could not find signing key with key ID ${sig.keyID}`);

  const hashName = HASHES[sig.hashAlgorithm] ?? 'sha256';
  const trailer = Buffer.alloc(5);
  trailer[0] = sig.signatureType;
  trailer.writeUInt32BE(Math.floor(sig.created.getTime() / 1000), 1);
  const signed = Buffer.concat([data, trailer]);
  const digest = createHash(hashName).update(signed).digest();
  if (digest[0] !== sig.left16[0] || digest[1] !== sig.left16[1]) throw new Error('Signed digest did not match');

  const params = signing.keyPacket.publicParams as { n?: Uint8Array; e?: Uint8Array };
  if (!RSA_ALGORITHMS.has(signing.keyPacket.algorithm) || params.n === undefined || params.e === undefined) {
    throw new Error(`key ${sig.keyID} is not an RSA key`);
  }
  const modulusBytes = stripZeros(params.n).byteLength;
  if (modulusBytes * 8 < MIN_RSA_BITS) throw new Error(`key ${sig.keyID} is RSA with fewer than 2048 bits`);
  const publicKey = createPublicKey({
    key: { kty: 'RSA', n: Buffer.from(params.n).toString('base64url'), e: Buffer.from(params.e).toString('base64url') },
    format: 'jwk',
  });
  if (sig.value.byteLength > modulusBytes) throw new Error('Signed digest did not match');
  const padded = Buffer.concat([Buffer.alloc(modulusBytes - sig.value.byteLength), sig.value]);
  if (!cryptoVerify(hashName, signed, { key: publicKey, padding: constants.RSA_PKCS1_PADDING }, padded)) {
    throw new Error('Signed digest did not match');
  }

  if (sig.created > now) throw new Error('Signature creation time is in the future');
  if (signing.getCreationTime() > sig.created) throw new Error('Key is newer than the signature');
  // The key must have been valid (not expired, not revoked, allowed to sign) when it signed.
  await primary.getSigningKey(signing.getKeyID(), sig.created, undefined, config);
  return primary;
}

function stripZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.byteLength - 1 && b[i] === 0) i++;
  return b.subarray(i);
}
