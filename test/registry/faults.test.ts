/**
 * Registry transfers under injected faults (test/helpers/fault-proxy.ts in front of a real
 * docker-registry): dropped connections mid-blob are resumed with Range, bursts of 5xx and 429 are
 * retried (Retry-After honoured), slow links and cross-host redirects complete (without leaking
 * Authorization), and persistent or corrupting faults (truncation, a flipped byte, a lying
 * Docker-Content-Digest or Content-Length, an oversized manifest, a corrupt source) fail with exit 1 and
 * one clear line, leave nothing corrupt behind, and a re-run without the fault finishes the job.
 *
 * Every failure test copies into a layout that already holds a small image, so `lading fsck` has a
 * layout to check afterwards (a failed copy into a layout it created removes the layout again).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeImage } from '../../src/build/image-writer.js';
import { canonicalJsonBytes } from '../../src/oci/canonical-json.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import type { Descriptor, ImageManifest } from '../../src/oci/types.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { type FaultProxy, type FaultRule, type ProxyLogEntry, startFaultProxy, startRedirectTarget } from '../helpers/fault-proxy.js';
import { type RegistryInstance, startRegistry } from '../helpers/registry.js';
import { lading as ladingRaw, ladingOk as ladingOkRaw, ok, type RunResult } from '../helpers/run.js';
const lading = async (...a: string[]) => {
  const t = performance.now();
  const r = await ladingRaw(...a);
  console.error('TIMING', (performance.now() - t).toFixed(0), a.join(' ').slice(0, 120), r.code);
  return r;
};
const ladingOk = async (...a: string[]) => {
  const t = performance.now();
  const r = await ladingOkRaw(...a);
  console.error('TIMING', (performance.now() - t).toFixed(0), a.join(' ').slice(0, 120));
  return r;
};

const MiB = 1024 * 1024;
/** Keeps retries fast: the backoff starts at 10 ms. */
const FAST = ['--retry-delay', '10'];

interface Fixture {
  manifest: Descriptor;
  config: Descriptor;
  layer: Descriptor;
  /** The specification, to write the same image (same digests) into another layout. */
  spec: Parameters<typeof writeImage>[1];
}

