/**
 * `lading ls docker://HOST/REPO`: long tag lists, printed whole and sorted: from docker-registry 2.8 with
 * 1205 tags (2.8 answers with every tag at once, whatever `n` says), and from a tiny fake registry that
 * pages 100 000 tags the distribution spec's way (`n`/`last`, a Link header to the next page).
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeImage } from '../../src/build/image-writer.js';
import { parseDigest } from '../../src/oci/digest.js';
import { RegistryClient } from '../../src/store/registry/client.js';
import { RegistryStore } from '../../src/store/registry/registry-store.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type RegistryInstance } from '../helpers/registry.js';
import { lading, ladingDigest, ladingOk } from '../helpers/run.js';

describe('lading ls docker://', () => {
  describe('docker-registry with 1205 tags', () => {
    let reg: RegistryInstance;
    let digest: string;
    /** Tags as pushed; `v10` sorts before `v2`, so sorted output is not push order. */
    const tags = Array.from({ length: 1205 }, (_, i) => `v${i}`);

    before(async () => {
      reg = await startRegistry();
      const client = new RegistryClient();
      try {
        const store = new RegistryStore(client, reg.host, 'many/tags', 'push');
        const image = await writeImage(store, { layers: [{ files: { 'etc/tags': 'many\n' } }] }, [tags[0]!]);
        // A few more tags the ordinary way, a PUT of the same manifest each…
        const desc = { mediaType: image.mediaType, digest: image.digest, size: image.size };
        await store.pushManifest(desc, await store.fetchManifest(image), { tags: tags.slice(1, 5) });
        // …and the other 1200 straight into the registry's storage, as the filesystem driver keeps tags
        // (`_manifests/tags/<tag>/current/link` holding the digest, plus its index entry): 1200 PUTs
        // would cost seconds of registry CPU for nothing this test looks at.
        digest = image.digest;
        const { encoded } = parseDigest(image.digest);
        const tagsDir = join(reg.storageDir, 'docker/registry/v2/repositories/many/tags/_manifests/tags');
        await Promise.all(
          tags.slice(5).map(async (tag) => {
            await mkdir(join(tagsDir, tag, 'current'), { recursive: true });
            await mkdir(join(tagsDir, tag, 'index/sha256', encoded), { recursive: true });
            await writeFile(join(tagsDir, tag, 'current/link'), image.digest);
            await writeFile(join(tagsDir, tag, 'index/sha256', encoded, 'link'), image.digest);
          }),
        );
      } finally {
        await client.close();
      }
    });
    after(() => reg?.stop());

    it('lists every tag, sorted', async () => {
      // docker-registry 2.8 ignores `n` and sends every tag in one answer (paging came in distribution 3),
      // so the paging itself is exercised by the fake registry below; here lading still asks for pages.
      const proxy = await startFaultProxy(reg);
      let out: string;
      try {
        out = await ladingOk('ls', `docker://${proxy.host}/many/tags`);
        const pages = proxy.log.filter((e) => e.method === 'GET' && e.path.startsWith('/v2/many/tags/tags/list'));
        assert.ok(pages.length >= 1);
        assert.ok(
          pages.every((p) => p.status === 200 && /[?&]n=\d+/.test(p.path)),
          JSON.stringify(pages.map((p) => [p.path, p.status])),
        );
      } finally {
        await proxy.stop();
      }
      const lines = out.split('\n');
      assert.equal(lines.pop(), '', 'output ends with a newline');
      assert.equal(lines.length, 1205);
      assert.deepEqual(lines, [...tags].sort());
      assert.equal(lines[0], 'v0');
      assert.equal(lines[1], 'v1');
      assert.equal(lines[2], 'v10');
    });

    it('a tag written into storage is a real tag to the registry', async () => {
      assert.equal(await ladingDigest(`docker://${reg.host}/many/tags:v1204`), digest);
    });

    it('-o json prints the same list as a JSON array', async () => {
      const json = JSON.parse(await ladingOk('ls', '-o', 'json', `docker://${reg.host}/many/tags`)) as string[];
      assert.deepEqual(json, [...tags].sort());
    });

    it('a repository that does not exist lists nothing', async () => {
      const r = await lading('ls', `docker://${reg.host}/no/such-repo`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
    });
  });

  describe('a registry with 100 000 tags', () => {
    const TOTAL = 100_000;
    const all = Array.from({ length: TOTAL }, (_, i) => `t${String(i).padStart(6, '0')}`);
    let server: Server;
    let host: string;
    const requests: string[] = [];

    before(async () => {
      // A tiny registry: GET /v2/ and GET /v2/big/tags/list?n=&last= (tags sorted, pages of at most n, Link to the next page).
      server = createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://fake');
        requests.push(`${req.method} ${url.pathname}${url.search}`);
        if (req.method === 'GET' && url.pathname === '/v2/') {
          res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' }).end('{}');
          return;
        }
        if (req.method === 'GET' && url.pathname === '/v2/big/tags/list') {
          const n = Math.min(Number(url.searchParams.get('n') ?? '1000') || 1000, 1000);
          const last = url.searchParams.get('last');
          let start = 0;
          if (last !== null) {
            // Binary search for the first tag after `last`.
            let lo = 0;
            let hi = all.length;
            while (lo < hi) {
              const mid = (lo + hi) >> 1;
              if (all[mid]! <= last) lo = mid + 1;
              else hi = mid;
            }
            start = lo;
          }
          const page = all.slice(start, start + n);
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (start + n < all.length) headers.link = `</v2/big/tags/list?n=${n}&last=${encodeURIComponent(page.at(-1)!)}>; rel="next"`;
          res.writeHead(200, headers).end(JSON.stringify({ name: 'big', tags: page }));
          return;
        }
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}');
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      server?.closeAllConnections();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    });

    it('prints all 100 000 tags, in order, in reasonable time', async () => {
      const started = Date.now();
      const out = await ladingOk('ls', `docker://${host}/big`);
      const elapsed = Date.now() - started;
      const lines = out.split('\n');
      assert.equal(lines.pop(), '');
      assert.equal(lines.length, TOTAL);
      assert.deepEqual(lines, all);
      const pages = requests.filter((r) => r.startsWith('GET /v2/big/tags/list'));
      assert.equal(pages.length, TOTAL / 1000);
      assert.ok(elapsed < 20_000, `lading ls took ${elapsed} ms`);
    });
  });
});
