/**
 * Checking an OpenPGP *signed message* (what `gpg --sign` writes and containers/image and OpenShift
 * use): one literal data packet, optionally compressed, with one or more signatures over it. This
 * module answers "which keyrings vouch for these bytes, and what are they"; what the bytes must say
 * (digest, identity) is simple-signing.ts's and verify-image.ts's job.
 *
 * Rules, deliberately:
 * - Only a signed message is accepted. A detached signature, a cleartext-signed message, an encrypted
 *   message, a key, or an HTML page where a signature should be are each refused with a message saying
 *   what they are. Anything over MAX_SIGNATURE_BYTES is refused before it is parsed, and decompression
 *   is capped at the same size.
 * - Key expiry: a signature counts when the key was valid *at the time it signed* (openpgp.js checks
 *   the key's self-signatures, expiry and flags at the signature's creation time). A key that expired
 *   since still vouches for what it signed before: the cluster-version-operator accepts the expired
 *   `openshift-ci` key, and release signatures must outlive keys. A signature made after the key had
 *   expired is refused (the CVO would accept it; its OpenPGP library ignores expiry), as is a signature
 *   that has itself expired or claims a creation time in the future.
 * - Revocation: a key revoked at any time up to now, or whose signing subkey is, is refused for every
 *   signature, old or new, whatever the stated reason: a revoked release key cannot be trusted for
 *   what it signed either.
 * - Each keyring is tried on its own, so a key ID that collides across keyrings cannot borrow another
 *   keyring's trust, and the result says exactly which keyrings are satisfied.
 * - Version 3 signature packets (still in Red Hat's older signatures) go through openpgp-v3.ts.
 */
import * as openpgp from 'openpgp';
import { LadingError } from '../errors.js';
import { type Keyring, describeKey } from './keyring.js';
import { parseV3Signature, verifyV3Signature } from './openpgp-v3.js';

/** A signature is a few hundred bytes to a few KiB; the cluster-version-operator reads at most 50 KiB. */
export const MAX_SIGNATURE_BYTES = 1024 * 1024;

const SIGNATURE_TAG = 2;
const ENCRYPTED_TAGS = new Set([1, 3, 9, 18, 20]);

export interface SignerInfo {
  /** The keyring whose key made the signature. */
  keyring: string;
  /** Primary key fingerprint, uppercase hex. */
  fingerprint: string;
  /** The key (primary or subkey) that signed, uppercase hex key ID. */
  keyID: string;
  /** The primary user ID, when the key has one. */
  userID?: string;
  /** When the signature says it was made. */
  created: Date;
}

export interface VerifiedMessage {
  /** The signed bytes (the literal data). */
  payload: Uint8Array;
  /** One entry per keyring that vouches for the payload. */
  signers: SignerInfo[];
}

interface OpenedMessage {
  message: openpgp.Message<Uint8Array>;
  literal: Uint8Array;
  v4: number;
  v3: Uint8Array[];
}

function readConfig(): openpgp.Config {
  return { ...openpgp.config, maxDecompressedMessageSize: MAX_SIGNATURE_BYTES, ignoreUnsupportedPackets: true };
}

/**
 * Verifies `bytes` against each keyring. Throws LadingError('SIGNATURE') with the reason (no image or
 * signature name: callers add those) when no keyring vouches for it.
 */
export async function verifySignedMessage(
  bytes: Uint8Array,
  keyrings: readonly Keyring[],
  options: { now?: Date } = {},
): Promise<VerifiedMessage> {
  if (keyrings.length === 0) throw new LadingError('SIGNATURE', 'no keyring to verify against');
  const now = options.now ?? new Date();
  const config = readConfig();
  const opened = await openSignedMessage(bytes);
  const signers: SignerInfo[] = [];
  const reasons: string[] = [];
  for (const keyring of keyrings) {
    try {
      signers.push(await verifyWithKeyring(opened, keyring, now, config));
    } catch (e) {
      reasons.push((e as Error).message);
    }
  }
  if (signers.length === 0) throw new LadingError('SIGNATURE', bestReason(reasons, keyrings));
  return { payload: opened.literal, signers };
}

