/**
 * Registry transfers under injected faults (test/helpers/fault-proxy.ts in front of a real
 * docker-registry): dropped connections mid-blob are resumed with Range, bursts of 5xx and 429 are
 * retried (Retry-After honoured), slow links and cross-host redirects complete (without leaking
 * Authorization), and persistent or corrupting faults (truncation, a flipped byte, a lying
 * Docker-Content-Digest or Content-Length, an oversized manifest, a corrupt source) fail with exit 1 and
 * one clear line naming what failed, leave nothing corrupt behind, and a re-run without the fault
 * finishes the job.
 *
 * Every copy into a layout goes into one that already holds a small image, so `lading fsck` has a layout
 * to check after a failure (a failed copy into a layout it created removes the layout again). Checks
 * that need no CLI (tag digests, fsck after a success) run in-process: each `lading` costs ~0.5 s.
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
import { fsckLayout } from '../../src/store/layout/fsck.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { type FaultProxy, type FaultRule, type ProxyLogEntry, startFaultProxy, startRedirectTarget } from '../helpers/fault-proxy.js';
import { type RegistryInstance, startRegistry } from '../helpers/registry.js';
import { startResponseDropper } from '../helpers/response-dropper.js';
import { startRequestCutter } from './request-cutter.js';
import { lading, ladingOk, ok, type RunResult } from '../helpers/run.js';

const MiB = 1024 * 1024;
/** Keeps retries fast: the backoff starts at 10 ms. */
const FAST = ['--retry-delay', '10'];
const MANIFEST_ACCEPT = [MediaType.ociManifest, MediaType.ociIndex].join(', ');

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
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
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

/** What the registry (asked directly) says a tag is: its digest, or undefined on 404. */
async function registryDigest(reg: RegistryInstance, repo: string, tag: string): Promise<string | undefined> {
  const res = await raw('HEAD', `http://${reg.host}/v2/${repo}/manifests/${tag}`, { accept: MANIFEST_ACCEPT });
  if (res.status === 404) return undefined;
  assert.equal(res.status, 200, `HEAD ${repo}:${tag}`);
  return String(res.headers['docker-content-digest']);
}

