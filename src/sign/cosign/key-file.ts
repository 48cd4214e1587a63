/**
 * Cosign key files, so that `lading keygen --cosign` writes keys cosign and skopeo read, and Lading reads
 * keys cosign wrote (sigstore/cosign `pkg/cosign/keys.go`):
 *
 * - the private key is a PEM block `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign before 2.0 wrote `ENCRYPTED
 *   COSIGN PRIVATE KEY`, still read) whose body is the JSON envelope of go-securesystemslib's `encrypted`
 *   package: scrypt (N=32768, r=8, p=1, 32-byte salt; N=65536 and 131072 are read too) derives a 32-byte key that seals the PKCS#8 DER of
 *   the key with NaCl secretbox (XSalsa20-Poly1305, 24-byte nonce);
 * - the public key is a PKIX `PUBLIC KEY` PEM block.
 *
 * node:crypto does scrypt, ECDSA and PKCS#8/PKIX; secretbox comes from tweetnacl (Node has no
 * XSalsa20-Poly1305). What is hand-written here is only the envelope: a dozen lines of JSON in the field
 * order Go's encoding/json writes, which no library produces.
 *
 * Only ECDSA P-256 keys are accepted: it is what `cosign generate-key-pair` makes and the one scheme every
 * cosign implementation must support; cosign signs ECDSA with SHA-256 whatever the curve, so other curves
 * and RSA/Ed25519 keys are refused rather than signed with a pairing other tools might not expect.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject, randomBytes, scrypt } from 'node:crypto';
import { promisify } from 'node:util';
import nacl from 'tweetnacl';
import { LadingError } from '../../errors.js';
import { parseJsonNoDuplicates } from '../strict-json.js';

export const SIGSTORE_PRIVATE_KEY_PEM = 'ENCRYPTED SIGSTORE PRIVATE KEY';
export const COSIGN_PRIVATE_KEY_PEM = 'ENCRYPTED COSIGN PRIVATE KEY';
export const PUBLIC_KEY_PEM = 'PUBLIC KEY';

/**
 * go-securesystemslib's "legacy" scrypt parameters, which cosign wrote before its library moved its
 * default to N=65536 ("standard"); every cosign reads them, and they are what Lading writes.
 */
export const COSIGN_SCRYPT = { N: 32768, r: 8, p: 1 } as const;
const SALT_BYTES = 32;
const NONCE_BYTES = nacl.secretbox.nonceLength; // 24
const BOX_KEY_BYTES = nacl.secretbox.keyLength; // 32
/**
 * Parameter sets accepted when reading: go-securesystemslib's legacy, standard and OWASP sets, as it
 * accepts them. The file names them, so an unbounded N would let a hostile key file make us allocate
 * gigabytes: others are refused.
 */
const ACCEPTED_N = new Set([32768, 65536, 131072]);
/** Room for scrypt's 128·N·r bytes at N=131072 (128 MiB) plus OpenSSL's own bookkeeping. */
const SCRYPT_MAXMEM = 192 * 1024 * 1024;
const P256 = 'prime256v1';

const scryptAsync = promisify(scrypt) as (password: string | Buffer, salt: Buffer, keylen: number, options: object) => Promise<Buffer>;
const generateKeyPairAsync = promisify(generateKeyPair);

/** Derives the secretbox key from a password as go-securesystemslib does (the password's UTF-8 bytes). */
export async function deriveBoxKey(
  password: string,
  salt: Uint8Array,
  params: { N: number; r: number; p: number } = COSIGN_SCRYPT,
): Promise<Buffer> {
  return scryptAsync(Buffer.from(password, 'utf8'), Buffer.from(salt), BOX_KEY_BYTES, { ...params, maxmem: SCRYPT_MAXMEM });
}

/** A new ECDSA P-256 key pair as cosign's `generate-key-pair` writes it. */
export async function generateCosignKeyPair(password: string): Promise<{ privatePem: string; publicPem: string }> {
  const { privateKey, publicKey } = await generateKeyPairAsync('ec', { namedCurve: P256 });
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  try {
    const salt = randomBytes(SALT_BYTES);
    const nonce = randomBytes(NONCE_BYTES);
    const boxKey = await deriveBoxKey(password, salt);
    const ciphertext = nacl.secretbox(pkcs8, nonce, boxKey);
    boxKey.fill(0);
    // Field order and names as Go's encoding/json writes go-securesystemslib's structs; []byte is base64.
    const envelope = JSON.stringify({
      kdf: { name: 'scrypt', params: { N: COSIGN_SCRYPT.N, r: COSIGN_SCRYPT.r, p: COSIGN_SCRYPT.p }, salt: b64(salt) },
      cipher: { name: 'nacl/secretbox', nonce: b64(nonce) },
      ciphertext: b64(ciphertext),
    });
    return {
      privatePem: pemEncode(SIGSTORE_PRIVATE_KEY_PEM, Buffer.from(envelope, 'utf8')),
      publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    };
  } finally {
    pkcs8.fill(0);
  }
}

/**
 * Decrypts a cosign private key file. A wrong password and a corrupt file look the same to secretbox
 * (the authenticator fails), so the message says both.
 */
export async function loadCosignPrivateKey(pem: string, password: string): Promise<KeyObject> {
  const block = pemDecode(pem, [SIGSTORE_PRIVATE_KEY_PEM, COSIGN_PRIVATE_KEY_PEM], 'cosign private key');
  const envelope = parseEnvelope(block.bytes);
  const boxKey = await deriveBoxKey(password, envelope.salt, envelope.params);
  const plain = nacl.secretbox.open(envelope.ciphertext, envelope.nonce, boxKey);
  boxKey.fill(0);
  if (plain === null) {
    throw new LadingError(
      'KEY',
      'cannot decrypt the cosign private key: wrong password (or the key file is corrupt); check COSIGN_PASSWORD',
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(plain), format: 'der', type: 'pkcs8' });
  } catch (e) {
    throw new LadingError('KEY', `the cosign private key decrypts, but what it holds is no PKCS#8 key: ${(e as Error).message}`);
  } finally {
    plain.fill(0);
  }
  requireP256(key, 'cosign private key');
  return key;
}

