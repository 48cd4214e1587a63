/**
 * The mirror benchmark: a release-like set of images (./mirror-fixture.ts) in one docker-registry
 * instance, moved by `lading mirror` and by skopeo, side by side:
 *
 * (a) registry → registry, each run into an EMPTY target (a new registry instance, started untimed):
 *     `lading mirror -f set.yaml --to docker://T/mirror` against `skopeo sync --src yaml --dest docker
 *     --preserve-digests` (skopeo 1.9.3's sync takes a YAML source and --preserve-digests).
 * (b) registry → one OCI layout: `lading mirror --to oci:DIR` against a loop of `skopeo copy
 *     --preserve-digests docker://… oci:DIR:NAME` into ONE layout (blobs shared, as lading stores them;
 *     `skopeo sync --dest dir` would write one directory per image, every shared blob again).
 * (c) (a) again with nothing changed, onto a target that already holds the set: lading against skopeo
 *     sync; and once each, untimed, behind counting proxies in front of both registries, for the
 *     requests per image (lading's goal: at most 2).
 *
 * The source registry is filled once per bench run (untimed) with `lading mirror --from` the fixture
 * layout, and checked against the fixture's manifest digests over plain HTTP. Correctness is checked
 * once, outside the timings: every image's digest in both tools' registry targets (so skopeo really
 * kept them), `lading digest` of a few, `lading fsck` of lading's layout, and skopeo reading it.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { type FaultProxy, startFaultProxy } from '../test/helpers/fault-proxy.js';
import { type RegistryInstance, startRegistry } from '../test/helpers/registry.js';
import { alternate, capture, captureAsync, median, runCommand } from './measure.js';
import { ensureMirrorFixture, type MirrorFixture, type MirrorFixtureParams } from './mirror-fixture.js';
import { gib, type Row } from './report.js';

export interface MirrorBenchContext {
  /** The bench's work dir (.bench); the mirror fixture goes to work/mirror. */
  work: string;
  cli: string;
  skopeo: string;
  /** BENCH_RUNS; cut to 3 when the projected bench time is over `budgetSeconds`, unless `runsOverride`. */
  runs: number;
  runsOverride: number | undefined;
  totalMiB: number;
  budgetSeconds: number;
  /** Seconds since the whole bench started. */
  elapsed: () => number;
  log: (s: string) => void;
}

export interface MirrorBenchResult {
  rows: Row[];
  notes: string[];
}

const PARAMS = { images: 40, baseLayers: 4, imageLayers: 5 } as const;
const PREFIX = 'mirror';
const REDUCED_RUNS = 3;
const GOAL_REQUESTS_PER_IMAGE = 2;
const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** One registry slot that every run of a contender refills with a new, empty registry. */
class TargetSlot {
  private reg: RegistryInstance | undefined;

  /** Stops the previous instance (its storage is removed), starts an empty one, and flushes the disk. */
  async fresh(): Promise<RegistryInstance> {
    await this.stop();
    this.reg = await startRegistry();
    await runCommand('sync', []);
    return this.reg;
  }

  get instance(): RegistryInstance {
    if (this.reg === undefined) throw new Error('target registry not started');
    return this.reg;
  }

  get host(): string {
    return this.instance.host;
  }

  async stop(): Promise<void> {
    const r = this.reg;
    this.reg = undefined;
    await r?.stop();
  }
}

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

async function timed(work: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await work();
  return seconds(t0);
}