/**
 * The signed bytes of a message without checking any signature: only for looking at what a signature
 * claims (to pick the ones naming a digest) before it is verified, never for trusting it.
 */
export async function unverifiedPayload(bytes: Uint8Array): Promise<Uint8Array> {
  return (await openSignedMessage(bytes)).literal;
}

/** Parses and classifies the bytes, refusing everything that is not a signed message. */
export async function openSignedMessage(bytes: Uint8Array): Promise<OpenedMessage> {
  const fail = (why: string) => new LadingError('SIGNATURE', why);
  if (bytes.byteLength > MAX_SIGNATURE_BYTES) {
    throw fail(`it is ${bytes.byteLength} bytes, over the ${MAX_SIGNATURE_BYTES}-byte limit for a signature`);
  }
  if (bytes.byteLength === 0) throw fail('it is empty');
  const head = Buffer.from(bytes.subarray(0, 256)).toString('latin1').trimStart();
  if (head.startsWith('-----BEGIN PGP SIGNED MESSAGE-----')) {
    throw fail('it is a cleartext-signed message (gpg --clearsign); a signed message (gpg --sign) is expected');
  }
  if (head.startsWith('-----BEGIN PGP SIGNATURE-----')) {
    throw fail('it is a detached signature (gpg --detach-sign); a signed message (gpg --sign) is expected');
  }
  if (/^-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----/.test(head)) throw fail('it is an OpenPGP key, not a signature');
  if (head.startsWith('<')) throw fail('it is HTML or XML, not an OpenPGP signature (a web page or an error page?)');

  const config = readConfig();
  let message: openpgp.Message<Uint8Array>;
  try {
    if (head.startsWith('-----BEGIN PGP MESSAGE-----')) {
      const armored = await openpgp.readMessage({ armoredMessage: Buffer.from(bytes).toString('utf8'), config });
      message = armored as unknown as openpgp.Message<Uint8Array>;
    } else if (((bytes[0] ?? 0) & 0x80) === 0) {
      throw fail('it is not an OpenPGP message');
    } else {
      message = await openpgp.readMessage({ binaryMessage: bytes, config });
    }
  } catch (e) {
    if (e instanceof LadingError) throw e;
    throw fail(`it is not a valid OpenPGP message (${oneLine(e)})`);
  }

  let inner: openpgp.Message<Uint8Array>;
  try {
    await drainPacketStream(message.packets);
    inner = message.unwrapCompressed() as openpgp.Message<Uint8Array>;
    await drainPacketStream(inner.packets);
  } catch (e) {
    throw fail(`its compressed data cannot be read (${oneLine(e)})`);
  }
  const packets = [...inner.packets];
  const tags = packets.map(packetTag);
  if (tags.some((t) => ENCRYPTED_TAGS.has(t))) throw fail('it is an encrypted message, not a signed one');
  const literals = packets.filter((p) => p instanceof openpgp.LiteralDataPacket);
  const v4 = packets.filter((p) => p instanceof openpgp.SignaturePacket).length;
  const v3 = packets
    .filter((p): p is openpgp.UnparseablePacket => p instanceof openpgp.UnparseablePacket && p.tag === SIGNATURE_TAG)
    .map((p) => (p as unknown as { rawContent: Uint8Array }).rawContent);
  if (literals.length === 0) {
    if (v4 + v3.length > 0) throw fail('it is a detached signature (gpg --detach-sign); a signed message (gpg --sign) is expected');
    throw fail('it holds no signed data');
  }
  if (literals.length > 1) throw fail('it holds more than one piece of signed data');
  if (v4 + v3.length === 0) throw fail('it is not signed (an OpenPGP message with no signature)');
  const data = inner.getLiteralData();
  if (!(data instanceof Uint8Array)) throw fail('its signed data cannot be read');
  return { message, literal: data, v4, v3 };
}