/** Reads a PKIX `PUBLIC KEY` PEM block (a cosign.pub, or `openssl ec -pubout` output) holding an ECDSA P-256 key. */
export function loadCosignPublicKey(pem: string): KeyObject {
  const block = pemDecode(pem, [PUBLIC_KEY_PEM], 'public key');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(block.bytes), format: 'der', type: 'spki' });
  } catch (e) {
    throw new LadingError('KEY', `the PUBLIC KEY block holds no valid PKIX public key: ${(e as Error).message}`);
  }
  requireP256(key, 'public key');
  return key;
}

/** Refuses anything but an ECDSA P-256 key, saying what the key is instead. */
export function requireP256(key: KeyObject, what: string): void {
  const type = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (type === 'ec' && curve === P256) return;
  const is = type === 'ec' ? `ECDSA on curve ${curve ?? 'unknown'}` : (type ?? key.type).toUpperCase();
  throw new LadingError(
    'KEY',
    `the ${what} is ${is}: Lading signs and verifies cosign signatures with ECDSA P-256 keys only (cosign generate-key-pair or lading keygen --cosign make one)`,
  );
}

interface Envelope {
  params: { N: number; r: number; p: number };
  salt: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

/** Reads go-securesystemslib's JSON envelope, checking names and parameters before any work is done. */
function parseEnvelope(bytes: Uint8Array): Envelope {
  const bad = (why: string): never => {
    throw new LadingError('KEY', `the cosign private key is malformed: ${why}`);
  };
  let doc: unknown;
  try {
    doc = parseJsonNoDuplicates(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    return bad(`its body is not JSON (${(e as Error).message})`);
  }
  const o = asObject(doc) ?? bad('its body is not a JSON object');
  const kdf = asObject(o.kdf) ?? bad('no "kdf" object');
  const cipher = asObject(o.cipher) ?? bad('no "cipher" object');
  if (kdf.name !== 'scrypt') bad(`unsupported kdf ${JSON.stringify(kdf.name)} (expected "scrypt")`);
  if (cipher.name !== 'nacl/secretbox') bad(`unsupported cipher ${JSON.stringify(cipher.name)} (expected "nacl/secretbox")`);
  const params = asObject(kdf.params) ?? bad('no kdf.params');
  const { N, r, p } = params;
  if (typeof N !== 'number' || !ACCEPTED_N.has(N) || r !== 8 || p !== 1) {
    bad(`unexpected scrypt parameters N=${String(N)} r=${String(r)} p=${String(p)} (expected N=32768, 65536 or 131072, r=8, p=1)`);
  }
  const salt = base64Field(kdf.salt, 'kdf.salt', bad);
  const nonce = base64Field(cipher.nonce, 'cipher.nonce', bad);
  const ciphertext = base64Field(o.ciphertext, 'ciphertext', bad);
  if (nonce.length !== NONCE_BYTES) bad(`the nonce is ${nonce.length} bytes, not ${NONCE_BYTES}`);
  if (ciphertext.length < nacl.secretbox.overheadLength) bad('the ciphertext is shorter than its authenticator');
  return { params: { N: N as number, r: 8, p: 1 }, salt, nonce, ciphertext };
}

function asObject(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard padded base64 (Go's []byte in JSON), strictly: Buffer.from would skip junk silently. */
export function decodeBase64Strict(s: string): Uint8Array | undefined {
  return BASE64.test(s) ? new Uint8Array(Buffer.from(s, 'base64')) : undefined;
}

function base64Field(v: unknown, name: string, bad: (why: string) => never): Uint8Array {
  if (typeof v !== 'string') return bad(`${name} is not a string`);
  return decodeBase64Strict(v) ?? bad(`${name} is not valid base64`);
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

/** PEM as Go's encoding/pem writes it: 64-character base64 lines, a newline after the END line. */
export function pemEncode(type: string, bytes: Uint8Array): string {
  const body = Buffer.from(bytes).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${type}-----\n${body}${body.endsWith('\n') || body === '' ? '' : '\n'}-----END ${type}-----\n`;
}

/**
 * The first PEM block in `text` (text around it is ignored, as Go's pem.Decode does), which must be of
 * one of `types`; RFC 1421 headers (`Proc-Type: …`) inside the block are skipped.
 */
export function pemDecode(text: string, types: readonly string[], what: string): { type: string; bytes: Uint8Array } {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (m === null)
    throw new LadingError('KEY', `no PEM block found where a ${what} was expected (want ${types.map((t) => `"${t}"`).join(' or ')})`);
  const type = m[1] as string;
  if (!types.includes(type)) {
    throw new LadingError('KEY', `the ${what} is a PEM "${type}" block, expected ${types.map((t) => `"${t}"`).join(' or ')}`);
  }
  const lines = (m[2] as string).split(/\r?\n/);
  const headerEnd = lines.findIndex((l) => l.trim() === '');
  const body = (lines.some((l) => l.includes(':')) && headerEnd !== -1 ? lines.slice(headerEnd + 1) : lines).join('').replace(/\s+/g, '');
  const bytes = decodeBase64Strict(body);
  if (bytes === undefined || bytes.length === 0) throw new LadingError('KEY', `the ${what}'s PEM "${type}" block has no valid base64 body`);
  return { type, bytes };
}