export async function mirrorBench(ctx: MirrorBenchContext): Promise<MirrorBenchResult> {
  const { log } = ctx;
  const params: MirrorFixtureParams = { ...PARAMS, totalMiB: ctx.totalMiB };
  const root = join(ctx.work, 'mirror');
  const fx = await ensureMirrorFixture(root, params, log);
  const scratch = join(root, 'run');
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });

  const lading = (...args: string[]) => runCommand(process.execPath, [ctx.cli, ...args]);
  const skopeo = (...args: string[]) => runCommand(ctx.skopeo, args);
  const results = join(scratch, 'results');
  const registries: (RegistryInstance | TargetSlot)[] = [];
  const proxies: FaultProxy[] = [];
  const track = (r: RegistryInstance | TargetSlot) => registries.push(r);

  const rowA: Row = {
    name: `(a) mirror ${fx.images.length} images ${gib(fx.uniqueBytes)} registry→empty registry`,
    peer: 'skopeo sync --preserve-digests',
    kind: 'time',
    goal: 0.5,
    informational: false,
    bytes: fx.uniqueBytes,
  };
  const rowB: Row = {
    name: `(b) mirror ${fx.images.length} images registry→one OCI layout`,
    peer: `${fx.images.length}x skopeo copy --preserve-digests → one layout`,
    kind: 'time',
    goal: 0.5,
    informational: false,
    bytes: fx.uniqueBytes,
  };
  const rowC: Row = {
    name: `(c) mirror re-run, target full, nothing changed`,
    peer: 'skopeo sync --preserve-digests re-run',
    kind: 'time',
    goal: 0.1,
    informational: false,
  };
  const rows = [rowA, rowB, rowC];
  const notes: string[] = [];

  try {
    // ---- the source registry, filled once (untimed) ----
    const source = await startRegistry();
    track(source);
    const fill = await timed(() =>
      lading('mirror', '-q', '--from', `oci:${fx.layout}`, '--to', `docker://${source.host}`, '--results', results, '--tls-verify=false'),
    );
    await expectDigests(source.host, '', fx, 'source registry (filled by lading mirror --from the fixture layout)');
    log(
      `mirror: source registry ${source.host} filled in ${fill.toFixed(1)} s; all ${fx.images.length} manifest digests match the fixture`,
    );

    const ladingSet = join(scratch, 'set.yaml');
    const skopeoSet = join(scratch, 'skopeo-sync.yaml');
    await writeFile(ladingSet, ladingSetYaml(source.host, fx));
    await writeFile(skopeoSet, skopeoSyncYaml(source.host, fx));
    const ladingToRegistry = (target: string, set = ladingSet) =>
      lading(
        'mirror',
        '-q',
        '--no-bound-images',
        '-f',
        set,
        '--to',
        `docker://${target}/${PREFIX}`,
        '--results',
        results,
        '--tls-verify=false',
      );
    const skopeoSync = (target: string, set = skopeoSet) =>
      skopeo(
        'sync',
        '--src',
        'yaml',
        '--dest',
        'docker',
        '--all',
        '--preserve-digests',
        '--dest-tls-verify=false',
        set,
        `${target}/${PREFIX}`,
      );
    const layoutName = (repo: string, tag: string) => `${source.host}/${repo}:${tag}`;
    const ladingToLayout = (dir: string) =>
      lading('mirror', '-q', '--no-bound-images', '-f', ladingSet, '--to', `oci:${dir}`, '--results', results);
    const skopeoToLayout = async (dir: string) => {
      for (const img of fx.images) {
        await skopeo(
          'copy',
          '--quiet',
          '--all',
          '--preserve-digests',
          '--src-tls-verify=false',
          `docker://${source.host}/${img.repo}:${img.tag}`,
          `oci:${dir}:${layoutName(img.repo, img.tag)}`,
        );
      }
    };
    const freshDir = (dir: string) => async () => {
      await rm(dir, { recursive: true, force: true });
      await runCommand('sync', []);
    };

    // ---- correctness, once and untimed (these runs also warm up and size the timed part) ----
    const full = new TargetSlot(); // lading's target here; then the full target of (c)
    const other = new TargetSlot();
    track(full);
    track(other);
    const once = { aL: 0, aS: 0, bL: 0, bS: 0, cL: 0, cS: 0 };
    await full.fresh();
    const movedA = await moved(ctx.cli, [
      '-f',
      ladingSet,
      '--to',
      `docker://${full.host}/${PREFIX}`,
      '--results',
      results,
      '--tls-verify=false',
    ]);
    once.aL = movedA.seconds;
    await expectDigests(full.host, `${PREFIX}/`, fx, "lading mirror's registry target");
    const picks = [0, Math.floor(fx.images.length / 2), fx.images.length - 1].map((i) => fx.images[i]).filter((i) => i !== undefined);
    for (const img of picks) {
      const ref = `docker://${full.host}/${PREFIX}/${img.repo}:${img.tag}`;
      const got = (await captureAsync(process.execPath, [ctx.cli, 'digest', ref])).trim();
      if (got !== img.manifest.digest) throw new Error(`lading digest ${ref} = ${got}, but the source has ${img.manifest.digest}`);
    }
    log(
      `verify: lading mirror → registry ${once.aL.toFixed(1)} s (${movedA.text}); ${fx.images.length} digests match the source; lading digest of ${picks.length} agrees`,
    );
    await other.fresh();
    once.aS = await timed(() => skopeoSync(other.host));
    await expectDigests(other.host, `${PREFIX}/`, fx, "skopeo sync --preserve-digests's registry target");
    log(`verify: skopeo sync → registry ${once.aS.toFixed(1)} s; skopeo kept all ${fx.images.length} digests (--preserve-digests)`);
    once.cL = await timed(() => ladingToRegistry(full.host));
    once.cS = await timed(() => skopeoSync(other.host));
    await expectDigests(other.host, `${PREFIX}/`, fx, 'the target after a skopeo re-run');
    log(`verify: re-runs onto the full targets: lading ${once.cL.toFixed(2)} s, skopeo ${once.cS.toFixed(2)} s`);
    await other.stop();

    const dirL = join(scratch, 'layout-lading');
    const dirS = join(scratch, 'layout-skopeo');
    await freshDir(dirL)();
    const movedB = await moved(ctx.cli, ['-f', ladingSet, '--to', `oci:${dirL}`, '--results', results]);
    once.bL = movedB.seconds;
    const fsck = (await captureAsync(process.execPath, [ctx.cli, 'fsck', `oci:${dirL}`])).trim();
    await expectLayout(dirL, fx, (img) => layoutName(img.repo, img.tag), "lading mirror's layout");
    const first = fx.images[0];
    if (first !== undefined) {
      const inspected = JSON.parse(await captureAsync(ctx.skopeo, ['inspect', `oci:${dirL}:${layoutName(first.repo, first.tag)}`])) as {
        Digest?: string;
      };
      if (inspected.Digest !== first.manifest.digest) throw new Error(`skopeo inspect of lading's layout: ${inspected.Digest}`);
    }
    log(`verify: lading mirror → layout ${once.bL.toFixed(1)} s (${movedB.text}); lading fsck: ${fsck}; skopeo reads it`);
    await freshDir(dirS)();
    once.bS = await timed(() => skopeoToLayout(dirS));
    await expectLayout(dirS, fx, (img) => layoutName(img.repo, img.tag), "skopeo's layout");
    log(`verify: skopeo copy loop → layout ${once.bS.toFixed(1)} s; digests kept`);
    await freshDir(dirL)();
    await freshDir(dirS)();

    // ---- requests on a re-run, lading's and skopeo's, through counting proxies (untimed) ----
    const srcProxy = await startFaultProxy(source);
    proxies.push(srcProxy);
    const dstProxy = await startFaultProxy(full.instance);
    proxies.push(dstProxy);
    const proxiedSet = join(scratch, 'set-proxied.yaml');
    const proxiedSkopeoSet = join(scratch, 'skopeo-sync-proxied.yaml');
    await writeFile(proxiedSet, ladingSetYaml(srcProxy.host, fx));
    await writeFile(proxiedSkopeoSet, skopeoSyncYaml(srcProxy.host, fx));
    const countRequests = async (label: string, work: () => Promise<void>) => {
      srcProxy.log.length = 0;
      dstProxy.log.length = 0;
      const s = await timed(work);
      const all = [...srcProxy.log, ...dstProxy.log];
      const c = {
        count: all.length,
        perImage: all.length / fx.images.length,
        failed: all.filter((e) => e.status >= 500 || e.status === 0).length,
        breakdown: [...tally('source', srcProxy.log), ...tally('target', dstProxy.log)],
      };
      log(`requests: ${label} re-run: ${c.count} (${c.perImage.toFixed(2)} per image) in ${s.toFixed(2)} s: ${c.breakdown.join(', ')}`);
      return c;
    };
    const ladingReq = await countRequests('lading', () => ladingToRegistry(dstProxy.host, proxiedSet));
    const skopeoReq = await countRequests('skopeo', () => skopeoSync(dstProxy.host, proxiedSkopeoSet));
    // Release payloads name their images by digest: the same re-run with the set written that way.
    const proxiedDigestSet = join(scratch, 'set-proxied-digests.yaml');
    await writeFile(proxiedDigestSet, ladingSetYaml(srcProxy.host, fx, 'digest'));
    const ladingDigestReq = await countRequests('lading, images by digest,', () => ladingToRegistry(dstProxy.host, proxiedDigestSet));
    rowC.extraGoal = {
      text: `≤ ${GOAL_REQUESTS_PER_IMAGE} req/image`,
      value: `${ladingReq.perImage.toFixed(1)} req/image`,
      met: ladingReq.perImage <= GOAL_REQUESTS_PER_IMAGE && ladingReq.failed === 0,
    };
    await Promise.all(proxies.splice(0).map((p) => p.stop()));

    const startups: number[] = [];
    for (let i = 0; i < 3; i++) startups.push(await timed(() => lading('--version')));
    const startup = median(startups);

    // ---- how many runs fit ----
    const restart = 1.5; // seconds per fresh registry (stop, rm, start, sync), roughly
    const perRound = once.aL + once.aS + once.bL + once.bS + once.cL + once.cS + 2 * restart;
    const projected = (runs: number) => ctx.elapsed() + runs * perRound;
    let runs = ctx.runsOverride ?? ctx.runs;
    let runsWhy = ctx.runsOverride !== undefined ? `BENCH_MIRROR_RUNS=${ctx.runsOverride}` : `BENCH_RUNS=${ctx.runs}`;
    if (ctx.runsOverride === undefined && runs > REDUCED_RUNS && projected(runs) > ctx.budgetSeconds) {
      runsWhy = `reduced from ${runs}: at ${perRound.toFixed(0)} s a round the bench would have taken ~${projected(runs).toFixed(0)} s, over ${ctx.budgetSeconds} s`;
      runs = REDUCED_RUNS;
    }
    log(`mirror: ${runs} runs per row (${runsWhy}); projected end ~${projected(runs).toFixed(0)} s`);

    // ---- (a) ----
    const slotL = new TargetSlot();
    const slotS = new TargetSlot();
    track(slotL);
    track(slotS);
    await runRow(rowA, runs, log, [
      { label: 'lading mirror', prepare: () => slotL.fresh().then(() => undefined), run: () => ladingToRegistry(slotL.host) },
      { label: 'skopeo sync', prepare: () => slotS.fresh().then(() => undefined), run: () => skopeoSync(slotS.host) },
    ]);
    await slotL.stop();
    await slotS.stop();

    // ---- (b) ----
    await runRow(rowB, runs, log, [
      { label: 'lading mirror', prepare: freshDir(dirL), run: () => ladingToLayout(dirL) },
      { label: 'skopeo copy loop', prepare: freshDir(dirS), run: () => skopeoToLayout(dirS) },
    ]);
    await freshDir(dirL)();
    await freshDir(dirS)();

    // ---- (c) ----
    await runRow(rowC, runs, log, [
      { label: 'lading mirror re-run', run: () => ladingToRegistry(full.host) },
      { label: 'skopeo sync re-run', run: () => skopeoSync(full.host) },
    ]);
    await expectDigests(full.host, `${PREFIX}/`, fx, 'the full target after the re-runs');
    const floor = rowC.peerRuns === undefined ? undefined : median(rowC.peerRuns) * rowC.goal;
    const floorNote =
      floor !== undefined && floor < startup
        ? ` (c)'s time goal, ${floor.toFixed(3)} s, is below lading's start-up alone: out of reach for a Node CLI.`
        : '';

    const registryVersion = capture('/usr/bin/docker-registry', ['--version']).trim().split(' ').pop() ?? '?';
    notes.push(
      `mirror set: ${fx.images.length} images (OCI manifests), each ${PARAMS.baseLayers} base layers shared by all + ${PARAMS.imageLayers} of its own: ` +
        `${fx.layers} distinct uncompressed tar layers of random bytes, ${gib(fx.uniqueBytes)} distinct (${gib(fx.perImageBytes)} summed over images); BENCH_MIRROR_MB=${ctx.totalMiB}.`,
      `lading's own account of one run (-o json), distinct bytes being ${gib(fx.uniqueBytes)}: (a) ${movedA.text}; (b) ${movedB.text}.`,
      `registries: docker-registry ${registryVersion} on loopback HTTP, storage on the bench's filesystem; the source is filled once per bench (untimed, lading mirror --from the fixture layout) and checked against the fixture's digests.`,
      `runs: ${runs} per mirror row, alternating (${runsWhy}). MB/s in (a)/(b) = distinct bytes / s.`,
      `lading runs with --no-bound-images in every row: skopeo has no bound-image lookup and the set holds no bootable image; with the lookup on (the default) each image costs 2 more source requests (its manifest and config, to see whether it is bootable), on a re-run too.`,
      `(a) every run starts with a new, empty target registry (started untimed). lading: \`lading mirror -q --no-bound-images -f set.yaml --to docker://T/${PREFIX} --tls-verify=false\` (defaults: --image-jobs 4, -j 6). ` +
        `skopeo: \`skopeo sync --src yaml --dest docker --all --preserve-digests --dest-tls-verify=false\` (1.9.3's sync takes a YAML source and --preserve-digests; it copies one image at a time). ` +
        `Checked once: all ${fx.images.length} digests in both targets equal the source's.`,
      `(b) lading: \`lading mirror -q --no-bound-images -f set.yaml --to oci:DIR\` (one layout, blobs stored once). skopeo: a loop of ${fx.images.length} \`skopeo copy --all --preserve-digests docker://… oci:DIR:NAME\` into ONE layout ` +
        `(it shares blobs; \`skopeo sync --dest dir\` would write one dir per image). Checked once: lading fsck ok, both layouts hold the source digests, skopeo reads lading's layout.`,
      `(c) the same commands as (a) onto a target that already holds the set. Requests, counted once (untimed) through proxies in front of both registries: ` +
        `lading ${ladingReq.count}, ${ladingReq.perImage.toFixed(2)} per image (goal ≤ ${GOAL_REQUESTS_PER_IMAGE}: ${rowC.extraGoal.met ? 'met' : 'NOT met'})` +
        `${ladingReq.failed > 0 ? `, ${ladingReq.failed} failed` : ''}: ${ladingReq.breakdown.join(', ')}. ` +
        `skopeo sync ${skopeoReq.count}, ${skopeoReq.perImage.toFixed(2)} per image: ${skopeoReq.breakdown.join(', ')} (it skips an image whose manifest the target has). ` +
        `The same set named by digest (as release payloads name images), lading: ${ladingDigestReq.count}, ${ladingDigestReq.perImage.toFixed(2)} per image: ${ladingDigestReq.breakdown.join(', ')}. ` +
        `lading start-up alone (\`lading --version\`, median of 3): ${startup.toFixed(2)} s.${floorNote}`,
      `skopeo keeps its blob-info cache (/var/lib/containers/cache) between runs, as it does in real use; each (a) target is a new instance on a new port.`,
    );
  } catch (e) {
    for (const r of rows) if (r.lading === undefined && r.error === undefined) r.error = (e as Error).message;
    log(`mirror: FAILED: ${(e as Error).message}`);
  } finally {
    await Promise.all(proxies.map((p) => p.stop()));
    for (const r of registries.reverse()) await r.stop();
    await rm(scratch, { recursive: true, force: true });
  }
  return { rows, notes };
}

