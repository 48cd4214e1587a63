/**
 * Smoke tests of the registry test harness (test/helpers/registry.ts, token-issuer.ts, fault-proxy.ts),
 * with skopeo (/usr/bin/skopeo 1.9.3) as the client: a small OCI layout goes into a real docker-registry
 * over plain HTTP, Basic auth, token auth and TLS + Basic auth and comes back with `skopeo inspect`;
 * wrong credentials are refused; the token issuer sees the scopes skopeo asks for; the fault proxy
 * forwards transparently and injects the faults it is told to.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeImage } from '../../src/build/image-writer.js';
import type { Descriptor } from '../../src/oci/types.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { startFaultProxy, startRedirectTarget, type FaultProxy } from '../helpers/fault-proxy.js';
import { skopeoFlags, startRegistry, type RegistryInstance, type RegistryOptions } from '../helpers/registry.js';
import { ok, run } from '../helpers/run.js';

interface SkopeoInspect {
  Name: string;
  Digest: string;
  Layers: string[];
}

const REPO = 'smoke/img';
const AUTH_FAILURE = /401|unauthorized|authentication required|invalid username\/password/i;

async function inspect(reg: { host: string }, flags: string[], ...extra: string[]): Promise<SkopeoInspect> {
  return JSON.parse(await ok('skopeo', 'inspect', ...extra, ...flags, `docker://${reg.host}/${REPO}:1`)) as SkopeoInspect;
}

/** A plain HTTP GET through node:http that reports a broken body instead of throwing. */
function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer; error?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const done = (error?: string) =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ...(error !== undefined && { error }) });
      res.on('end', () => done());
      res.on('error', (e) => done(e.message));
      res.on('aborted', () => done('aborted'));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('registry harness', () => {
  let work: string;
  let layout: string;
  let image: Descriptor;
  let layers: Descriptor[];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'lading-harness-'));
    layout = join(work, 'layout');
    const store = await LayoutStore.open(layout, 'write');
    image = await writeImage(store, { layers: [{ files: { 'etc/hello': 'hello registry\n' } }], config: { Cmd: ['/bin/true'] } }, ['1']);
    layers = (JSON.parse(Buffer.from(await store.fetchManifest(image)).toString()) as { layers: Descriptor[] }).layers;
    // Content no registry (nor skopeo's blob-info cache) has seen, so pushing it really uploads.
    await writeImage(store, { layers: [{ files: { 'etc/unique': randomUUID() } }] }, ['unique']);
    await store.close();
  });
  after(() => rm(work, { recursive: true, force: true }));

  const cases: { name: string; options: RegistryOptions }[] = [
    { name: 'plain HTTP', options: {} },
    { name: 'basic auth', options: { auth: 'basic' } },
    { name: 'token auth', options: { auth: 'token' } },
    { name: 'TLS + basic auth', options: { auth: 'basic', tls: true } },
  ];

  for (const { name, options } of cases) {
    describe(name, () => {
      let reg: RegistryInstance;
      before(async () => (reg = await startRegistry(options)));
      after(() => reg?.stop());

      it('skopeo copies an OCI layout in and inspects it back', async () => {
        assert.equal(reg.scheme, options.tls ? 'https' : 'http');
        await ok(
          'skopeo',
          'copy',
          '--quiet',
          '--preserve-digests',
          ...skopeoFlags(reg, 'dest'),
          `oci:${layout}:1`,
          `docker://${reg.host}/${REPO}:1`,
        );
        const got = await inspect(reg, skopeoFlags(reg, 'plain'));
        assert.equal(got.Digest, image.digest);
        assert.equal(got.Name, `${reg.host}/${REPO}`);
        assert.deepEqual(
          got.Layers,
          layers.map((l) => l.digest),
        );
      });

      if (options.auth !== undefined) {
        it('refuses wrong credentials with a 401', async () => {
          const r = await run('skopeo', [
            'inspect',
            ...skopeoFlags(reg, 'plain', `${reg.username}:wrong`),
            `docker://${reg.host}/${REPO}:1`,
          ]);
          assert.notEqual(r.code, 0);
          assert.match(r.stderr, AUTH_FAILURE);
        });
      }

      if (options.auth === 'basic') {
        it('refuses anonymous access', async () => {
          const r = await run('skopeo', ['inspect', ...skopeoFlags(reg, 'plain', null), `docker://${reg.host}/${REPO}:1`]);
          assert.notEqual(r.code, 0);
          assert.match(r.stderr, AUTH_FAILURE);
        });
      }

      if (options.auth === 'token') {
        it('the issuer saw the push scope, and anonymous clients get pull only', async () => {
          const issuer = reg.tokenIssuer!;
          assert.ok(
            issuer.requests.some((q) => q.user === reg.username && q.status === 200 && q.scopes.includes(`repository:${REPO}:pull,push`)),
            `no pull,push token request in ${JSON.stringify(issuer.requests)}`,
          );
          assert.ok(
            issuer.requests.some((q) => q.status === 401 && q.user === reg.username),
            'the wrong password was refused by the issuer',
          );
          const before = issuer.requests.length;
          const anon = await inspect(reg, skopeoFlags(reg, 'plain', null));
          assert.equal(anon.Digest, image.digest);
          assert.ok(issuer.requests.slice(before).some((q) => q.user === undefined && q.status === 200));
          const push = await run('skopeo', [
            'copy',
            '--quiet',
            '--retry-times',
            '0',
            ...skopeoFlags(reg, 'dest', null),
            `oci:${layout}:1`,
            `docker://${reg.host}/${REPO}:anon`,
          ]);
          assert.notEqual(push.code, 0, 'an anonymous push is denied');
          assert.match(push.stderr, AUTH_FAILURE);
        });
      }
    });
  }

  describe('fault proxy', () => {
    let reg: RegistryInstance;
    let secure: RegistryInstance;
    let proxy: FaultProxy;
    let secureProxy: FaultProxy;
    before(async () => {
      [reg, secure] = await Promise.all([startRegistry(), startRegistry({ auth: 'basic', tls: true })]);
      [proxy, secureProxy] = await Promise.all([startFaultProxy(reg), startFaultProxy(secure)]);
      await Promise.all(
        [reg, secure].map((r) =>
          ok(
            'skopeo',
            'copy',
            '--quiet',
            '--preserve-digests',
            ...skopeoFlags(r, 'dest'),
            `oci:${layout}:1`,
            `docker://${r.host}/${REPO}:1`,
          ),
        ),
      );
    });
    after(async () => {
      await Promise.all([proxy?.stop(), secureProxy?.stop()]);
      await Promise.all([reg?.stop(), secure?.stop()]);
    });

    it('forwards transparently, to HTTP and to HTTPS + basic auth upstreams', async () => {
      assert.equal((await inspect(proxy, ['--tls-verify=false'])).Digest, image.digest);
      assert.ok(proxy.log.some((e) => e.method === 'GET' && e.path === `/v2/${REPO}/manifests/1` && e.status === 200));
      const creds = `--creds=${secure.username}:${secure.password}`;
      assert.equal((await inspect(secureProxy, ['--tls-verify=false', creds])).Digest, image.digest);
      assert.ok(secureProxy.log.some((e) => e.status === 200 && typeof e.headers.authorization === 'string'));
      // A push: the registry's absolute upload Locations are rewritten, so the whole upload goes through the proxy.
      await ok(
        'skopeo',
        'copy',
        '--quiet',
        '--dest-tls-verify=false',
        `--dest-creds=${secure.username}:${secure.password}`,
        `oci:${layout}:unique`,
        `docker://${secureProxy.host}/${REPO}:2`,
      );
      assert.ok(secureProxy.log.some((e) => e.method === 'PUT' && e.path.startsWith(`/v2/${REPO}/blobs/uploads/`) && e.status === 201));
      assert.ok(secureProxy.log.some((e) => e.method === 'PUT' && e.path === `/v2/${REPO}/manifests/2` && e.status === 201));
    });

    it('a 503 on manifests makes skopeo inspect --retry-times 0 fail', async () => {
      proxy.rules = [{ path: /\/manifests\//, fault: { kind: 'status', status: 503, body: 'down' } }];
      try {
        const r = await run('skopeo', ['inspect', '--retry-times', '0', '--tls-verify=false', `docker://${proxy.host}/${REPO}:1`]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /503|unavailable/i);
        assert.ok(proxy.log.some((e) => e.status === 503 && e.fault === 'status'));
      } finally {
        proxy.rules = [];
      }
    });

    it('injects body and header faults on a blob, each only `times` times', async () => {
      const layer = layers[0]!;
      const url = `${proxy.url}/v2/${REPO}/blobs/${layer.digest}`;
      const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
      const blob = /\/blobs\/sha256:/;
      proxy.rules = [
        { path: blob, times: 1, fault: { kind: 'flip-byte', offset: 3 } },
        { path: blob, times: 1, fault: { kind: 'truncate', bytes: 10 } },
        { path: blob, times: 1, fault: { kind: 'reset-after', bytes: 7 } },
        { path: blob, times: 1, fault: { kind: 'header', name: 'Docker-Content-Digest', value: 'sha256:lies' } },
        { path: blob, times: 1, fault: { kind: 'content-length', value: '10737418240' } },
        { path: blob, times: 1, fault: { kind: 'drip', bytesPerTick: 512, tickMs: 1 } },
        { path: blob, times: 1, fault: { kind: 'status', status: 429, headers: { 'Retry-After': '1' } } },
      ];
      const flipped = await get(url);
      assert.equal(flipped.body.length, layer.size);
      assert.notEqual(sha(flipped.body), layer.digest);
      const truncated = await get(url);
      assert.equal(truncated.headers['content-length'], String(layer.size));
      assert.ok(truncated.error !== undefined && truncated.body.length === 10, `truncate: ${truncated.error} ${truncated.body.length}`);
      const reset = await get(url);
      assert.ok(reset.error !== undefined && reset.body.length <= 7, `reset: ${reset.error} ${reset.body.length}`);
      assert.equal((await get(url)).headers['docker-content-digest'], 'sha256:lies');
      const lying = await get(url);
      assert.equal(lying.headers['content-length'], '10737418240');
      assert.ok(lying.error !== undefined && lying.body.length === layer.size);
      assert.equal(sha((await get(url)).body), layer.digest, 'drip delivers the whole body');
      const limited = await get(url);
      assert.equal(limited.status, 429);
      assert.equal(limited.headers['retry-after'], '1');
      assert.equal(sha((await get(url)).body), layer.digest, 'every rule is used up');
      proxy.rules = [];
    });

    it('redirects, and the redirect target records what it was sent', async () => {
      const target = await startRedirectTarget({ body: 'elsewhere' });
      try {
        proxy.rules = [{ method: 'GET', path: /\/blobs\//, times: 1, fault: { kind: 'redirect', location: `${target.url}/blob?sig=1` } }];
        const r = await get(`${proxy.url}/v2/${REPO}/blobs/${layers[0]!.digest}`, { authorization: 'Bearer secret' });
        assert.equal(r.status, 307);
        assert.equal(r.headers.location, `${target.url}/blob?sig=1`);
        assert.equal(proxy.log.at(-1)?.headers.authorization, 'Bearer secret');
        const followed = await get(String(r.headers.location));
        assert.equal(followed.body.toString(), 'elsewhere');
        assert.equal(target.requests[0]?.path, '/blob?sig=1');
        assert.equal(target.requests[0]?.headers.authorization, undefined);
      } finally {
        proxy.rules = [];
        await target.stop();
      }
    });
  });
});