async function verifyWithKeyring(opened: OpenedMessage, keyring: Keyring, now: Date, config: openpgp.Config): Promise<SignerInfo> {
  const errors: string[] = [];
  const keys = [...keyring.keys];
  if (opened.v4 > 0) {
    const results = await opened.message.verify(keys, now, config);
    for (const r of results) {
      try {
        await r.verified;
        const packet = (await r.signature).packets[0];
        const created = packet?.created ?? now;
        return await signer(keyring, r.keyID.toHex(), created, now, config);
      } catch (e) {
        errors.push(oneLine(e));
      }
    }
  }
  for (const raw of opened.v3) {
    try {
      const sig = parseV3Signature(raw);
      await verifyV3Signature(sig, opened.literal, keyring, now, config);
      return await signer(keyring, sig.keyID, sig.created, now, config);
    } catch (e) {
      errors.push(oneLine(e));
    }
  }
  throw new Error(errors.join('; '));
}

/** Describes the signing key, refusing it when it or its signing subkey has been revoked by now. */
async function signer(keyring: Keyring, keyIDHex: string, created: Date, now: Date, config: openpgp.Config): Promise<SignerInfo> {
  for (const key of keyring.keys) {
    const signing = key.getKeys().find((k) => k.getKeyID().toHex() === keyIDHex);
    if (signing === undefined) continue;
    if (await key.isRevoked(undefined, undefined, now, config)) throw new Error(`key ${describeKey(key)} is revoked`);
    if (signing instanceof openpgp.Subkey && (await signing.isRevoked(undefined as never, undefined as never, now, config))) {
      throw new Error(`signing subkey ${keyIDHex.toUpperCase()} of key ${describeKey(key)} is revoked`);
    }
    const userID = key.getUserIDs()[0];
    return {
      keyring: keyring.name,
      fingerprint: key.getFingerprint().toUpperCase(),
      keyID: keyIDHex.toUpperCase(),
      ...(userID !== undefined && { userID }),
      created,
    };
  }
  throw new Error(`Could not find signing key with key ID ${keyIDHex}`);
}

/** Turns openpgp.js's reasons into one line a person can act on. */
function bestReason(reasons: string[], keyrings: readonly Keyring[]): string {
  const all = reasons.join('; ');
  const names = keyrings.map((k) => k.name).join(', ');
  if (/revoked/i.test(all)) return (/key .* is revoked/.exec(all)?.[0] ?? 'the signing key is revoked') + ` (keyring ${names})`;
  if (/Signed digest did not match|Signature verification failed|Invalid signature/i.test(all)) {
    return 'the signature does not match the signed data (it was altered or damaged)';
  }
  if (/expired/i.test(all) && /Signature is expired/i.test(all)) return 'the signature itself has expired';
  if (/expired/i.test(all)) return 'the signing key had already expired when the signature was made';
  if (/in the future/i.test(all)) return 'the signature claims a creation time in the future';
  if (/newer than the signature/i.test(all)) return 'the signing key was created after the signature claims to have been made';
  if (/Could not find signing key/i.test(all)) {
    const ids = [...new Set([...all.matchAll(/key ID ([0-9a-f]{16})/gi)].map((m) => (m[1] ?? '').toUpperCase()))];
    return `it was signed by key ${ids.join(', ') || '(unknown)'}, which is not in keyring ${names}`;
  }
  return `no key of keyring ${names} verifies it (${all})`;
}

/**
 * openpgp.js parses the packets inside a compressed packet lazily: those after the literal data (the
 * signatures of a one-pass signed message) wait in `packets.stream`. Reading them into the list itself
 * lets this module look at every packet, and Message.verify still finds them there.
 */
async function drainPacketStream(list: openpgp.PacketList<openpgp.AnyPacket>): Promise<void> {
  const stream = (list as unknown as { stream?: { readToEnd?: (join: (x: unknown[]) => unknown[]) => Promise<unknown[]> } }).stream;
  if (typeof stream?.readToEnd !== 'function') return;
  const rest = await stream.readToEnd((x) => x ?? []);
  list.push(...(rest as openpgp.AnyPacket[]));
}

function packetTag(p: unknown): number {
  if (p instanceof openpgp.UnparseablePacket) return p.tag;
  return ((p as { constructor?: { tag?: number } }).constructor?.tag ?? -1) as number;
}

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();
}