async function runRow(
  row: Row,
  runs: number,
  log: (s: string) => void,
  contenders: [Parameters<typeof alternate>[1][number], Parameters<typeof alternate>[1][number]],
): Promise<void> {
  try {
    const [l, p] = await alternate(runs, contenders, (c, s) => log(`${row.name.slice(0, 3)}: ${c.label} ${s.toFixed(2)} s`));
    row.lading = l;
    row.peerRuns = p;
  } catch (e) {
    row.error = (e as Error).message;
    log(`${row.name}: FAILED: ${row.error}`);
  }
}

/** One `lading mirror -o json` run (outside the table's timings): its seconds, and what lading says it moved, summed over images. */
async function moved(cli: string, args: string[]): Promise<{ seconds: number; text: string }> {
  const t0 = process.hrtime.bigint();
  const out = await captureAsync(process.execPath, [cli, 'mirror', '-o', 'json', ...args]);
  const secs = seconds(t0);
  const report = JSON.parse(out) as { images: { result?: { bytes: number; blobs: Record<string, number> } }[] };
  const blobs: Record<string, number> = {};
  let bytes = 0;
  for (const i of report.images) {
    bytes += i.result?.bytes ?? 0;
    for (const [k, n] of Object.entries(i.result?.blobs ?? {})) blobs[k] = (blobs[k] ?? 0) + n;
  }
  const counts = Object.entries(blobs)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
  return { seconds: secs, text: `moved ${gib(bytes)}; blobs: ${counts}` };
}

