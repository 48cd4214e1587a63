/**
 * Cosign key files against values made without Lading: the published NaCl secretbox vector, scrypt from
 * `openssl kdf` and python3's hashlib, keys and signatures from openssl, a key file written by cosign's
 * own Go code (conforma fixture), and `lading keygen --cosign` end to end (files, modes, password
 * sources, refusals, the terminal prompt through a real pty).
 */
import assert from 'node:assert/strict';
import { createPublicKey, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import nacl from 'tweetnacl';
import { isLadingError } from '../../src/errors.js';
import { deriveBoxKey, pemEncode } from '../../src/sign/cosign/key-file.js';
import { generateCosignKeyPair, loadCosignPrivateKey, loadCosignPublicKey } from '../../src/sign/cosign/index.js';
import { CLI, ok, run } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

const FIXTURES = new URL('../fixtures/cosign/', import.meta.url);
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

/** Rejects with a LadingError of `code` whose message matches `pattern`. */
async function rejectsWith(p: Promise<unknown> | (() => unknown), code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(
    async () => (typeof p === 'function' ? p() : p),
    (e: unknown) => {
      assert.ok(isLadingError(e), `expected a LadingError, got ${String(e)}`);
      assert.equal(e.code, code);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

/** scrypt by openssl (N, r, p as cosign), hex salt in, raw key out. */
async function opensslScrypt(password: string, salt: Uint8Array, n = 32768): Promise<Buffer> {
  const out = await ok(
    'openssl',
    'kdf',
    '-keylen',
    '32',
    '-kdfopt',
    `pass:${password}`,
    '-kdfopt',
    `hexsalt:${Buffer.from(salt).toString('hex')}`,
    '-kdfopt',
    `n:${n}`,
    '-kdfopt',
    'r:8',
    '-kdfopt',
    'p:1',
    '-kdfopt',
    'maxmem_bytes:268435456',
    'SCRYPT',
  );
  return Buffer.from(out.trim().replace(/:/g, ''), 'hex');
}

/** scrypt by python3's hashlib (OpenSSL underneath, but another caller and parameter path). */
async function pythonScrypt(password: string, salt: Uint8Array, n: number): Promise<Buffer> {
  const code = `import hashlib,sys;print(hashlib.scrypt(sys.argv[1].encode(),salt=bytes.fromhex(sys.argv[2]),n=int(sys.argv[3]),r=8,p=1,maxmem=268435456,dklen=32).hex())`;
  const out = await ok('python3', '-c', code, password, Buffer.from(salt).toString('hex'), String(n));
  return Buffer.from(out.trim(), 'hex');
}

/** Decrypts a cosign key file without Lading: PEM and JSON by hand, scrypt by python3, secretbox by tweetnacl. */
async function independentDecrypt(pem: string, password: string): Promise<Buffer> {
  const body = /-----BEGIN [A-Z ]+-----\n([\s\S]*?)-----END/.exec(pem)?.[1];
  assert.ok(body !== undefined, 'no PEM body');
  const env = JSON.parse(Buffer.from(body.replace(/\n/g, ''), 'base64').toString('utf8')) as {
    kdf: { params: { N: number }; salt: string };
    cipher: { nonce: string };
    ciphertext: string;
  };
  const key = await pythonScrypt(password, Buffer.from(env.kdf.salt, 'base64'), env.kdf.params.N);
  const plain = nacl.secretbox.open(Buffer.from(env.ciphertext, 'base64'), Buffer.from(env.cipher.nonce, 'base64'), key);
  assert.ok(plain !== null, 'secretbox.open failed');
  return Buffer.from(plain);
}

/** The PKIX public key PEM of a DER PKCS#8 private key, by openssl. */
async function opensslPublicOf(dir: string, pkcs8: Buffer): Promise<string> {
  const path = join(dir, `k-${randomBytes(4).toString('hex')}.der`);
  await writeFile(path, pkcs8);
  return ok('openssl', 'pkey', '-inform', 'DER', '-in', path, '-pubout');
}

/** An openssl EC key: PEM private key, PKIX public key (uncompressed or compressed point), PKCS#8 DER. */
async function opensslKey(dir: string, curve = 'prime256v1', form: 'uncompressed' | 'compressed' = 'uncompressed') {
  const name = join(dir, `${curve}-${randomBytes(4).toString('hex')}`);
  await ok('openssl', 'ecparam', '-name', curve, '-genkey', '-noout', '-out', `${name}.pem`);
  await ok('openssl', 'ec', '-in', `${name}.pem`, '-pubout', '-conv_form', form, '-out', `${name}.pub`);
  await ok('openssl', 'pkcs8', '-topk8', '-nocrypt', '-in', `${name}.pem`, '-outform', 'DER', '-out', `${name}.p8`);
  return { pem: `${name}.pem`, pub: `${name}.pub`, pkcs8: await readFile(`${name}.p8`) };
}

/** A cosign key file assembled in the test from a PKCS#8 key: scrypt by openssl, secretbox by tweetnacl. */
async function handMadeKeyFile(pkcs8: Uint8Array, password: string, pemType: string, params = { N: 32768, r: 8, p: 1 }): Promise<string> {
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const key = await opensslScrypt(password, salt, params.N);
  const ciphertext = nacl.secretbox(pkcs8, nonce, key);
  const envelope = `{"kdf":{"name":"scrypt","params":{"N":${params.N},"r":${params.r},"p":${params.p}},"salt":"${salt.toString('base64')}"},"cipher":{"name":"nacl/secretbox","nonce":"${nonce.toString('base64')}"},"ciphertext":"${Buffer.from(ciphertext).toString('base64')}"}`;
  const b64 = Buffer.from(envelope).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${pemType}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${pemType}-----\n`;
}

describe('cosign key encryption primitives', () => {
  it('tweetnacl secretbox reproduces the published NaCl vector (and refuses a flipped bit)', async () => {
    const v = JSON.parse(await readFile(new URL('nacl-secretbox-vector.json', FIXTURES), 'utf8')) as Record<string, string>;
    const box = nacl.secretbox(hex(v.message as string), hex(v.nonce as string), hex(v.key as string));
    assert.equal(Buffer.from(box).toString('hex'), v.box);
    const opened = nacl.secretbox.open(hex(v.box as string), hex(v.nonce as string), hex(v.key as string));
    assert.equal(Buffer.from(opened ?? []).toString('hex'), v.message);
    const tampered = hex(v.box as string);
    tampered[40] = (tampered[40] as number) ^ 1;
    assert.equal(nacl.secretbox.open(tampered, hex(v.nonce as string), hex(v.key as string)), null);
  });

  it('scrypt with cosign parameters matches openssl kdf and python3 hashlib', async () => {
    const salt = randomBytes(32);
    const ours = await deriveBoxKey('correct horse battery staple', salt);
    assert.equal(ours.toString('hex'), (await opensslScrypt('correct horse battery staple', salt)).toString('hex'));
    assert.equal(ours.toString('hex'), (await pythonScrypt('correct horse battery staple', salt, 32768)).toString('hex'));
    // A non-ASCII password is its UTF-8 bytes, as Go's []byte(string).
    const utf8 = await deriveBoxKey('pässwörd✓', salt);
    assert.equal(utf8.toString('hex'), (await pythonScrypt('pässwörd✓', salt, 32768)).toString('hex'));
  });
});

describe('cosign key files', () => {
  it("generateCosignKeyPair writes cosign's PEM and JSON envelope, which decrypts without Lading", async () => {
    const dir = await tempDir();
    const { privatePem, publicPem } = await generateCosignKeyPair('s3cret');
    const lines = privatePem.split('\n');
    assert.equal(lines[0], '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----');
    assert.equal(lines.at(-2), '-----END ENCRYPTED SIGSTORE PRIVATE KEY-----');
    assert.equal(lines.at(-1), '');
    assert.ok(
      lines.slice(1, -3).every((l) => l.length === 64),
      'body lines are 64 characters, as Go writes PEM',
    );
    const json = Buffer.from(lines.slice(1, -2).join(''), 'base64').toString('utf8');
    assert.match(
      json,
      /^\{"kdf":\{"name":"scrypt","params":\{"N":32768,"r":8,"p":1\},"salt":"[A-Za-z0-9+/]{43}="\},"cipher":\{"name":"nacl\/secretbox","nonce":"[A-Za-z0-9+/]{32}"\},"ciphertext":"[A-Za-z0-9+/=]+"\}$/,
    );
    assert.match(publicPem, /^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n$/);
    const pkcs8 = await independentDecrypt(privatePem, 's3cret');
    assert.equal(await opensslPublicOf(dir, pkcs8), publicPem);
    const text = await ok('openssl', 'pkey', '-inform', 'DER', '-in', join(dir, (await readdir(dir))[0] as string), '-noout', '-text');
    assert.match(text, /prime256v1|P-256/);
  });

  it('loads a key file assembled from an openssl key (both PEM headers) and signs what openssl verifies', async () => {
    const dir = await tempDir();
    const k = await opensslKey(dir);
    for (const type of ['ENCRYPTED SIGSTORE PRIVATE KEY', 'ENCRYPTED COSIGN PRIVATE KEY']) {
      const pem = await handMadeKeyFile(k.pkcs8, 'pw', type);
      const key = await loadCosignPrivateKey(`some text before the block\n${pem}`, 'pw');
      const payload = Buffer.from(`payload signed under ${type}`);
      await writeFile(join(dir, 'payload'), payload);
      await writeFile(join(dir, 'sig.der'), sign('sha256', payload, key));
      const out = await ok('openssl', 'dgst', '-sha256', '-verify', k.pub, '-signature', join(dir, 'sig.der'), join(dir, 'payload'));
      assert.equal(out.trim(), 'Verified OK');
    }
  });

  it("reads a key file written by cosign's own Go code (scrypt N=65536, empty password)", async () => {
    const dir = await tempDir();
    const pem = await readFile(new URL('conforma-empty-password.key', FIXTURES), 'utf8');
    const key = await loadCosignPrivateKey(pem, '');
    assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const expected = await opensslPublicOf(dir, await independentDecrypt(pem, ''));
    assert.equal(createPublicKey(key).export({ type: 'spki', format: 'pem' }), expected);
    await rejectsWith(loadCosignPrivateKey(pem, 'not-empty'), 'KEY', /wrong password/);
  });

  it('loadCosignPublicKey takes PKIX P-256 keys with uncompressed and compressed points', async () => {
    const dir = await tempDir();
    for (const form of ['uncompressed', 'compressed'] as const) {
      const k = await opensslKey(dir, 'prime256v1', form);
      const pub = loadCosignPublicKey(await readFile(k.pub, 'utf8'));
      assert.equal(pub.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    }
  });

  it('refuses keys other than ECDSA P-256, and PEM that is not a public key', async () => {
    const dir = await tempDir();
    const p384 = await opensslKey(dir, 'secp384r1');
    await rejectsWith(
      () => loadCosignPublicKey(readFileSync(p384.pub, 'utf8')),
      'KEY',
      /ECDSA on curve secp384r1: Lading signs and verifies cosign signatures with ECDSA P-256 keys only/,
    );
    await ok('openssl', 'genpkey', '-algorithm', 'ed25519', '-out', join(dir, 'ed.pem'));
    const edPub = await ok('openssl', 'pkey', '-in', join(dir, 'ed.pem'), '-pubout');
    await rejectsWith(() => loadCosignPublicKey(edPub), 'KEY', /is ED25519/);
    await ok('openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', join(dir, 'rsa.pem'));
    const rsaPub = await ok('openssl', 'pkey', '-in', join(dir, 'rsa.pem'), '-pubout');
    await rejectsWith(() => loadCosignPublicKey(rsaPub), 'KEY', /is RSA/);
    await rejectsWith(
      () => loadCosignPublicKey(readFileSync(p384.pem, 'utf8')),
      'KEY',
      /PEM "EC PRIVATE KEY" block, expected "PUBLIC KEY"/,
    );
    await rejectsWith(() => loadCosignPublicKey('not a key at all'), 'KEY', /no PEM block found/);
    await rejectsWith(() => loadCosignPublicKey(pemEncode('PUBLIC KEY', Buffer.from('garbage'))), 'KEY', /no valid PKIX public key/);
    // A P-384 private key inside a well-formed cosign envelope is refused after decryption.
    const wrapped = await handMadeKeyFile(p384.pkcs8, 'pw', 'ENCRYPTED SIGSTORE PRIVATE KEY');
    await rejectsWith(loadCosignPrivateKey(wrapped, 'pw'), 'KEY', /ECDSA on curve secp384r1/);
  });

  it('refuses a wrong password, a tampered file, hostile scrypt parameters and malformed envelopes', async () => {
    const { privatePem } = await generateCosignKeyPair('right');
    await rejectsWith(loadCosignPrivateKey(privatePem, 'wrong'), 'KEY', /wrong password \(or the key file is corrupt\)/);
    const envelope = JSON.parse(Buffer.from(privatePem.split('\n').slice(1, -2).join(''), 'base64').toString('utf8')) as {
      kdf: { name: string; params: { N: number } };
      cipher: { name: string };
      ciphertext: string;
    };
    const rewrap = (e: unknown): string => pemEncode('ENCRYPTED SIGSTORE PRIVATE KEY', Buffer.from(JSON.stringify(e)));
    const ct = Buffer.from(envelope.ciphertext, 'base64');
    ct[5] = (ct[5] as number) ^ 0x80;
    await rejectsWith(loadCosignPrivateKey(rewrap({ ...envelope, ciphertext: ct.toString('base64') }), 'right'), 'KEY', /wrong password/);
    await rejectsWith(
      loadCosignPrivateKey(rewrap({ ...envelope, kdf: { ...envelope.kdf, params: { N: 1 << 22, r: 8, p: 1 } } }), 'right'),
      'KEY',
      /unexpected scrypt parameters N=4194304/,
    );
    await rejectsWith(
      loadCosignPrivateKey(rewrap({ ...envelope, kdf: { ...envelope.kdf, name: 'pbkdf2' } }), 'right'),
      'KEY',
      /unsupported kdf "pbkdf2"/,
    );
    await rejectsWith(
      loadCosignPrivateKey(rewrap({ ...envelope, cipher: { name: 'aes-gcm', nonce: 'AAAA' } }), 'right'),
      'KEY',
      /unsupported cipher/,
    );
    await rejectsWith(loadCosignPrivateKey(rewrap({ ...envelope, ciphertext: '%%%' }), 'right'), 'KEY', /ciphertext is not valid base64/);
    await rejectsWith(
      loadCosignPrivateKey(pemEncode('ENCRYPTED SIGSTORE PRIVATE KEY', Buffer.from('{"kdf":')), 'right'),
      'KEY',
      /not JSON/,
    );
    await rejectsWith(
      loadCosignPrivateKey(privatePem.replace(/SIGSTORE/g, 'OPENSSH'), 'right'),
      'KEY',
      /expected "ENCRYPTED SIGSTORE PRIVATE KEY" or "ENCRYPTED COSIGN PRIVATE KEY"/,
    );
  });
});

// --- lading keygen --cosign -------------------------------------------------------------------------

function keygen(args: string[], env: Record<string, string | undefined>) {
  const base = { ...process.env };
  delete base.COSIGN_PASSWORD;
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete base[k];
  return run(process.execPath, [CLI, 'keygen', ...args], {
    env: { ...base, ...Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) },
  });
}

describe('lading keygen --cosign', () => {
  it('writes P.key (0600) and P.pub with the password from COSIGN_PASSWORD; the key signs what openssl verifies with P.pub', async () => {
    const dir = await tempDir();
    const prefix = join(dir, 'release');
    const r = await keygen(['--cosign', '--output-prefix', prefix, '-o', 'json'], { COSIGN_PASSWORD: 'from-env' });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { privateKey: `${prefix}.key`, publicKey: `${prefix}.pub` });
    assert.equal((await stat(`${prefix}.key`)).mode & 0o777, 0o600);
    assert.equal((await stat(`${prefix}.pub`)).mode & 0o777, 0o644);
    assert.deepEqual((await readdir(dir)).sort(), ['release.key', 'release.pub'], 'no temp files left');
    const key = await loadCosignPrivateKey(await readFile(`${prefix}.key`, 'utf8'), 'from-env');
    const payload = Buffer.from('{"critical":{}}');
    await writeFile(join(dir, 'payload'), payload);
    await writeFile(join(dir, 'sig.der'), sign('sha256', payload, key));
    assert.equal(
      (await ok('openssl', 'dgst', '-sha256', '-verify', `${prefix}.pub`, '-signature', join(dir, 'sig.der'), join(dir, 'payload'))).trim(),
      'Verified OK',
    );
  });

  it('an empty COSIGN_PASSWORD is a password (as in cosign); the default prefix is ./cosign', async () => {
    const dir = await tempDir();
    const r = await run(process.execPath, [CLI, 'keygen', '--cosign'], { cwd: dir, env: { ...process.env, COSIGN_PASSWORD: '' } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `Private key written to ${join(dir, 'cosign.key')}\nPublic key written to ${join(dir, 'cosign.pub')}\n`);
    await loadCosignPrivateKey(await readFile(join(dir, 'cosign.key'), 'utf8'), '');
  });

  it('refuses to overwrite without --force (files untouched), and overwrites with it', async () => {
    const dir = await tempDir();
    const prefix = join(dir, 'k');
    await writeFile(`${prefix}.pub`, 'precious');
    const r = await keygen(['--cosign', '--output-prefix', prefix], { COSIGN_PASSWORD: 'x' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /k\.pub already exists: pass --force to overwrite it/);
    assert.equal(await readFile(`${prefix}.pub`, 'utf8'), 'precious');
    assert.deepEqual(await readdir(dir), ['k.pub']);
    const f = await keygen(['--cosign', '--output-prefix', prefix, '--force'], { COSIGN_PASSWORD: 'x' });
    assert.equal(f.code, 0, f.stderr);
    loadCosignPublicKey(await readFile(`${prefix}.pub`, 'utf8'));
    await loadCosignPrivateKey(await readFile(`${prefix}.key`, 'utf8'), 'x');
  });

  it('without COSIGN_PASSWORD and without a terminal, refuses (exit 2) and writes nothing', async () => {
    const dir = await tempDir();
    const r = await keygen(['--cosign', '--output-prefix', join(dir, 'k')], { COSIGN_PASSWORD: undefined });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no password for the cosign key: set COSIGN_PASSWORD \(it may be empty\) or run on a terminal/);
    assert.deepEqual(await readdir(dir), []);
  });

  it('without --cosign, or into a missing directory, fails clearly and writes nothing', async () => {
    const dir = await tempDir();
    const a = await keygen(['--output-prefix', join(dir, 'k')], { COSIGN_PASSWORD: 'x' });
    assert.equal(a.code, 2);
    assert.match(a.stderr, /keygen makes cosign keys only: pass --cosign/);
    const b = await keygen(['--cosign', '--output-prefix', join(dir, 'missing', 'k')], { COSIGN_PASSWORD: 'x' });
    assert.equal(b.code, 1);
    assert.match(b.stderr, /cannot write .*missing\/k\.key: no such file or directory/);
    assert.deepEqual(await readdir(dir), []);
  });

  it('asks for the password twice on a terminal (a real pty), and refuses when the two differ', async () => {
    const dir = await tempDir();
    // python3's pty module gives the CLI a terminal; the answers are typed after each prompt appears.
    const driver = `
import os, pty, select, sys, time
answers = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    env = {k: v for k, v in os.environ.items() if k != 'COSIGN_PASSWORD'}
    os.execve('${process.execPath}', ['node', '${CLI}', 'keygen', '--cosign', '--output-prefix', sys.argv[1]], env)
out = b''
def read_until(pattern, timeout=20):
    global out
    end = time.time() + timeout
    while pattern not in out and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                d = os.read(fd, 4096)
            except OSError:
                return
            if not d:
                return
            out += d
for i, a in enumerate(answers):
    read_until(b'again: ' if i == 1 else b'private key: ')
    os.write(fd, a.encode() + b'\\r')
read_until(b'\\x00', 20)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors='replace'))
sys.exit(os.waitstatus_to_exitcode(status))
`;
    const good = await run('python3', ['-c', driver, join(dir, 'tty'), 'typed-secret', 'typed-secret']);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /Enter password for private key: \r?\nEnter password for private key again: /);
    assert.doesNotMatch(good.stdout, /typed-secret/, 'the password is not echoed');
    await loadCosignPrivateKey(await readFile(join(dir, 'tty.key'), 'utf8'), 'typed-secret');

    const bad = await run('python3', ['-c', driver, join(dir, 'mismatch'), 'one', 'two']);
    assert.equal(bad.code, 2, bad.stdout);
    assert.match(bad.stdout, /the passwords do not match/);
    assert.deepEqual((await readdir(dir)).sort(), ['tty.key', 'tty.pub']);
  });
});
