/**
 * `lading sign` and `lading verify` end to end: simple signatures into files, OpenShift stores and
 * lookaside directories, verified by image, by repo@digest and by bare digest (with no registry
 * reachable), passphrases from a file or LADING_PASSPHRASE, cosign keys (keygen, sign into the layout,
 * verify, a policy with sigstoreSigned); and the bad inputs, each a clear error naming the image, the
 * signature and the reason, with nothing written.
 */
import assert from 'node:assert/strict';
import { readFile, readdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { writeImage } from '../../src/build/image-writer.js';
import { loadSigningKeyFile, signPayload } from '../../src/sign/openpgp-sign.js';
import { buildPayload } from '../../src/sign/simple-signing.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { CLI, type RunResult, lading, ladingOk, run } from '../helpers/run.js';
import { snapshot } from '../helpers/tree.js';
import { tempDir } from '../helpers/tmp.js';
import { newGpg } from './gpg.js';

function ladingEnv(env: Record<string, string>, ...args: string[]): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
}

async function layoutImage(dir: string, content = 'hello\n'): Promise<{ ref: string; digest: string; layout: string }> {
  const layout = join(dir, 'layout');
  const store = await LayoutStore.open(layout, 'write');
  const desc = await writeImage(store, { layers: [{ files: { 'etc/motd': content } }] }, ['v1']);
  await store.close();
  return { ref: `oci:${layout}:v1`, digest: desc.digest, layout };
}

async function setup() {
  const dir = await tempDir();
  const gpg = await newGpg();
  const fpr = await gpg.genKey('CLI Signer <cli@example.com>');
  return { dir, gpg, fpr, secret: await gpg.exportSecret(fpr), keyring: await gpg.exportPublic(fpr), ...(await layoutImage(dir)) };
}

function failed(r: RunResult, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
}