function ladingSetYaml(host: string, fx: MirrorFixture, by: 'tag' | 'digest' = 'tag'): string {
  const name = (i: MirrorFixture['images'][number]) => (by === 'tag' ? `${i.repo}:${i.tag}` : `${i.repo}@${i.manifest.digest}`);
  return stringify({ images: fx.images.map((i) => ({ name: `docker://${host}/${name(i)}` })) });
}

/** skopeo sync's YAML source: registry → {images: {repo: [tags]}}, plain HTTP. */
function skopeoSyncYaml(host: string, fx: MirrorFixture): string {
  const images: Record<string, string[]> = {};
  for (const i of fx.images) (images[i.repo] ??= []).push(i.tag);
  return stringify({ [host]: { 'tls-verify': false, images } });
}

/** Every image of the set is at host/<prefix><repo>:<tag> with the fixture's manifest digest (HEAD, plain HTTP). */
async function expectDigests(host: string, prefix: string, fx: MirrorFixture, what: string): Promise<void> {
  const wrong: string[] = [];
  for (const img of fx.images) {
    const res = await fetch(`http://${host}/v2/${prefix}${img.repo}/manifests/${img.tag}`, {
      method: 'HEAD',
      headers: { accept: MANIFEST_ACCEPT },
    });
    const digest = res.headers.get('docker-content-digest');
    if (!res.ok || digest !== img.manifest.digest) wrong.push(`${prefix}${img.repo}:${img.tag} (${res.status} ${digest ?? '-'})`);
  }
  if (wrong.length > 0) throw new Error(`${what}: ${wrong.length} images missing or with other digests: ${wrong.slice(0, 3).join(', ')}`);
}

