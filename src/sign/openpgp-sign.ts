/**
 * Making simple signatures: an OpenPGP signed message (one-pass signature, literal data, signature;
 * binary, neither detached nor cleartext, as `gpg --sign` writes and containers/image expects) over a
 * simple-signing payload, with an armored or binary secret key such as `gpg --export-secret-keys`
 * writes. The passphrase comes from the caller (the CLI reads --passphrase-file or LADING_PASSPHRASE).
 */
import { readFile, stat } from 'node:fs/promises';
import * as openpgp from 'openpgp';
import { LadingError, fsError } from '../errors.js';
import { buildPayload } from './simple-signing.js';

const MAX_KEY_BYTES = 16 * 1024 * 1024;

/** Reads a secret key file and unlocks it. */
export async function loadSigningKeyFile(path: string, passphrase?: string): Promise<openpgp.PrivateKey> {
  let bytes: Uint8Array;
  try {
    const info = await stat(path);
    if (info.size > MAX_KEY_BYTES) throw new LadingError('KEY', `${path} is ${info.size} bytes: not a secret key`);
    bytes = await readFile(path);
  } catch (e) {
    throw fsError(e, 'read secret key', path);
  }
  return parseSigningKey(bytes, path, passphrase);
}

/** Parses one secret key (armored or binary) and decrypts it with `passphrase` when it is protected. */
export async function parseSigningKey(bytes: Uint8Array, name: string, passphrase?: string): Promise<openpgp.PrivateKey> {
  const fail = (why: string, cause?: unknown) =>
    new LadingError('KEY', `secret key ${name}: ${why}`, { key: name }, cause === undefined ? undefined : { cause });
  const text = Buffer.from(bytes).toString('latin1');
  let keys: openpgp.PrivateKey[];
  try {
    if (text.includes('-----BEGIN PGP PRIVATE KEY BLOCK-----')) {
      keys = await openpgp.readPrivateKeys({ armoredKeys: text.slice(text.indexOf('-----BEGIN PGP PRIVATE KEY BLOCK-----')) });
    } else if (text.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----')) {
      throw fail('is a public key; signing needs the secret key (gpg --export-secret-keys --armor KEYID)');
    } else if (bytes.byteLength > 0 && ((bytes[0] ?? 0) & 0x80) !== 0) {
      keys = await openpgp.readPrivateKeys({ binaryKeys: bytes });
    } else {
      throw fail('is not an OpenPGP secret key (export one with gpg --export-secret-keys --armor KEYID)');
    }
  } catch (e) {
    if (e instanceof LadingError) throw e;
    const msg = (e as Error).message;
    if (/not of type private key|no valid private key/i.test(msg)) {
      throw fail('is a public key; signing needs the secret key (gpg --export-secret-keys --armor KEYID)', e);
    }
    throw fail(`cannot be read (${msg})`, e);
  }
  if (keys.length !== 1) throw fail(`holds ${keys.length} secret keys; export just the one to sign with`);
  const key = keys[0] as openpgp.PrivateKey;
  if (key.isDecrypted()) return key;
  if (passphrase === undefined) {
    throw fail('is protected by a passphrase: pass --passphrase-file FILE or set LADING_PASSPHRASE');
  }
  try {
    return await openpgp.decryptKey({ privateKey: key, passphrase });
  } catch (e) {
    throw fail(`cannot be unlocked with the passphrase given (${(e as Error).message})`, e);
  }
}

/** Signs `payload` as an OpenPGP signed message; returns the binary message. */
export async function signPayload(payload: Uint8Array, key: openpgp.PrivateKey, options: { date?: Date } = {}): Promise<Uint8Array> {
  const message = await openpgp.createMessage({ binary: payload, ...(options.date !== undefined && { date: options.date }) });
  try {
    return await openpgp.sign({
      message,
      signingKeys: key,
      format: 'binary',
      ...(options.date !== undefined && { date: options.date }),
    });
  } catch (e) {
    throw new LadingError('KEY', `cannot sign with key ${key.getFingerprint().toUpperCase()}: ${(e as Error).message}`, {}, { cause: e });
  }
}

/**
 * A complete simple signature: the payload for `digest` as `identity`, signed. `creator` defaults to
 * Lading's name and `timestamp` to now (whole seconds), as containers/image fills them.
 */
export async function createSimpleSignature(options: {
  digest: string;
  identity: string;
  key: openpgp.PrivateKey;
  creator?: string;
  timestamp?: number;
  date?: Date;
}): Promise<Uint8Array> {
  const date = options.date ?? new Date();
  const payload = buildPayload({
    digest: options.digest,
    identity: options.identity,
    creator: options.creator ?? 'lading 0.1.0',
    timestamp: options.timestamp ?? Math.floor(date.getTime() / 1000),
  });
  return signPayload(payload, options.key, { date });
}
