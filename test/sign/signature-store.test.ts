/**
 * Signature stores over file://, plain paths and HTTP: reading signature-1, 2, … until one is missing,
 * writing the next free N (concurrent writers never share an N), and the bad stores: one answering 500,
 * one answering an HTML page, one serving a 100 MiB "signature", a redirect, and lookaside paths that
 * could climb out of the store (`..`), each refused with the URL and the reason, nothing written.
 * Also carrying lookaside signatures between stores (copyLookasideSignatures).
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { copyLookasideSignatures } from '../../src/sign/lookaside-copy.js';
import { checkRepositoryPath, readSignatures, signatureDirectory, writeSignature } from '../../src/sign/signature-store.js';
import { snapshot } from '../helpers/tree.js';
import { tempDir } from '../helpers/tmp.js';

const D = `sha256:${'3c'.repeat(32)}`;
const HEX = D.slice(7);
const SIG = await readFile(new URL('../fixtures/sign/release-4.15.0/signature-1', import.meta.url));

interface Served {
  base: string;
  log: string[];
}

/** A loopback HTTP server answering by path; anything not in `routes` is a 404. */
async function serve(routes: Record<string, (res: ServerResponse) => void>): Promise<Served> {
  const log: string[] = [];
  const server: Server = createServer((req, res) => {
    log.push(req.url ?? '');
    const route = routes[req.url ?? ''];
    if (route === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    route(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  server.unref();
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/sigs`, log };
}

const bytes =
  (b: Uint8Array, type = 'application/octet-stream') =>
  (res: ServerResponse) =>
    res.writeHead(200, { 'content-type': type, 'content-length': String(b.byteLength) }).end(b);

async function fails(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isLadingError(e), `expected a LadingError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('signature stores', () => {
  it('layouts: lookaside and OpenShift, over paths and URLs', () => {
    assert.equal(signatureDirectory({ layout: 'openshift', base: '/s' }, { digest: D }), `/s/sha256=${HEX}`);
    assert.equal(
      signatureDirectory({ layout: 'lookaside', base: '/s/' }, { digest: D, repository: 'library/busybox' }),
      `/s/library/busybox@sha256=${HEX}`,
    );
    assert.equal(
      signatureDirectory({ layout: 'lookaside', base: 'https://h/x/' }, { digest: D, repository: 'a/b' }),
      `https://h/x/a/b@sha256=${HEX}`,
    );
    assert.equal(signatureDirectory({ layout: 'openshift', base: 'file:///tmp/s' }, { digest: D }), `/tmp/s/sha256=${HEX}`);
    assert.throws(() => signatureDirectory({ layout: 'lookaside', base: '/s' }, { digest: D }), /needs the image's repository/);
    assert.throws(() => signatureDirectory({ layout: 'openshift', base: 'ftp://h/x' }, { digest: D }), /unsupported signature store/);
  });

  it('refuses lookaside paths that could leave the store', async () => {
    for (const bad of ['../etc', 'a/../../b', 'a/./b', '/abs', 'a//b', 'a/b/..', 'A/b', 'a/b%2e']) {
      assert.throws(
        () => checkRepositoryPath(bad),
        (e: unknown) => isLadingError(e, 'UNSAFE_PATH') && e.message.includes(JSON.stringify(bad)),
        bad,
      );
    }
    const dir = await tempDir();
    const before = await snapshot(dir);
    await fails(
      writeSignature({ layout: 'lookaside', base: dir }, { digest: D, repository: '../../escape' }, SIG),
      'UNSAFE_PATH',
      /refusing lookaside path for repository "..\/..\/escape": it contains ".."/,
    );
    await fails(copyLookasideSignatures({ from: dir, to: dir, repo: 'a/../b', digest: D }), 'UNSAFE_PATH', /".."/);
    assert.equal(await snapshot(dir), before);
  });

  it('reads a directory store until a signature is missing; writes the next free N', async () => {
    const dir = await tempDir();
    const store = { layout: 'openshift' as const, base: pathToFileURL(dir).href };
    assert.deepEqual(await readSignatures(store, { digest: D }), []);
    const w = await Promise.all([1, 2, 3, 4].map((i) => writeSignature(store, { digest: D }, Buffer.from(`sig ${i}`))));
    assert.deepEqual(w.map((x) => x.index).sort(), [1, 2, 3, 4]);
    // signature-6 past a gap is not read: readers stop at the first missing N, as upstream
    await writeFile(join(dir, `sha256=${HEX}`, 'signature-6'), 'orphan');
    const r = await readSignatures({ layout: 'openshift', base: dir }, { digest: D });
    assert.deepEqual(
      r.map((x) => x.index),
      [1, 2, 3, 4],
    );
    assert.deepEqual(new Set(r.map((x) => Buffer.from(x.bytes).toString())), new Set(['sig 1', 'sig 2', 'sig 3', 'sig 4']));
    assert.deepEqual((await readdir(join(dir, `sha256=${HEX}`))).sort(), [
      'signature-1',
      'signature-2',
      'signature-3',
      'signature-4',
      'signature-6',
    ]);
    await fails(
      writeSignature({ layout: 'openshift', base: 'http://127.0.0.1:1/x' }, { digest: D }, SIG),
      'USAGE',
      /only local directories/,
    );
  });

  it('a local signature file over the size limit is refused without reading it', async () => {
    const dir = await tempDir();
    const sigDir = join(dir, `sha256=${HEX}`);
    await mkdir(sigDir, { recursive: true });
    const { truncate } = await import('node:fs/promises');
    await writeFile(join(sigDir, 'signature-1'), '');
    await truncate(join(sigDir, 'signature-1'), 100 * 1024 * 1024);
    await fails(
      readSignatures({ layout: 'openshift', base: dir }, { digest: D }),
      'SIGNATURE_STORE',
      /signature-1 is 104857600 bytes, over the 1048576-byte limit/,
    );
  });

  describe('over HTTP', () => {
    it('reads signature-1, -2 and stops at the 404', async () => {
      const s = await serve({
        [`/sigs/sha256=${HEX}/signature-1`]: bytes(SIG),
        [`/sigs/sha256=${HEX}/signature-2`]: bytes(Buffer.from('two')),
      });
      const r = await readSignatures({ layout: 'openshift', base: s.base }, { digest: D });
      assert.deepEqual(
        r.map((x) => x.index),
        [1, 2],
      );
      assert.deepEqual(Buffer.from(r[0]?.bytes ?? []), SIG);
      assert.equal(r[0]?.location, `${s.base}/sha256=${HEX}/signature-1`);
      assert.deepEqual(
        s.log,
        [1, 2, 3].map((n) => `/sigs/sha256=${HEX}/signature-${n}`),
      );
    });

    it('follows redirects (a store behind a CDN)', async () => {
      const s = await serve({
        [`/sigs/sha256=${HEX}/signature-1`]: (res) => res.writeHead(302, { location: '/cdn/one' }).end(),
        '/cdn/one': bytes(SIG),
      });
      assert.equal((await readSignatures({ layout: 'openshift', base: s.base }, { digest: D })).length, 1);
    });

    it('a store answering 500 is an error naming the URL', async () => {
      const s = await serve({
        [`/sigs/sha256=${HEX}/signature-1`]: bytes(SIG),
        [`/sigs/sha256=${HEX}/signature-2`]: (res) => res.writeHead(500).end('oops'),
      });
      await fails(
        readSignatures({ layout: 'openshift', base: s.base }, { digest: D }),
        'SIGNATURE_STORE',
        new RegExp(`answered 500 for ${s.base.replace(/[.]/g, '\\.')}/sha256=${HEX}/signature-2`),
      );
    });

    it('a store answering an HTML page is an error, by content type or by content', async () => {
      const html = Buffer.from('<!DOCTYPE html><html><body>Please log in</body></html>');
      const typed = await serve({ [`/sigs/sha256=${HEX}/signature-1`]: bytes(html, 'text/html; charset=utf-8') });
      await fails(
        readSignatures({ layout: 'openshift', base: typed.base }, { digest: D }),
        'SIGNATURE_STORE',
        /answered an HTML page for .*signature-1, not a signature/,
      );
      const untyped = await serve({ [`/sigs/sha256=${HEX}/signature-1`]: bytes(html) });
      await fails(readSignatures({ layout: 'openshift', base: untyped.base }, { digest: D }), 'SIGNATURE_STORE', /answered an HTML page/);
    });

    it('a 100 MiB "signature" is refused early: by Content-Length, or while streaming without one', async () => {
      const big = Buffer.alloc(100 * 1024 * 1024, 0x41);
      const declared = await serve({ [`/sigs/sha256=${HEX}/signature-1`]: bytes(big) });
      await fails(
        readSignatures({ layout: 'openshift', base: declared.base }, { digest: D }),
        'SIGNATURE_STORE',
        /is 104857600 bytes, over the 1048576-byte limit/,
      );
      let sent = 0;
      const chunked = await serve({
        [`/sigs/sha256=${HEX}/signature-1`]: (res) => {
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          const chunk = Buffer.alloc(64 * 1024, 0x42);
          const pump = (): void => {
            while (sent < big.length) {
              sent += chunk.length;
              if (!res.write(chunk)) {
                res.once('drain', pump);
                return;
              }
            }
            res.end();
          };
          res.on('close', () => (sent = big.length));
          pump();
        },
      });
      await fails(readSignatures({ layout: 'openshift', base: chunked.base }, { digest: D }), 'SIGNATURE_STORE', /more than 1048576 bytes/);
    });

    it('an unreachable store is an error naming it', async () => {
      await fails(
        readSignatures({ layout: 'openshift', base: 'http://127.0.0.1:9/sigs' }, { digest: D }),
        'SIGNATURE_STORE',
        /cannot reach signature store http:\/\/127.0.0.1:9\/sigs/,
      );
    });
  });

  describe('carrying lookaside signatures (copy and mirror)', () => {
    it('copies what the target lacks, under the target repository, once', async () => {
      const src = await tempDir();
      const dst = await tempDir();
      const other = Buffer.from(await readFile(new URL('../fixtures/sign/multi-identity/signature-1', import.meta.url)));
      await writeSignature({ layout: 'lookaside', base: src }, { digest: D, repository: 'ns/app' }, SIG);
      await writeSignature({ layout: 'lookaside', base: src }, { digest: D, repository: 'ns/app' }, other);
      const first = await copyLookasideSignatures({ from: src, to: dst, repo: 'ns/app', toRepo: 'mirror/ns/app', digest: D });
      assert.deepEqual([first.found, first.copied], [2, 2]);
      assert.deepEqual(await readdir(join(dst, 'mirror/ns', `app@sha256=${HEX}`)), ['signature-1', 'signature-2']);
      const again = await copyLookasideSignatures({ from: src, to: dst, repo: 'ns/app', toRepo: 'mirror/ns/app', digest: D });
      assert.deepEqual([again.found, again.copied], [2, 0]);
      // nothing at the source: nothing to do, nothing created
      const none = await copyLookasideSignatures({ from: src, to: dst, repo: 'ns/other', digest: D });
      assert.equal(none.copied, 0);
      assert.deepEqual((await readdir(dst)).sort(), ['mirror']);
    });

    it('reads the source over HTTP', async () => {
      const s = await serve({ [`/sigs/ns/app@sha256=${HEX}/signature-1`]: bytes(SIG) });
      const dst = await tempDir();
      const r = await copyLookasideSignatures({ from: s.base, to: dst, repo: 'ns/app', digest: D });
      assert.equal(r.copied, 1);
      assert.deepEqual(await readFile(join(dst, 'ns', `app@sha256=${HEX}`, 'signature-1')), SIG);
    });

    it('a source holding something that is not a signature: nothing is written', async () => {
      const src = await tempDir();
      const dst = await tempDir();
      await writeSignature({ layout: 'lookaside', base: src }, { digest: D, repository: 'ns/app' }, SIG);
      await writeSignature(
        { layout: 'lookaside', base: src },
        { digest: D, repository: 'ns/app' },
        Buffer.from('-----BEGIN PGP SIGNATURE-----\n'),
      );
      const before = await snapshot(dst);
      await fails(
        copyLookasideSignatures({ from: src, to: dst, repo: 'ns/app', digest: D }),
        'SIGNATURE',
        /signature-2: it is a detached signature/,
      );
      assert.equal(await snapshot(dst), before);
    });
  });
});