/** The layout's index.json names every image of the set with the fixture's manifest digest. */
async function expectLayout(dir: string, fx: MirrorFixture, name: (img: MirrorFixture['images'][number]) => string, what: string) {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const byName = new Map(index.manifests.map((m) => [m.annotations?.['org.opencontainers.image.ref.name'], m.digest]));
  const wrong = fx.images.filter((img) => byName.get(name(img)) !== img.manifest.digest);
  if (wrong.length > 0) throw new Error(`${what}: ${wrong.length} images missing or with other digests, e.g. ${name(wrong[0]!)}`);
}

/** "source HEAD manifests by tag ×40", ... : what the proxy saw, grouped by method and kind of path. */
function tally(side: string, log: FaultProxy['log']): string[] {
  const counts = new Map<string, number>();
  for (const e of log) {
    const path = e.path.split('?')[0] ?? '';
    let kind = 'other';
    if (path === '/v2/') kind = '/v2/';
    else if (/\/referrers\//.test(path)) kind = 'referrers';
    else if (/\/tags\/list$/.test(path)) kind = 'tags/list';
    else if (/\/blobs\/uploads\//.test(path)) kind = 'blob uploads';
    else if (/\/blobs\//.test(path)) kind = 'blobs';
    else if (/\/manifests\/sha256-/.test(path)) kind = 'manifests (referrers tag)';
    else if (/\/manifests\/sha256:/.test(path)) kind = 'manifests by digest';
    else if (/\/manifests\//.test(path)) kind = 'manifests by tag';
    const key = `${side} ${e.method} ${kind} (${e.status})`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${k} ×${n}`);
}