/** A raw request on loopback: status, headers and body (HEAD: empty). */
function raw(
  method: string,
  url: string,
  headers: Record<string, string> = {},
  body?: Buffer,
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Exit 1, one line on stderr starting with "lading: ", matching every pattern. */
function assertFailed(r: RunResult, ...patterns: RegExp[]): string {
  assert.equal(r.code, 1, `expected exit 1, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  const line = lines[0] ?? '';
  console.error('STDERR', line);
  assert.match(line, /^lading: \S/);
  for (const p of patterns) assert.match(line, p);
  return line;
}

async function assertFsckClean(dir: string): Promise<void> {
  const r = await lading('fsck', `oci:${dir}`);
  assert.equal(r.code, 0, `fsck oci:${dir} exited ${r.code}: ${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /: ok\n$/);
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}

function blobFile(layout: string, digest: string): string {
  return join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** Matches requests for one blob (any repository). */
const blobPath = (digest: string) => new RegExp(`/blobs/${escape(digest)}$`);

describe('registry faults', () => {
  let work: string;
  let build: string;
  let reg: RegistryInstance; // source content, plain HTTP
  let dstReg: RegistryInstance; // upload target
  let basicReg: RegistryInstance; // basic auth, for the redirect test
  let proxy: FaultProxy;
  let dstProxy: FaultProxy;
  let basicProxy: FaultProxy;
  /** When each proxy log entry was recorded (performance.now()). */
  const stamps = new WeakMap<ProxyLogEntry, number>();
  let big: Fixture; // ~20 MiB random layer
  let small: Fixture; // ~1 MiB random layer
  let huge: Fixture; // ~40 MiB random layer (chunked upload)
  let seedCount = 0;

  const src = (p: FaultProxy, name: string) => `docker://${p.host}/src/${name}:1`;
  const since = (p: FaultProxy, n: number) => p.log.slice(n);

  /** A fresh layout that already holds one small image (so a failed copy leaves a layout to fsck). */
  async function seeded(): Promise<string> {
    const dir = join(work, `dst-${++seedCount}`);
    const store = await LayoutStore.open(dir, 'write');
    await writeImage(store, { layers: [{ files: { seed: `seed ${seedCount}\n` } }] }, ['seed']);
    await store.close();
    return dir;
  }

  async function fixture(store: LayoutStore, name: string, bytes: number): Promise<Fixture> {
    const spec = { layers: [{ files: { [`data/${name}.bin`]: randomBytes(bytes) } }], config: { Cmd: [`/${name}`] } };
    const manifest = await writeImage(store, spec, [name]);
    const m = JSON.parse(Buffer.from(await store.fetchManifest(manifest)).toString('utf8')) as ImageManifest;
    const layer = m.layers[0];
    assert.ok(layer);
    return { manifest, config: m.config, layer, spec };
  }

  /** Copy, then check the tag resolves to the right digest and the layout is clean. */
  async function assertCopied(r: RunResult, dir: string, tag: string, want: Fixture): Promise<void> {
    assert.equal(r.code, 0, `copy exited ${r.code}: ${r.stderr}`);
    assert.equal((await ladingOk('digest', `oci:${dir}:${tag}`)).trim(), want.manifest.digest);
    await assertFsckClean(dir);
  }

  /** Nothing of `want` was stored: no tag, no layer file, fsck clean. */
  async function assertNothingStored(dir: string, tag: string, want: Fixture): Promise<void> {
    assert.equal((await lading('digest', `oci:${dir}:${tag}`)).code, 1, 'the tag was not written');
    assert.equal(await exists(blobFile(dir, want.layer.digest)), false, 'the layer blob is not in the layout');
    assert.equal(await exists(blobFile(dir, want.manifest.digest)), false, 'the manifest is not in the layout');
    await assertFsckClean(dir);
    assert.equal((await ladingOk('digest', `oci:${dir}:seed`)).length > 0, true, 'the seed image is intact');
  }

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'lading-faults-'));
    build = join(work, 'build');
    [reg, dstReg, basicReg] = await Promise.all([startRegistry(), startRegistry(), startRegistry({ auth: 'basic' })]);
    [proxy, dstProxy, basicProxy] = await Promise.all([startFaultProxy(reg), startFaultProxy(dstReg), startFaultProxy(basicReg)]);
    for (const p of [proxy, dstProxy, basicProxy]) {
      const push = p.log.push.bind(p.log);
      p.log.push = (...entries: ProxyLogEntry[]) => {
        for (const e of entries) stamps.set(e, performance.now());
        return push(...entries);
      };
    }
    const store = await LayoutStore.open(build, 'write');
    big = await fixture(store, 'big', 20 * MiB);
    small = await fixture(store, 'small', 1 * MiB);
    huge = await fixture(store, 'huge', 40 * MiB);
    await store.close();
    await Promise.all([
      ladingOk('copy', '-q', `oci:${build}:big`, `docker://${reg.host}/src/big:1`),
      ladingOk('copy', '-q', `oci:${build}:small`, `docker://${reg.host}/src/small:1`),
      ladingOk(
        'copy',
        '-q',
        '--creds',
        `${basicReg.username}:${basicReg.password}`,
        `oci:${build}:small`,
        `docker://${basicReg.host}/src/small:1`,
      ),
    ]);
  });

  after(async () => {
    await Promise.all([proxy?.stop(), dstProxy?.stop(), basicProxy?.stop()]);
    await Promise.all([reg?.stop(), dstReg?.stop(), basicReg?.stop()]);
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  /** Runs `fn` with `rules` on `p`, clearing them afterwards whatever happens. */
  async function withRules<T>(p: FaultProxy, rules: FaultRule[], fn: () => Promise<T>): Promise<T> {
    p.rules = rules;
    try {
      return await fn();
    } finally {
      p.rules = [];
    }
  }

  it('1. resumes a blob with Range after the connection is reset mid-blob (twice)', async () => {
    const dir = await seeded();
    const mark = proxy.log.length;
    const r = await withRules(
      proxy,
      [{ method: 'GET', path: blobPath(big.layer.digest), times: 2, fault: { kind: 'reset-after', bytes: 5 * MiB } }],
      () => lading('copy', '-q', ...FAST, src(proxy, 'big'), `oci:${dir}:big`),
    );
    await assertCopied(r, dir, 'big', big);
    const gets = since(proxy, mark).filter((e) => e.method === 'GET' && blobPath(big.layer.digest).test(e.path));
    assert.equal(gets.filter((e) => e.fault === 'reset-after').length, 2);
    const ranges = gets.map((e) => e.headers.range).filter((h): h is string => typeof h === 'string');
    assert.equal(ranges.length, 2, `two follow-up requests with Range, got ${JSON.stringify(gets.map((e) => e.headers.range))}`);
    const starts = ranges.map((h) => Number(/^bytes=(\d+)-$/.exec(h)?.[1] ?? NaN));
    assert.ok(starts.every((n) => n > 0 && n < big.layer.size) && (starts[1] ?? 0) > (starts[0] ?? 0), `ranges ${ranges.join(', ')}`);
    assert.equal(gets.at(-1)?.status, 206, 'the last request was answered with the rest of the blob');
  });

  it('2. rides out a burst of 500/502/503 on manifests and blobs', async () => {
    const dir = await seeded();
    const mark = proxy.log.length;
    const manifests = /\/manifests\//;
    const blobs = /\/blobs\/sha256:/;
    const r = await withRules(
      proxy,
      [
        { path: manifests, times: 1, fault: { kind: 'status', status: 500, body: 'oops' } },
        { path: manifests, times: 1, fault: { kind: 'status', status: 503 } },
        { method: 'GET', path: blobs, times: 1, fault: { kind: 'status', status: 502 } },
        { method: 'GET', path: blobs, times: 1, fault: { kind: 'status', status: 503 } },
        { method: 'GET', path: blobs, times: 1, fault: { kind: 'status', status: 500 } },
      ],
      () => lading('copy', '-q', ...FAST, src(proxy, 'small'), `oci:${dir}:small`),
    );
    await assertCopied(r, dir, 'small', small);
    const injected = since(proxy, mark).filter((e) => e.fault === 'status');
    assert.deepEqual(injected.map((e) => e.status).sort(), [500, 500, 502, 503, 503], 'every fault was injected');
  });

  it('3. waits as long as Retry-After asks after a 429 on a blob', async () => {
    const dir = await seeded();
    const mark = proxy.log.length;
    const path = blobPath(small.layer.digest);
    const started = performance.now();
    const r = await withRules(
      proxy,
      [{ method: 'GET', path, times: 1, fault: { kind: 'status', status: 429, headers: { 'Retry-After': '1' } } }],
      () => lading('copy', '-q', ...FAST, src(proxy, 'small'), `oci:${dir}:small`),
    );
    const took = performance.now() - started;
    await assertCopied(r, dir, 'small', small);
    const gets = since(proxy, mark).filter((e) => e.method === 'GET' && path.test(e.path));
    assert.equal(gets[0]?.status, 429);
    assert.equal(gets[1]?.status, 200);
    const waited = (stamps.get(gets[1]!) ?? 0) - (stamps.get(gets[0]!) ?? 0);
    // --retry-delay 10 would retry within ~10 ms: only Retry-After explains a wait of a second.
    assert.ok(waited >= 950, `the retry came ${waited.toFixed(0)} ms after the 429`);
    assert.ok(took >= 1000, `the copy took ${took.toFixed(0)} ms`);
  });

  it('4. fails clearly after bounded retries when a blob body is always truncated; a re-run completes', async () => {
    const dir = await seeded();
    const mark = proxy.log.length;
    const path = blobPath(big.layer.digest);
    const started = performance.now();
    const r = await withRules(proxy, [{ method: 'GET', path, times: 100, fault: { kind: 'truncate', bytes: 1 * MiB } }], () =>
      lading('copy', '-q', '--retry-times', '2', '--retry-delay', '10', src(proxy, 'big'), `oci:${dir}:big`),
    );
    assertFailed(r, new RegExp(escape(big.layer.digest)));
    assert.ok(performance.now() - started < 20_000, 'bounded');
    const gets = since(proxy, mark).filter((e) => e.method === 'GET' && path.test(e.path));
    assert.ok(gets.length >= 2 && gets.length <= 3, `--retry-times 2 allows 3 attempts, made ${gets.length}`);
    await assertNothingStored(dir, 'big', big);
    await assertCopied(await lading('copy', '-q', ...FAST, src(proxy, 'big'), `oci:${dir}:big`), dir, 'big', big);
  });

  it('5. refuses a layer with one flipped byte, naming the blob, and stores nothing corrupt', async () => {
    const dir = await seeded();
    const r = await withRules(
      proxy,
      [{ method: 'GET', path: blobPath(small.layer.digest), fault: { kind: 'flip-byte', offset: 4321 } }],
      () => lading('copy', '-q', ...FAST, src(proxy, 'small'), `oci:${dir}:small`),
    );
    assertFailed(r, new RegExp(escape(small.layer.digest)), /corrupt|hashes to/);
    await assertNothingStored(dir, 'small', small);
    await assertCopied(await lading('copy', '-q', ...FAST, src(proxy, 'small'), `oci:${dir}:small`), dir, 'small', small);
  });

  it('6. refuses a manifest whose Docker-Content-Digest lies, and stores nothing', async () => {
    const dir = await seeded();
    const lie = `sha256:${'0'.repeat(64)}`;
    const manifests = /\/manifests\//;
    // A lie on the GET of the manifest (the HEAD of the tag told the truth).
    const onGet = await withRules(
      proxy,
      [{ method: 'GET', path: manifests, fault: { kind: 'header', name: 'Docker-Content-Digest', value: lie } }],
      () => lading('copy', '-q', ...FAST, src(proxy, 'small'), `oci:${dir}:small`),
    );
    assertFailed(onGet, new RegExp(escape(lie)), /lying/, new RegExp(escape(small.manifest.digest)));
    await assertNothingStored(dir, 'small', small);
    // A lie on the HEAD when the reference is a digest.
    const byDigest = `docker://${proxy.host}/src/small@${small.manifest.digest}`;
    const onHead = await withRules(
      proxy,
      [{ method: 'HEAD', path: manifests, fault: { kind: 'header', name: 'Docker-Content-Digest', value: lie } }],
      () => lading('copy', '-q', ...FAST, byDigest, `oci:${dir}:small`),
    );
    assertFailed(onHead, new RegExp(escape(lie)), /lying/);
    await assertNothingStored(dir, 'small', small);
    // A lie on both, by tag: the tag seems to name a manifest the registry then does not have.
    const both = await withRules(proxy, [{ path: manifests, fault: { kind: 'header', name: 'Docker-Content-Digest', value: lie } }], () =>
      lading('copy', '-q', ...FAST, src(proxy, 'small'), `oci:${dir}:small`),
    );
    assertFailed(both, new RegExp(escape(lie)));
    await assertNothingStored(dir, 'small', small);
    await assertCopied(await lading('copy', '-q', ...FAST, src(proxy, 'small'), `oci:${dir}:small`), dir, 'small', small);
  });

  it('7. completes over a slow drip', async () => {
    const dir = await seeded();
    const mark = proxy.log.length;
    const r = await withRules(
      proxy,
      [{ method: 'GET', path: blobPath(small.layer.digest), fault: { kind: 'drip', bytesPerTick: 64 * 1024, tickMs: 20 } }],
      () => lading('copy', '-q', ...FAST, src(proxy, 'small'), `oci:${dir}:small`),
    );
    await assertCopied(r, dir, 'small', small);
    assert.ok(since(proxy, mark).some((e) => e.fault === 'drip' && e.status === 200));
  });

  it('8. follows a blob redirect to another host without sending it Authorization', async () => {
    const dir = await seeded();
    const layerBytes = await readFile(blobFile(build, small.layer.digest));
    const target = await startRedirectTarget({ headers: { 'content-type': 'application/octet-stream' }, body: layerBytes });
    try {
      const mark = basicProxy.log.length;
      const r = await withRules(
        basicProxy,
        [
          {
            method: 'GET',
            path: blobPath(small.layer.digest),
            fault: { kind: 'redirect', location: `${target.url}/blobs/${small.layer.digest}?sig=s3cr3t` },
          },
        ],
        () =>
          lading(
            'copy',
            '-q',
            ...FAST,
            '--creds',
            `${basicReg.username}:${basicReg.password}`,
            src(basicProxy, 'small'),
            `oci:${dir}:small`,
          ),
      );
      await assertCopied(r, dir, 'small', small);
      const log = since(basicProxy, mark);
      const redirected = log.filter((e) => e.fault === 'redirect');
      assert.ok(redirected.length >= 1, 'the blob GET was redirected');
      assert.ok(
        redirected.every((e) => typeof e.headers.authorization === 'string' && e.headers.authorization.startsWith('Basic ')),
        'the registry (proxy) was sent credentials',
      );
      assert.ok(target.requests.length >= 1, 'the redirect was followed');
      assert.equal(target.requests[0]?.path, `/blobs/${small.layer.digest}?sig=s3cr3t`);
      for (const q of target.requests) assert.equal(q.headers.authorization, undefined, `Authorization leaked to ${target.host}`);
    } finally {
      await target.stop();
    }
  });

  it('9. fails fast on a lying 10 GiB Content-Length', async () => {
    const dir = await seeded();
    const mark = proxy.log.length;
    const path = blobPath(small.layer.digest);
    const started = performance.now();
    const r = await withRules(proxy, [{ method: 'GET', path, fault: { kind: 'content-length', value: '10737418240' } }], () =>
      lading('copy', '-q', ...FAST, src(proxy, 'small'), `oci:${dir}:small`),
    );
    const took = performance.now() - started;
    assertFailed(r, new RegExp(escape(small.layer.digest)), /10737418240/);
    assert.ok(took < 10_000, `took ${took.toFixed(0)} ms`);
    assert.equal(since(proxy, mark).filter((e) => e.method === 'GET' && path.test(e.path)).length, 1, 'not retried');
    await assertNothingStored(dir, 'small', small);
    await assertCopied(await lading('copy', '-q', ...FAST, src(proxy, 'small'), `oci:${dir}:small`), dir, 'small', small);
  });

  it('10. refuses a manifest over 4 MiB', async () => {
    // Served by the registry itself: pushed with a raw PUT, with a 5 MiB annotation.
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: small.config,
      layers: [small.layer],
      annotations: { 'io.lading.test.padding': 'x'.repeat(5 * MiB) },
    };
    const bytes = Buffer.from(canonicalJsonBytes(manifest));
    const put = await raw('PUT', `http://${reg.host}/v2/src/small/manifests/huge`, { 'content-type': MediaType.ociManifest }, bytes);
    console.error('PUT', put.status, put.body.toString().slice(0,300));
    if (put.status === 201) {
      const viaRegistry = await lading('inspect', `docker://${proxy.host}/src/small:huge`);
      assertFailed(viaRegistry, /over the 4 MiB limit/);
    } else {
      // distribution refuses it itself (413 or 400): say so, and rely on the proxy below.
      assert.ok(put.status === 413 || put.status === 400, `PUT of a 5 MiB manifest: ${put.status} ${put.body.toString()}`);
    }
    // Served through the proxy, with and without a Docker-Content-Digest (the GET path then reads the length).
    for (const headers of [
      { 'content-type': MediaType.ociManifest, 'docker-content-digest': digestOf(bytes) },
      { 'content-type': MediaType.ociManifest },
    ]) {
      const r = await withRules(
        proxy,
        [{ path: /\/manifests\/huge2$/, fault: { kind: 'status', status: 200, headers, body: bytes.toString('utf8') } }],
        () => lading('inspect', `docker://${proxy.host}/src/small:huge2`),
      );
      assertFailed(r, /over the 4 MiB limit/);
    }
  });

  it('11. completes an upload despite a reset on the first PATCH and a 503 on the first manifest PUT', async () => {
    const mark = dstProxy.log.length;
    const r = await withRules(
      dstProxy,
      [
        { method: 'PATCH', times: 1, fault: { kind: 'reset-after', bytes: 0 } },
        { method: 'PUT', path: /\/manifests\//, times: 1, fault: { kind: 'status', status: 503 } },
      ],
      () => lading('copy', '-q', ...FAST, `oci:${build}:huge`, `docker://${dstProxy.host}/up/huge:1`),
    );
    assert.equal(r.code, 0, `copy exited ${r.code}: ${r.stderr}`);
    const log = since(dstProxy, mark);
    assert.ok(
      log.some((e) => e.method === 'PATCH' && e.fault === 'reset-after'),
      'a PATCH was reset',
    );
    assert.ok(log.filter((e) => e.method === 'PATCH').length >= 3, 'a 40 MiB layer goes in 16 MiB chunks');
    assert.ok(log.some((e) => e.method === 'PUT' && e.fault === 'status' && e.status === 503));
    assert.ok(log.some((e) => e.method === 'PUT' && /\/manifests\/1$/.test(e.path) && e.status === 201));
    assert.equal((await ladingOk('digest', `docker://${dstReg.host}/up/huge:1`)).trim(), huge.manifest.digest);
    const inspected = JSON.parse(await ok('skopeo', 'inspect', '--tls-verify=false', `docker://${dstReg.host}/up/huge:1`)) as {
      Digest: string;
      Layers: string[];
    };
    assert.equal(inspected.Digest, huge.manifest.digest);
    assert.deepEqual(inspected.Layers, [huge.layer.digest]);
  });

  it('11b. resumes a chunked upload after a 503 on a PATCH', async () => {
    const mark = dstProxy.log.length;
    const r = await withRules(dstProxy, [{ method: 'PATCH', times: 1, fault: { kind: 'status', status: 503 } }], () =>
      lading('copy', '-q', ...FAST, `oci:${build}:huge`, `docker://${dstProxy.host}/up503/huge:1`),
    );
    assert.ok(since(dstProxy, mark).some((e) => e.method === 'PATCH' && e.status === 503));
    assert.equal(r.code, 0, `copy exited ${r.code}: ${r.stderr}`);
    assert.equal((await ladingOk('digest', `docker://${dstReg.host}/up503/huge:1`)).trim(), huge.manifest.digest);
  });

  it('12. never commits a blob whose source bytes are corrupt (monolithic and chunked uploads)', async () => {
    const corrupt = join(work, 'corrupt');
    const store = await LayoutStore.open(corrupt, 'write');
    for (const [name, f] of [
      ['small', small],
      ['big', big],
    ] as const) {
      assert.equal((await writeImage(store, f.spec, [name])).digest, f.manifest.digest);
    }
    await store.close();
    for (const f of [small, big]) {
      const file = blobFile(corrupt, f.layer.digest);
      const bytes = await readFile(file);
      bytes[bytes.length - 5000] = (bytes[bytes.length - 5000] ?? 0) ^ 0x01;
      await writeFile(file, bytes);
    }
    for (const [name, f] of [
      ['small', small],
      ['big', big],
    ] as const) {
      const dst = `docker://${dstProxy.host}/bad/${name}:1`;
      const r = await lading('copy', '-q', ...FAST, `oci:${corrupt}:${name}`, dst);
      assertFailed(r, new RegExp(escape(f.layer.digest)), /corrupt|hashes to/);
      assert.equal((await lading('digest', `docker://${dstReg.host}/bad/${name}:1`)).code, 1, 'no manifest for the tag');
      const head = await raw('HEAD', `http://${dstReg.host}/v2/bad/${name}/blobs/${f.layer.digest}`);
      assert.equal(head.status, 404, `the registry has no ${name} layer`);
      // The good source finishes the job.
      await ladingOk('copy', '-q', ...FAST, `oci:${build}:${name}`, dst);
      assert.equal((await ladingOk('digest', `docker://${dstReg.host}/bad/${name}:1`)).trim(), f.manifest.digest);
    }
  });
});
