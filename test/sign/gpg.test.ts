/**
 * Lading's OpenPGP signing and verifying against gpg, in both directions, and the key rules:
 * - gpg-made signatures (compressed, armored and binary keyrings, a separate signing subkey) verify;
 * - Lading's signatures verify with gpg and decrypt to the payload;
 * - expiry (keys made at a faked time with a one-day life): a signature made while the key was valid
 *   is accepted after it expired; one made after it expired is refused;
 * - a revoked key is refused, even for a signature it made before the revocation;
 * - an unknown key, a detached or cleartext signature, an encrypted message: each refused with the reason;
 * - passphrase-protected secret keys.
 */
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { isLadingError } from '../../src/errors.js';
import { loadKeyringFile, parseKeyring } from '../../src/sign/keyring.js';
import { createSimpleSignature, loadSigningKeyFile } from '../../src/sign/openpgp-sign.js';
import { verifySignedMessage } from '../../src/sign/openpgp-verify.js';
import { buildPayload, parsePayload } from '../../src/sign/simple-signing.js';
import { type Gpg, newGpg } from './gpg.js';

const D = `sha256:${'12'.repeat(32)}`;

async function refused(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isLadingError(e), `expected a LadingError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

async function gpgSign(gpg: Gpg, fpr: string, payload: Uint8Array, extra: string[] = []): Promise<Buffer> {
  const input = join(gpg.home, `payload-${Math.random().toString(16).slice(2)}.json`);
  await writeFile(input, payload);
  await gpg.ok(['--local-user', fpr, ...extra, '--output', `${input}.sig`, input]);
  return readFile(`${input}.sig`);
}

/**
 * A signed message made by hand at `date` with openpgp.js's packet API, which (unlike gpg or
 * openpgp.sign) does not refuse a key that has expired by then: how a signature made after expiry looks.
 */
async function signAt(secretKeyFile: string, payload: Uint8Array, date: Date): Promise<Uint8Array> {
  const key = await openpgp.readPrivateKey({ armoredKey: await readFile(secretKeyFile, 'utf8') });
  // openpgp.js's packet classes are typed narrower than they are; this hand-assembly needs the JS API.
  type Loose = { new (...args: unknown[]): Record<string, (...a: unknown[]) => unknown> & Record<string, unknown> };
  const literal = new (openpgp.LiteralDataPacket as unknown as Loose)(date);
  literal.setBytes?.(payload, openpgp.enums.literal.binary);
  const sig = new openpgp.SignaturePacket();
  sig.signatureType = openpgp.enums.signature.binary;
  sig.publicKeyAlgorithm = key.keyPacket.algorithm;
  sig.hashAlgorithm = openpgp.enums.hash.sha256;
  await (sig.sign as unknown as (...a: unknown[]) => Promise<void>).call(sig, key.keyPacket, literal, date, false, openpgp.config);
  const ops = new openpgp.OnePassSignaturePacket();
  Object.assign(ops, {
    version: 3,
    signatureType: sig.signatureType,
    hashAlgorithm: sig.hashAlgorithm,
    publicKeyAlgorithm: sig.publicKeyAlgorithm,
    issuerKeyID: sig.issuerKeyID,
    flags: 1,
  });
  const list = new openpgp.PacketList();
  list.push(ops as never, literal as never, sig as never);
  return list.write();
}

describe('OpenPGP with gpg as the peer', () => {
  it('gpg --sign (compressed) verifies with armored and binary keyrings', async () => {
    const gpg = await newGpg();
    const fpr = await gpg.genKey('Release Key <release@example.com>');
    const payload = buildPayload({ digest: D, identity: 'example.com/app:1' });
    const signature = await gpgSign(gpg, fpr, payload, ['--sign', '--compress-algo', 'zlib']);
    for (const armor of [true, false]) {
      const keyring = await loadKeyringFile(await gpg.exportPublic(fpr, armor));
      const r = await verifySignedMessage(signature, [keyring]);
      assert.equal(r.signers[0]?.fingerprint, fpr);
      assert.equal(parsePayload(r.payload).digest, D);
    }
    // gpg --armor --sign output is an armored signed message: accepted too.
    const armored = await gpgSign(gpg, fpr, payload, ['--armor', '--sign']);
    assert.equal((await verifySignedMessage(armored, [await loadKeyringFile(await gpg.exportPublic(fpr))])).signers.length, 1);
  });

  it('a signature by a separate signing subkey verifies; the keyring names the primary key', async () => {
    const gpg = await newGpg();
    const primary = await gpg.genKey('Cert Only <cert@example.com>', { usage: 'cert' });
    await gpg.ok(['--pinentry-mode', 'loopback', '--passphrase', '', '--quick-add-key', primary, 'ed25519', 'sign']);
    const signature = await gpgSign(gpg, primary, buildPayload({ digest: D, identity: 'example.com/app:1' }), ['--sign']);
    const r = await verifySignedMessage(signature, [await loadKeyringFile(await gpg.exportPublic(primary))]);
    assert.equal(r.signers[0]?.fingerprint, primary);
    assert.notEqual(r.signers[0]?.keyID, primary.slice(-16));
  });

  it("Lading's signatures verify with gpg and decrypt to the payload", async () => {
    const gpg = await newGpg();
    const fpr = await gpg.genKey('Signer <signer@example.com>');
    const key = await loadSigningKeyFile(await gpg.exportSecret(fpr));
    const bytes = await createSimpleSignature({ digest: D, identity: 'example.com/app:1', key });
    const file = join(gpg.home, 'lading.sig');
    await writeFile(file, bytes);
    const status = await gpg.run(['--status-fd', '1', '--verify', file]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`\\[GNUPG:\\] VALIDSIG ${fpr}`));
    const out = join(gpg.home, 'payload.out');
    await gpg.ok(['--output', out, '--decrypt', file]);
    assert.equal(parsePayload(await readFile(out)).identity, 'example.com/app:1');
    // and it is a signed message, not a detached or cleartext one
    const packets = await gpg.ok(['--list-packets', file]);
    assert.match(packets, /:onepass_sig packet:/);
    assert.match(packets, /:literal data packet:/);
  });

  it('passphrase-protected secret keys need the passphrase', async () => {
    const gpg = await newGpg();
    const fpr = await gpg.genKey('Locked <locked@example.com>', { passphrase: 'correct horse' });
    const file = await gpg.exportSecret(fpr, 'correct horse');
    await refused(loadSigningKeyFile(file), /protected by a passphrase: pass --passphrase-file FILE or set LADING_PASSPHRASE/);
    await refused(loadSigningKeyFile(file, 'wrong'), /cannot be unlocked with the passphrase given/);
    const key = await loadSigningKeyFile(file, 'correct horse');
    const bytes = await createSimpleSignature({ digest: D, identity: 'example.com/app:1', key });
    assert.equal((await verifySignedMessage(bytes, [await loadKeyringFile(await gpg.exportPublic(fpr))])).signers[0]?.fingerprint, fpr);
    await refused(loadSigningKeyFile(await gpg.exportPublic(fpr)), /is a public key; signing needs the secret key/);
  });

  describe('key expiry: a signature counts if the key was valid when it signed', () => {
    it('signed while valid, verified after the key expired: accepted', async () => {
      const gpg = await newGpg();
      const fpr = await gpg.genKey('Short Lived <short@example.com>', { at: '20200101T000000', expire: '1d' });
      const signature = await gpgSign(gpg, fpr, buildPayload({ digest: D, identity: 'example.com/app:1' }), [
        '--faked-system-time',
        '20200101T020000!',
        '--sign',
      ]);
      const keyring = await loadKeyringFile(await gpg.exportPublic(fpr));
      assert.equal(((await keyring.keys[0]?.getExpirationTime()) as Date).toISOString(), '2020-01-02T00:00:00.000Z');
      const r = await verifySignedMessage(signature, [keyring]);
      assert.equal(r.signers[0]?.created.toISOString(), '2020-01-01T02:00:00.000Z');
    });

    it('signed after the key had expired: refused', async () => {
      const gpg = await newGpg();
      const fpr = await gpg.genKey('Short Lived <short@example.com>', { at: '20200101T000000', expire: '1d' });
      // gpg itself refuses to sign with the expired key at the later time:
      const gpgTry = await gpg.run([
        '--faked-system-time',
        '20200103T000000!',
        '--local-user',
        fpr,
        '--sign',
        '--output',
        join(gpg.home, 'x'),
        join(gpg.home, 'gpg.conf'),
      ]);
      assert.notEqual(gpgTry.code, 0);
      const late = await signAt(
        await gpg.exportSecret(fpr),
        buildPayload({ digest: D, identity: 'example.com/app:1' }),
        new Date('2020-01-03T00:00:00Z'),
      );
      await refused(
        verifySignedMessage(late, [await loadKeyringFile(await gpg.exportPublic(fpr))]),
        /the signing key had already expired when the signature was made/,
      );
      // the same hand-made construction at a valid time is accepted, so the refusal is about the date
      const early = await signAt(
        await gpg.exportSecret(fpr),
        buildPayload({ digest: D, identity: 'example.com/app:1' }),
        new Date('2020-01-01T12:00:00Z'),
      );
      assert.equal((await verifySignedMessage(early, [await loadKeyringFile(await gpg.exportPublic(fpr))])).signers.length, 1);
    });

    it('a signature dated in the future is refused', async () => {
      const gpg = await newGpg();
      const fpr = await gpg.genKey('Now <now@example.com>');
      const future = await signAt(
        await gpg.exportSecret(fpr),
        buildPayload({ digest: D, identity: 'example.com/app:1' }),
        new Date(Date.now() + 3600_000),
      );
      await refused(verifySignedMessage(future, [await loadKeyringFile(await gpg.exportPublic(fpr))]), /creation time in the future/);
    });
  });

  it('a revoked key is refused, even for what it signed before the revocation', async () => {
    const gpg = await newGpg();
    const fpr = await gpg.genKey('Revoked <revoked@example.com>');
    const signature = await gpgSign(gpg, fpr, buildPayload({ digest: D, identity: 'example.com/app:1' }), ['--sign']);
    const before = await loadKeyringFile(await gpg.exportPublic(fpr, true, 'before.asc'));
    assert.equal((await verifySignedMessage(signature, [before])).signers.length, 1);
    const revs = join(gpg.home, 'openpgp-revocs.d');
    const cert = (await readFile(join(revs, (await readdir(revs))[0] as string), 'utf8')).replace(/^:-----BEGIN/m, '-----BEGIN');
    await gpg.ok(['--import'], cert);
    const after = await loadKeyringFile(await gpg.exportPublic(fpr, true, 'after.asc'));
    await refused(verifySignedMessage(signature, [after]), /revoked/);
  });

  it('an unknown key is named by its key ID', async () => {
    const gpg = await newGpg();
    const a = await gpg.genKey('A <a@example.com>');
    const b = await gpg.genKey('B <b@example.com>');
    const signature = await gpgSign(gpg, a, buildPayload({ digest: D, identity: 'example.com/app:1' }), ['--sign']);
    await refused(
      verifySignedMessage(signature, [await loadKeyringFile(await gpg.exportPublic(b), 'b.asc')]),
      new RegExp(`signed by key ${a.slice(-16)}, which is not in keyring b.asc`),
    );
  });

  describe('what is not a signed message is refused, saying what it is', () => {
    it('detached (binary and armored), cleartext, encrypted, a key', async () => {
      const gpg = await newGpg();
      const fpr = await gpg.genKey('Forms <forms@example.com>');
      const keyring = await loadKeyringFile(await gpg.exportPublic(fpr));
      const payload = buildPayload({ digest: D, identity: 'example.com/app:1' });
      await refused(
        verifySignedMessage(await gpgSign(gpg, fpr, payload, ['--detach-sign']), [keyring]),
        /detached signature \(gpg --detach-sign\)/,
      );
      await refused(verifySignedMessage(await gpgSign(gpg, fpr, payload, ['--armor', '--detach-sign']), [keyring]), /detached signature/);
      await refused(
        verifySignedMessage(await gpgSign(gpg, fpr, payload, ['--clearsign']), [keyring]),
        /cleartext-signed message \(gpg --clearsign\)/,
      );
      const input = join(gpg.home, 'secret.json');
      await writeFile(input, payload);
      await gpg.ok(['--pinentry-mode', 'loopback', '--passphrase', 'x', '--symmetric', '--output', `${input}.gpg`, input]);
      await refused(verifySignedMessage(await readFile(`${input}.gpg`), [keyring]), /encrypted message, not a signed one/);
      await refused(verifySignedMessage(await readFile(await gpg.exportPublic(fpr)), [keyring]), /an OpenPGP key, not a signature/);
      await refused(verifySignedMessage(Buffer.from('<html><body>Login</body></html>'), [keyring]), /HTML/);
      await refused(verifySignedMessage(Buffer.from('just text'), [keyring]), /not an OpenPGP message/);
      await refused(verifySignedMessage(new Uint8Array(0), [keyring]), /empty/);
    });

    it('a signature over the size limit is refused before it is parsed', async () => {
      const big = new Uint8Array(100 * 1024 * 1024);
      big[0] = 0xa3;
      const start = process.hrtime.bigint();
      await refused(
        verifySignedMessage(big, [
          await parseKeyring(await readFile(new URL('../fixtures/sign/keyrings/redhat.txt', import.meta.url)), 'redhat'),
        ]),
        /104857600 bytes, over the 1048576-byte limit/,
      );
      assert.ok(process.hrtime.bigint() > start);
    });
  });

  it('keyring files that are not keyrings', async () => {
    await refused(parseKeyring(Buffer.from('hello'), 'x'), /not an OpenPGP keyring/);
    await refused(
      parseKeyring(Buffer.from('-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n'), 'x'),
      /no armored key block/,
    );
    const kbx = Buffer.alloc(32);
    kbx.write('KBXf', 8);
    await refused(parseKeyring(kbx, 'pubring.kbx'), /gpg keybox/);
  });
});
