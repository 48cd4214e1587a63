/**
 * OpenPGP keyrings as people have them: what `gpg --export` writes (binary) or `gpg --export --armor`
 * (one or more armored blocks, possibly with text around them, as in OpenShift's key files, which begin
 * with the `gpg --list-keys` listing). A keyring has a name, because verification reports which keyrings
 * were satisfied and the cluster-version-operator's rule is that every keyring must be.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import * as openpgp from 'openpgp';
import { LadingError, fsError } from '../errors.js';

export interface Keyring {
  /** What messages call it: the file name, or the name given (`verifier-public-key-redhat`). */
  readonly name: string;
  readonly keys: readonly openpgp.PublicKey[];
}

/** Key files are a few KiB; a keyring past this is not one. */
const MAX_KEYRING_BYTES = 16 * 1024 * 1024;
const ARMOR_BLOCK = /-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP \1 KEY BLOCK-----/g;

/** Reads a keyring file (armored or binary). */
export async function loadKeyringFile(path: string, name: string = basename(path)): Promise<Keyring> {
  let bytes: Uint8Array;
  try {
    const info = await stat(path);
    if (info.size > MAX_KEYRING_BYTES) throw new LadingError('KEY', `keyring ${path} is ${info.size} bytes: not a keyring`);
    bytes = await readFile(path);
  } catch (e) {
    throw fsError(e, 'read keyring', path);
  }
  return parseKeyring(bytes, name);
}

/** Parses keyring bytes: armored blocks anywhere in the text, or binary key packets. Secret keys count as their public halves. */
export async function parseKeyring(bytes: Uint8Array, name: string): Promise<Keyring> {
  const fail = (why: string, cause?: unknown) =>
    new LadingError('KEY', `keyring ${name}: ${why}`, { keyring: name }, cause === undefined ? undefined : { cause });
  const keys: openpgp.PublicKey[] = [];
  const text = Buffer.from(bytes).toString('latin1');
  const blocks = text.match(ARMOR_BLOCK);
  try {
    if (blocks !== null) {
      for (const block of blocks) keys.push(...(await openpgp.readKeys({ armoredKeys: block })));
    } else if (text.includes('-----BEGIN PGP')) {
      throw fail('holds no armored key block (a signature or a message instead of a public key?)');
    } else if (bytes.byteLength > 0 && ((bytes[0] ?? 0) & 0x80) !== 0) {
      keys.push(...(await openpgp.readKeys({ binaryKeys: bytes })));
    } else if (text.startsWith('\x00\x00\x00') || text.slice(8, 12) === 'KBXf') {
      throw fail('is a gpg keybox (pubring.kbx), not a keyring: export the keys with gpg --export');
    } else {
      throw fail('is not an OpenPGP keyring: export one with gpg --export [--armor] KEYID');
    }
  } catch (e) {
    if (e instanceof LadingError) throw e;
    throw fail(`cannot read its keys (${(e as Error).message})`, e);
  }
  if (keys.length === 0) throw fail('holds no keys');
  return { name, keys: keys.map((k) => (k.isPrivate() ? k.toPublic() : k)) };
}

/** `Red Hat, Inc. (release key 2) <security@redhat.com>` or, when the key has no user ID, its fingerprint. */
export function describeKey(key: openpgp.PublicKey): string {
  const uid = key.getUserIDs()[0];
  return uid === undefined ? key.getFingerprint().toUpperCase() : `"${uid}" (${key.getFingerprint().toUpperCase()})`;
}