/** Exit 1, one line on stderr starting with "lading: ", matching every pattern. */
function assertFailed(r: RunResult, ...patterns: RegExp[]): string {
  assert.equal(r.code, 1, `expected exit 1, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  const line = lines[0] ?? '';
  assert.match(line, /^lading: \S/);
  for (const p of patterns) assert.match(line, p);
  return line;
}

/** The digest a layout's tag names, or undefined. */
async function layoutDigest(dir: string, tag: string): Promise<string | undefined> {
  const store = await LayoutStore.open(dir, 'read');
  try {
    return (await store.resolve(tag)).digest;
  } catch {
    return undefined;
  } finally {
    await store.close();
  }
}

async function fsckProblems(dir: string): Promise<string[]> {
  const store = await LayoutStore.open(dir, 'read');
  try {
    return (await fsckLayout(store)).problems.map((p) => p.message);
  } finally {
    await store.close();
  }
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

describe('registry faults', { concurrency: 4 }, () => {
  let work: string;
  let build: string;
  let reg: RegistryInstance; // source content, plain HTTP
  let dstReg: RegistryInstance; // upload target
  let basicReg: RegistryInstance; // basic auth, for the redirect test
  const proxies: FaultProxy[] = [];
  /** When each proxy log entry was recorded (performance.now()). */
  const stamps = new WeakMap<ProxyLogEntry, number>();
  let big: Fixture; // ~20 MiB random layer: resumable downloads, two upload chunks
  let small: Fixture; // ~1 MiB random layer
  let huge: Fixture; // ~40 MiB random layer: three upload chunks
  let seedCount = 0;

  const src = (p: FaultProxy, name: string) => `docker://${p.host}/src/${name}:1`;
  const copy = (...args: string[]) => lading('copy', '-q', ...FAST, ...args);

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

  /** The copy succeeded: the tag names the right digest and the layout is clean. */
  async function assertCopied(r: RunResult, dir: string, tag: string, want: Fixture): Promise<void> {
    assert.equal(r.code, 0, `copy exited ${r.code}: ${r.stderr}`);
    assert.equal(await layoutDigest(dir, tag), want.manifest.digest);
    assert.deepEqual(await fsckProblems(dir), []);
  }

  /** After a failure: no tag, no layer or manifest file, `lading fsck` clean, the seed image intact. */
  async function assertNothingStored(dir: string, tag: string, want: Fixture): Promise<void> {
    assert.equal(await layoutDigest(dir, tag), undefined, 'the tag was not written');
    assert.equal(await exists(blobFile(dir, want.layer.digest)), false, 'the layer blob is not in the layout');
    assert.equal(await exists(blobFile(dir, want.manifest.digest)), false, 'the manifest is not in the layout');
    const fsck = await lading('fsck', `oci:${dir}`);
    assert.equal(fsck.code, 0, `fsck oci:${dir} exited ${fsck.code}: ${fsck.stdout}${fsck.stderr}`);
    assert.match(fsck.stdout, /: ok\n$/);
    assert.notEqual(await layoutDigest(dir, 'seed'), undefined, 'the seed image is intact');
  }

  /** A fault proxy of the test's own in front of `upstream` (tests run concurrently), its log timestamped. */
  async function proxyFor(upstream: RegistryInstance): Promise<FaultProxy> {
    const p = await startFaultProxy(upstream);
    proxies.push(p);
    const push = p.log.push.bind(p.log);
    p.log.push = (...entries: ProxyLogEntry[]) => {
      for (const e of entries) stamps.set(e, performance.now());
      return push(...entries);
    };
    return p;
  }

  /** Runs `fn` with `rules` on `p`, clearing them afterwards whatever happens. */
  async function withRules<T>(p: FaultProxy, rules: FaultRule[], fn: () => Promise<T>): Promise<T> {
    p.rules = rules;
    try {
      return await fn();
    } finally {
      p.rules = [];
    }
  }

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'lading-faults-'));
    build = join(work, 'build');
    [reg, dstReg, basicReg] = await Promise.all([startRegistry(), startRegistry(), startRegistry({ auth: 'basic' })]);
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
    await Promise.all(proxies.map((p) => p.stop()));
    await Promise.all([reg?.stop(), dstReg?.stop(), basicReg?.stop()]);
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('1. resumes a blob with Range after the connection is reset mid-blob (twice)', async () => {
    const dir = await seeded();
    const proxy = await proxyFor(reg);
    const path = blobPath(big.layer.digest);
    const r = await withRules(proxy, [{ method: 'GET', path, times: 2, fault: { kind: 'reset-after', bytes: 5 * MiB } }], () =>
      copy(src(proxy, 'big'), `oci:${dir}:big`),
    );
    await assertCopied(r, dir, 'big', big);
    const gets = proxy.log.filter((e) => e.method === 'GET' && path.test(e.path));
    assert.equal(gets.filter((e) => e.fault === 'reset-after').length, 2);
    assert.equal(gets[0]?.headers.range, undefined, 'the first request asks for the whole blob');
    const ranges = gets.slice(1).map((e) => String(e.headers.range));
    assert.equal(ranges.length, 2, `two follow-up requests, got ${JSON.stringify(gets.map((e) => e.headers.range))}`);
    const starts = ranges.map((h) => Number(/^bytes=(\d+)-$/.exec(h)?.[1] ?? NaN));
    assert.ok(starts.every((n) => n > 0 && n < big.layer.size) && (starts[1] ?? 0) > (starts[0] ?? 0), `ranges ${ranges.join(', ')}`);
    assert.equal(gets.at(-1)?.status, 206, 'the last request was answered with the rest of the blob');
  });

  it('2. rides out a burst of 500/502/503 on manifests and blobs', async () => {
    const dir = await seeded();
    const proxy = await proxyFor(reg);
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
      () => copy(src(proxy, 'small'), `oci:${dir}:small`),
    );
    await assertCopied(r, dir, 'small', small);
    const injected = proxy.log.filter((e) => e.fault === 'status');
    assert.deepEqual(injected.map((e) => e.status).sort(), [500, 500, 502, 503, 503], 'every fault was injected');
  });

  it('3. waits as long as Retry-After asks after a 429 on a blob', async () => {
    const dir = await seeded();
    const proxy = await proxyFor(reg);
    const path = blobPath(small.layer.digest);
    const started = performance.now();
    const r = await withRules(
      proxy,
      [{ method: 'GET', path, times: 1, fault: { kind: 'status', status: 429, headers: { 'Retry-After': '1' } } }],
      () => copy(src(proxy, 'small'), `oci:${dir}:small`),
    );
    const took = performance.now() - started;
    await assertCopied(r, dir, 'small', small);
    const gets = proxy.log.filter((e) => e.method === 'GET' && path.test(e.path));
    assert.deepEqual(
      gets.map((e) => e.status),
      [429, 200],
    );
    const waited = (stamps.get(gets[1]!) ?? 0) - (stamps.get(gets[0]!) ?? 0);
    // --retry-delay 10 alone would retry within ~10 ms: only Retry-After explains a wait of a second.
    assert.ok(waited >= 950, `the retry came ${waited.toFixed(0)} ms after the 429`);
    assert.ok(took >= 1000, `the copy took ${took.toFixed(0)} ms`);
  });

  it('4. fails clearly after bounded retries when a blob body is always truncated; a re-run completes', async () => {
    const dir = await seeded();
    const proxy = await proxyFor(reg);
    const path = blobPath(big.layer.digest);
    const started = performance.now();
    const r = await withRules(proxy, [{ method: 'GET', path, times: 100, fault: { kind: 'truncate', bytes: 1 * MiB } }], () =>
      lading('copy', '-q', '--retry-times', '2', '--retry-delay', '10', src(proxy, 'big'), `oci:${dir}:big`),
    );
    assertFailed(r, new RegExp(escape(big.layer.digest)), /failed at byte \d+ of \d+/);
    assert.ok(performance.now() - started < 20_000, 'bounded');
    const gets = proxy.log.filter((e) => e.method === 'GET' && path.test(e.path));
    assert.equal(gets.length, 3, '--retry-times 2: three attempts in all');
    await assertNothingStored(dir, 'big', big);
    await assertCopied(await copy(src(proxy, 'big'), `oci:${dir}:big`), dir, 'big', big);
  });

  it('5. refuses a layer with one flipped byte, naming the blob, and stores nothing corrupt', async () => {
    const dir = await seeded();
    const proxy = await proxyFor(reg);
    const r = await withRules(
      proxy,
      [{ method: 'GET', path: blobPath(small.layer.digest), fault: { kind: 'flip-byte', offset: 4321 } }],
      () => copy(src(proxy, 'small'), `oci:${dir}:small`),
    );
    assertFailed(r, new RegExp(escape(small.layer.digest)), /corrupt/, /hashes to sha256:/);
    await assertNothingStored(dir, 'small', small);
    await assertCopied(await copy(src(proxy, 'small'), `oci:${dir}:small`), dir, 'small', small);
  });

  it('6. refuses a manifest whose Docker-Content-Digest lies, and stores nothing', async () => {
    const dir = await seeded();
    const proxy = await proxyFor(reg);
    const lie = `sha256:${'0'.repeat(64)}`;
    const manifests = /\/manifests\//;
    const lying = (method?: string): FaultRule[] => [
      { ...(method !== undefined && { method }), path: manifests, fault: { kind: 'header', name: 'Docker-Content-Digest', value: lie } },
    ];
    // The HEAD of the tag tells the truth; the GET of the manifest lies.
    const onGet = await withRules(proxy, lying('GET'), () => copy(src(proxy, 'small'), `oci:${dir}:small`));
    assertFailed(onGet, new RegExp(escape(lie)), new RegExp(escape(small.manifest.digest)), /lying or corrupt/);
    assert.deepEqual(await fsckProblems(dir), []);
    // The reference is a digest; the HEAD lies.
    const byDigest = `docker://${proxy.host}/src/small@${small.manifest.digest}`;
    const onHead = await withRules(proxy, lying('HEAD'), () => copy(byDigest, `oci:${dir}:small`));
    assertFailed(onHead, new RegExp(escape(lie)), new RegExp(escape(small.manifest.digest)), /lying or corrupt/);
    assert.deepEqual(await fsckProblems(dir), []);
    // By tag, both lie: the tag seems to name a manifest the registry then does not have.
    const both = await withRules(proxy, lying(), () => copy(src(proxy, 'small'), `oci:${dir}:small`));
    assertFailed(both, new RegExp(escape(lie)));
    await assertNothingStored(dir, 'small', small);
    await assertCopied(await copy(src(proxy, 'small'), `oci:${dir}:small`), dir, 'small', small);
  });

  it('7. completes over a slow drip', async () => {
    const dir = await seeded();
    const proxy = await proxyFor(reg);
    const r = await withRules(
      proxy,
      [{ method: 'GET', path: blobPath(small.layer.digest), fault: { kind: 'drip', bytesPerTick: 64 * 1024, tickMs: 20 } }],
      () => copy(src(proxy, 'small'), `oci:${dir}:small`),
    );
    await assertCopied(r, dir, 'small', small);
    assert.ok(proxy.log.some((e) => e.fault === 'drip' && e.status === 200));
  });

  it('8. follows a blob redirect to another host without sending it Authorization', async () => {
    const dir = await seeded();
    const layerBytes = await readFile(blobFile(build, small.layer.digest));
    const target = await startRedirectTarget({ headers: { 'content-type': 'application/octet-stream' }, body: layerBytes });
    try {
      const basicProxy = await proxyFor(basicReg);
      const location = `${target.url}/blobs/${small.layer.digest}?sig=s3cr3t`;
      const r = await withRules(
        basicProxy,
        [{ method: 'GET', path: blobPath(small.layer.digest), fault: { kind: 'redirect', location } }],
        () => copy('--creds', `${basicReg.username}:${basicReg.password}`, src(basicProxy, 'small'), `oci:${dir}:small`),
      );
      await assertCopied(r, dir, 'small', small);
      const redirected = basicProxy.log.filter((e) => e.fault === 'redirect');
      assert.equal(redirected.length, 1, 'the layer GET was redirected');
      assert.match(String(redirected[0]?.headers.authorization), /^Basic /, 'the registry (via the proxy) was sent credentials');
      assert.equal(target.requests.length, 1, 'the redirect was followed');
      assert.equal(target.requests[0]?.path, `/blobs/${small.layer.digest}?sig=s3cr3t`);
      assert.equal(target.requests[0]?.headers.authorization, undefined, `Authorization leaked to ${target.host}`);
    } finally {
      await target.stop();
    }
  });

  it('9. fails fast on a lying 10 GiB Content-Length', async () => {
    const dir = await seeded();
    const proxy = await proxyFor(reg);
    const path = blobPath(small.layer.digest);
    const started = performance.now();
    const r = await withRules(proxy, [{ method: 'GET', path, fault: { kind: 'content-length', value: '10737418240' } }], () =>
      copy(src(proxy, 'small'), `oci:${dir}:small`),
    );
    const took = performance.now() - started;
    assertFailed(r, new RegExp(escape(small.layer.digest)), /10737418240/, /refusing/);
    assert.ok(took < 10_000, `took ${took.toFixed(0)} ms`);
    assert.equal(proxy.log.filter((e) => e.method === 'GET' && path.test(e.path)).length, 1, 'not retried');
    await assertNothingStored(dir, 'small', small);
    await assertCopied(await copy(src(proxy, 'small'), `oci:${dir}:small`), dir, 'small', small);
  });

  it('10. refuses a manifest over 4 MiB', async () => {
    const proxy = await proxyFor(reg);
    // distribution 2.8.2 itself refuses to store one (400 "http: request body too large"), so the proxy
    // serves it: once with a Docker-Content-Digest (the HEAD gives size and digest, fetchManifest checks
    // the size) and once without (the HEAD is not enough: the GET's Content-Length is checked).
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: small.config,
      layers: [small.layer],
      annotations: { 'io.lading.test.padding': 'x'.repeat(5 * MiB) },
    };
    const bytes = Buffer.from(canonicalJsonBytes(manifest));
    for (const headers of [
      { 'content-type': MediaType.ociManifest, 'docker-content-digest': digestOf(bytes) },
      { 'content-type': MediaType.ociManifest },
    ]) {
      const r = await withRules(
        proxy,
        [{ path: /\/manifests\/huge$/, fault: { kind: 'status', status: 200, headers, body: bytes.toString('utf8') } }],
        () => lading('inspect', `docker://${proxy.host}/src/small:huge`),
      );
      assertFailed(r, new RegExp(`is ${bytes.byteLength} bytes, over the 4 MiB limit`));
    }
  });

  it('11. completes an upload despite a reset on the first PATCH and a 503 on the first manifest PUT', async () => {
    const dstProxy = await proxyFor(dstReg);
    const r = await withRules(
      dstProxy,
      [
        { method: 'PATCH', times: 1, fault: { kind: 'reset-after', bytes: 0 } },
        { method: 'PUT', path: /\/manifests\//, times: 1, fault: { kind: 'status', status: 503 } },
      ],
      () => copy(`oci:${build}:huge`, `docker://${dstProxy.host}/up/huge:1`),
    );
    assert.equal(r.code, 0, `copy exited ${r.code}: ${r.stderr}`);
    const log = dstProxy.log;
    assert.ok(
      log.some((e) => e.method === 'PATCH' && e.fault === 'reset-after'),
      'a PATCH was reset',
    );
    // The answer's head (202) got through before the reset: the layer went in one PATCH, sent once.
    assert.equal(log.filter((e) => e.method === 'PATCH').length, 1, 'one PATCH');
    assert.ok(log.some((e) => e.method === 'PUT' && e.fault === 'status' && e.status === 503));
    assert.ok(log.some((e) => e.method === 'PUT' && /\/manifests\/1$/.test(e.path) && e.status === 201));
    const inspected = JSON.parse(await ok('skopeo', 'inspect', '--tls-verify=false', `docker://${dstReg.host}/up/huge:1`)) as {
      Digest: string;
      Layers: string[];
    };
    assert.equal(inspected.Digest, huge.manifest.digest);
    assert.deepEqual(inspected.Layers, [huge.layer.digest]);
  });

  it('11b. after a 503 on a PATCH, resends from the offset the registry reports, out of what it holds, not from the source', async () => {
    // RegistryClient.send hands a PATCH's 503 back (a PATCH is not repeated blindly); upload.ts asks the
    // registry how far it got (nowhere: the proxy answered) and resends from its replay window, on the
    // same upload session. The source (a registry, through a proxy of its own) is read once.
    const srcProxy = await proxyFor(reg);
    const dstProxy = await proxyFor(dstReg);
    const r = await withRules(dstProxy, [{ method: 'PATCH', times: 1, fault: { kind: 'status', status: 503 } }], () =>
      copy(src(srcProxy, 'big'), `docker://${dstProxy.host}/up503/big:1`),
    );
    assert.equal(r.code, 0, `copy exited ${r.code}: ${r.stderr}`);
    const patches = dstProxy.log.filter((e) => e.method === 'PATCH');
    assert.deepEqual(
      patches.map((e) => e.status),
      [503, 202],
    );
    assert.equal(patches[0]?.path.split('?')[0], patches[1]?.path.split('?')[0], 'the same upload session');
    assert.equal(patches[1]?.headers['content-range'], `0-${big.layer.size - 1}`);
    assert.equal(srcProxy.log.filter((e) => e.method === 'GET' && blobPath(big.layer.digest).test(e.path)).length, 1, 'read once');
    assert.equal(await registryDigest(dstReg, 'up503/big', '1'), big.manifest.digest);
  });

  it('11c. a PATCH whose answer is lost: completes, or fails clearly and a re-run completes', async () => {
    const dropper = await startResponseDropper(dstReg.host, (head) => head.startsWith('PATCH '), 1);
    try {
      const dst = `docker://${dropper.host}/lost/big:1`;
      const r = await copy(`oci:${build}:big`, dst);
      assert.ok(
        dropper.requests.some((q) => q.dropped),
        'a PATCH answer was dropped',
      );
      if (r.code !== 0) {
        assertFailed(r, /upload|blob/);
        assert.equal(await registryDigest(dstReg, 'lost/big', '1'), undefined, 'no manifest after a failed upload');
        const again = await copy(`oci:${build}:big`, dst);
        assert.equal(again.code, 0, `re-run exited ${again.code}: ${again.stderr}`);
      }
      assert.equal(await registryDigest(dstReg, 'lost/big', '1'), big.manifest.digest);
    } finally {
      await dropper.stop();
    }
  });

  it('11d. a PATCH cut mid-body: distribution drops the session, and the blob goes again from the start', async () => {
    // distribution 2.8 cancels an upload whose size no longer matches the offset in its Location's
    // _state, so there is nothing to resume: the copy engine fetches the blob again and sends it whole.
    const cutter = await startRequestCutter(dstReg.host, (head) => head.startsWith('PATCH '), 30 * MiB);
    try {
      const r = await copy(`oci:${build}:huge`, `docker://${cutter.host}/cut/huge:1`);
      assert.equal(r.code, 0, `copy exited ${r.code}: ${r.stderr}`);
      const patches = cutter.requests.filter((q) => q.head.startsWith('PATCH '));
      assert.deepEqual(
        patches.map((q) => q.cut),
        [true, false],
      );
      assert.match(patches[1]?.head ?? '', new RegExp(`\r\ncontent-range: 0-${huge.layer.size - 1}\r\n`, 'i'));
      assert.ok(
        cutter.requests.some((q) => /^GET \S*\/blobs\/uploads\//.test(q.head)),
        'the upload status was asked',
      );
      assert.equal(await registryDigest(dstReg, 'cut/huge', '1'), huge.manifest.digest);
    } finally {
      await cutter.stop();
    }
  });

  it('11e. a registry that refuses one large PATCH (413) gets the blob in chunks', async () => {
    const dstProxy = await proxyFor(dstReg);
    const r = await withRules(dstProxy, [{ method: 'PATCH', times: 1, fault: { kind: 'status', status: 413 } }], () =>
      copy(`oci:${build}:huge`, `docker://${dstProxy.host}/chunks/huge:1`),
    );
    assert.equal(r.code, 0, `copy exited ${r.code}: ${r.stderr}`);
    const patches = dstProxy.log.filter((e) => e.method === 'PATCH');
    assert.equal(patches[0]?.status, 413);
    // 40 MiB in chunks of 16 MiB: three more PATCHes, each with its length and range.
    assert.deepEqual(
      patches.slice(1).map((e) => e.status),
      [202, 202, 202],
    );
    for (const e of patches.slice(1)) assert.ok(Number(e.headers['content-length']) <= 16 * MiB, String(e.headers['content-length']));
    assert.equal(await registryDigest(dstReg, 'chunks/huge', '1'), huge.manifest.digest);
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
      // A byte near the end: most of a 20 MiB layer has gone up before the digest is known.
      const file = blobFile(corrupt, f.layer.digest);
      const bytes = await readFile(file);
      bytes[bytes.length - 5000] = (bytes[bytes.length - 5000] ?? 0) ^ 0x01;
      await writeFile(file, bytes);
    }
    for (const [name, f] of [
      ['small', small],
      ['big', big],
    ] as const) {
      const repo = `bad/${name}`;
      const dstProxy = await proxyFor(dstReg);
      const dst = `docker://${dstProxy.host}/${repo}:1`;
      const r = await copy(`oci:${corrupt}:${name}`, dst);
      assertFailed(r, new RegExp(escape(f.layer.digest)), /corrupt/, /hashes to/);
      const log = dstProxy.log;
      // The streamed PATCH started, and never completed: its last bytes wait for the verifier, which failed.
      if (name === 'big')
        assert.ok(
          log.some((e) => e.method === 'PATCH' && e.status !== 202),
          'the layer was being sent',
        );
      assert.ok(!log.some((e) => e.method === 'PATCH' && e.status === 202), 'the registry never got the whole corrupt layer');
      const hex = f.layer.digest.slice('sha256:'.length);
      assert.ok(!log.some((e) => e.method === 'PUT' && e.path.includes(hex)), 'the upload of the layer was never committed');
      assert.ok(
        log.some((e) => e.method === 'DELETE' && e.path.includes('/blobs/uploads/')),
        'the upload was cancelled',
      );
      assert.equal((await lading('digest', `docker://${dstReg.host}/${repo}:1`)).code, 1, 'no manifest for the tag');
      const head = await raw('HEAD', `http://${dstReg.host}/v2/${repo}/blobs/${f.layer.digest}`);
      assert.equal(head.status, 404, `the registry has no ${name} layer`);
      // The good source finishes the job.
      assert.equal((await copy(`oci:${build}:${name}`, dst)).code, 0);
      assert.equal(await registryDigest(dstReg, repo, '1'), f.manifest.digest);
    }
  });
});