describe('lading sign / verify', () => {
  it('signs into an OpenShift store and verifies by image, by digest, and from the store', async () => {
    const s = await setup();
    const store = join(s.dir, 'store');
    const json = JSON.parse(
      await ladingOk('sign', s.ref, '--identity', 'example.com/app:1', '--key', s.secret, '--store', store, '-o', 'json'),
    ) as { written: string; digest: string };
    assert.equal(json.digest, s.digest);
    assert.equal(json.written, join(store, `sha256=${s.digest.slice(7)}`, 'signature-1'));
    // a second signature goes to the next free N
    await ladingOk('sign', s.digest, '--identity', 'example.com/app:1', '--key', s.secret, '--store', store);
    assert.deepEqual(await readdir(join(store, `sha256=${s.digest.slice(7)}`)), ['signature-1', 'signature-2']);

    const byImage = await ladingOk('verify', s.ref, '--identity', 'example.com/app:1', '--keyring', s.keyring, '--store', store);
    assert.match(byImage, /2 signature\(s\) accepted, identity check repo-digest-or-exact/);
    assert.match(byImage, /signed for example.com\/app:1 by CLI Signer <cli@example.com>/);
    // bare digest: identity not checked (as the CVO), no store or registry contacted
    assert.match(await ladingOk('verify', s.digest, '--keyring', s.keyring, '--store', `file://${store}`), /identity check none/);
    // repo@digest on a registry that does not exist: only the digest is needed
    assert.match(
      await ladingOk(
        'verify',
        `docker://127.0.0.1:9/app@${s.digest}`,
        '--identity',
        'example.com/app:1',
        '--keyring',
        s.keyring,
        '--store',
        store,
      ),
      /accepted/,
    );
    const report = JSON.parse(await ladingOk('verify', s.digest, '--keyring', s.keyring, '--store', store, '-o', 'json')) as {
      verified: boolean;
      signatures: unknown[];
    };
    assert.equal(report.verified, true);
    assert.equal(report.signatures.length, 2);
  });

  it('signs to a file and to a lookaside directory (the repository of the identity)', async () => {
    const s = await setup();
    const file = join(s.dir, 'app.sig');
    await ladingOk('sign', s.ref, '--identity', 'example.com/team/app:1', '--key', s.secret, '--sign-to', file);
    await ladingOk('verify', s.ref, '--identity', 'example.com/team/app:1', '--keyring', s.keyring, '--signature', file);
    const lookaside = join(s.dir, 'lookaside');
    await ladingOk('sign', `docker://example.com/team/app@${s.digest}`, '--key', s.secret, '--lookaside', lookaside);
    assert.deepEqual(await readdir(join(lookaside, 'team')), [`app@sha256=${s.digest.slice(7)}`]);
    await ladingOk('verify', `example.com/team/app@${s.digest}`, '--keyring', s.keyring, '--lookaside', lookaside);
    // stdout
    const r = await lading('sign', s.digest, '--identity', 'example.com/team/app:1', '--key', s.secret, '--sign-to', '-');
    assert.equal(r.code, 0);
    assert.ok(r.stdout.length > 100);
  });

  it('passphrases from --passphrase-file and LADING_PASSPHRASE', async () => {
    const dir = await tempDir();
    const gpg = await newGpg();
    const fpr = await gpg.genKey('Locked <locked@example.com>', { passphrase: 'open sesame' });
    const secret = await gpg.exportSecret(fpr, 'open sesame');
    const { ref } = await layoutImage(dir);
    const store = join(dir, 'store');
    failed(
      await lading('sign', ref, '--identity', 'example.com/app:1', '--key', secret, '--store', store),
      1,
      /protected by a passphrase: pass --passphrase-file FILE or set LADING_PASSPHRASE/,
    );
    failed(
      await ladingEnv({ LADING_PASSPHRASE: 'nope' }, 'sign', ref, '--identity', 'example.com/app:1', '--key', secret, '--store', store),
      1,
      /cannot be unlocked with the passphrase given/,
    );
    assert.deepEqual(await readdir(dir), ['layout']); // nothing written
    const r = await ladingEnv(
      { LADING_PASSPHRASE: 'open sesame' },
      'sign',
      ref,
      '--identity',
      'example.com/app:1',
      '--key',
      secret,
      '--store',
      store,
    );
    assert.equal(r.code, 0, r.stderr);
    const pass = join(dir, 'pass.txt');
    await writeFile(pass, 'open sesame\n');
    await ladingOk('sign', ref, '--identity', 'example.com/app:1', '--key', secret, '--passphrase-file', pass, '--store', store);
    assert.match(
      await ladingOk('verify', ref, '--identity', 'example.com/app:1', '--keyring', await gpg.exportPublic(fpr), '--store', store),
      /2 signature\(s\) accepted/,
    );
  });

  it('usage errors exit 2', async () => {
    const s = await setup();
    failed(await lading('sign', s.ref, '--key', s.secret, '--store', join(s.dir, 'x')), 2, /names no registry reference: pass --identity/);
    failed(
      await lading('sign', s.ref, '--identity', 'a.io/b:1', '--key', s.secret),
      2,
      /exactly one of --sign-to FILE, --lookaside DIR and --store DIR/,
    );
    failed(
      await lading('sign', s.ref, '--identity', 'a.io/b:1', '--key', s.secret, '--registry'),
      2,
      /simple signatures are not stored in registries/,
    );
    failed(await lading('verify', s.ref, '--keyring', s.keyring), 2, /say where the signatures are/);
    failed(await lading('verify', s.ref, '--signature', 'x'), 2, /exactly one of --keyring/);
    failed(await lading('verify', s.digest, '--keyring', s.keyring, '--lookaside', s.dir), 2, /--lookaside needs the image's repository/);
    failed(
      await lading('verify', s.digest, '--keyring', s.keyring, '--store', s.dir, '--identity-check', 'sloppy'),
      2,
      /--identity-check takes/,
    );
    assert.deepEqual((await readdir(s.dir)).sort(), ['layout']);
  });

  describe('bad signatures: one line naming the image, the signature and the reason', () => {
    it('tampered payloads: an extra critical field, a wrong type, another digest', async () => {
      const s = await setup();
      const key = await loadSigningKeyFile(s.secret);
      const write = async (name: string, payload: string) => {
        const path = join(s.dir, name);
        await writeFile(path, await signPayload(Buffer.from(payload), key));
        return path;
      };
      const good = Buffer.from(buildPayload({ digest: s.digest, identity: 'example.com/app:1' })).toString();
      const extra = await write('extra.sig', good.replace('"type":', '"evil":true,"type":'));
      const type = await write('type.sig', good.replace('atomic container signature', 'cosign container image signature'));
      const other = await write('other.sig', good.replace(s.digest, `sha256:${'9'.repeat(64)}`));
      const before = await snapshot(s.dir);
      const v = (sig: string) => lading('verify', s.ref, '--identity', 'example.com/app:1', '--keyring', s.keyring, '--signature', sig);
      failed(
        await v(extra),
        1,
        new RegExp(`cannot verify oci:.*:v1 \\(${s.digest}\\): signature ${extra}: critical has an unknown member "evil"`),
      );
      failed(
        await v(type),
        1,
        /signature .*type.sig: critical.type is "cosign container image signature", expected "atomic container signature"/,
      );
      failed(await v(other), 1, new RegExp(`signature .*other.sig: it signs sha256:9{64}, not ${s.digest}`));
      failed(
        await lading(
          'verify',
          s.ref,
          '--identity',
          'example.com/app:1',
          '--keyring',
          s.keyring,
          '--signature',
          extra,
          '--signature',
          other,
        ),
        1,
        /none of 2 signatures is valid: signature .*extra.sig: .*; signature .*other.sig: /,
      );
      assert.equal(await snapshot(s.dir), before);
    });

    it('an unknown key, a detached and a cleartext signature, a 100 MiB file', async () => {
      const s = await setup();
      const stranger = await s.gpg.genKey('Stranger <stranger@example.com>');
      const payload = join(s.dir, 'payload.json');
      await writeFile(payload, buildPayload({ digest: s.digest, identity: 'example.com/app:1' }));
      const sign = async (name: string, args: string[], by = s.fpr) => {
        await s.gpg.ok(['--local-user', by, ...args, '--output', join(s.dir, name), payload]);
        return join(s.dir, name);
      };
      const v = (sig: string) => lading('verify', s.digest, '--keyring', s.keyring, '--signature', sig);
      failed(
        await v(await sign('stranger.sig', ['--sign'], stranger)),
        1,
        new RegExp(`signature .*stranger.sig: it was signed by key ${stranger.slice(-16)}, which is not in keyring`),
      );
      failed(
        await v(await sign('detached.sig', ['--detach-sign'])),
        1,
        /signature .*detached.sig: it is a detached signature \(gpg --detach-sign\); a signed message \(gpg --sign\) is expected/,
      );
      failed(await v(await sign('clear.asc', ['--clearsign'])), 1, /signature .*clear.asc: it is a cleartext-signed message/);
      const big = join(s.dir, 'big.sig');
      await writeFile(big, '');
      await truncate(big, 100 * 1024 * 1024);
      failed(await v(big), 1, /signature .*big.sig is 104857600 bytes, over the 1048576-byte limit: not a signature/);
    });

    it('a store answering 500 or an HTML page', async () => {
      const s = await setup();
      const server = createServer((req, res) => {
        if (req.url?.startsWith('/500/')) res.writeHead(500).end('boom');
        else res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      after(() => new Promise<void>((r) => server.close(() => r())));
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      failed(
        await lading('verify', s.digest, '--keyring', s.keyring, '--store', `${base}/500`),
        1,
        /signature store http:.*\/500 answered 500 for .*\/500\/sha256=[0-9a-f]{64}\/signature-1/,
      );
      failed(
        await lading('verify', s.digest, '--keyring', s.keyring, '--store', `${base}/html`),
        1,
        /answered an HTML page for .*signature-1, not a signature/,
      );
    });
  });

  describe('cosign keys', () => {
    it('keygen, sign into the layout, verify with the public key and with a sigstoreSigned policy', async () => {
      const dir = await tempDir();
      const { ref, layout, digest } = await layoutImage(dir, 'cosign\n');
      const env = { COSIGN_PASSWORD: 'pw' };
      const r = await ladingEnv(env, 'keygen', '--cosign', '--output-prefix', join(dir, 'k'));
      assert.equal(r.code, 0, r.stderr);
      const signed = await ladingEnv(env, 'sign', ref, '--identity', 'example.com/app', '--cosign-key', join(dir, 'k.key'), '-o', 'json');
      assert.equal(signed.code, 0, signed.stderr);
      assert.match(signed.stdout, new RegExp(`sha256-${digest.slice(7)}.sig`));
      const store = await LayoutStore.open(layout, 'read');
      assert.ok((await store.tags()).includes(`sha256-${digest.slice(7)}.sig`));
      await store.close();

      assert.match(
        await ladingOk('verify', ref, '--identity', 'example.com/app:1', '--cosign-pub', join(dir, 'k.pub')),
        /1 cosign signature\(s\)/,
      );
      failed(
        await lading('verify', ref, '--identity', 'example.com/other:1', '--cosign-pub', join(dir, 'k.pub')),
        1,
        /cosign signatures name example.com\/app/,
      );
      await ladingEnv({ COSIGN_PASSWORD: '' }, 'keygen', '--cosign', '--output-prefix', join(dir, 'other'));
      failed(await lading('verify', ref, '--cosign-pub', join(dir, 'other.pub')), 1, /no valid cosign signature/);
      failed(
        await ladingEnv({ COSIGN_PASSWORD: 'wrong' }, 'sign', ref, '--identity', 'example.com/app', '--cosign-key', join(dir, 'k.key')),
        1,
        /./,
      );

      const policy = join(dir, 'policy.json');
      await writeFile(
        policy,
        JSON.stringify({
          default: [{ type: 'reject' }],
          transports: {
            docker: { 'example.com/app': [{ type: 'sigstoreSigned', keyPath: 'k.pub', signedIdentity: { type: 'matchRepository' } }] },
          },
        }),
      );
      assert.match(await ladingOk('verify', ref, '--identity', 'example.com/app:1', '--policy', policy), /scope docker:example.com\/app/);
      await writeFile(policy, (await readFile(policy, 'utf8')).replace('k.pub', 'other.pub'));
      failed(
        await lading('verify', ref, '--identity', 'example.com/app:1', '--policy', policy),
        1,
        /policy rejects .* sigstoreSigned: no valid cosign signature/,
      );
    });
  });
});
