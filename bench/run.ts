/**
 * `npm run bench`: lading against its peers, side by side in one run, on this machine.
 *
 * - copy: a ~1 GiB multi-layer image between two OCI layouts (and into an oci-archive), the built CLI
 *   `node dist/cli/main.js copy` against `skopeo copy`. Both are whole commands timed by wall clock,
 *   start-up included, because that is what a user waits for. Destinations are removed and `sync` run
 *   before every run (untimed), so neither side pays for the other's writeback. Plain skopeo gzips the
 *   uncompressed layers (its default for oci destinations), so oci→oci rows also run skopeo with
 *   --preserve-digests, which writes the same bytes lading does: the like-for-like comparison.
 * - digest: DigestVerifier's throughput (in-process, the store's 1 MiB reads) against `sha256sum`, both
 *   from the page cache, so the hash and the stream plumbing are measured, not the disk.
 *
 * - mirror (./registry-bench.ts, after the rows above): a release-like set of 40 images between
 *   docker-registry instances and into one OCI layout, `lading mirror` against skopeo sync / skopeo copy,
 *   and a re-run with nothing changed (with lading's requests per image counted).
 *
 * - build (./fs-bench.ts): `lading build` of a 20k-file tree, cold and cached, against `tar | gzip`.
 * - pin (./pin-bench.ts): `lading pin` of a large binary against `cp` and `sed -i`.
 * - sign (./sign-bench.ts): verifying 1,000 simple signatures against `gpg --verify` in a loop.
 * - verity (./verity-bench.ts): `lading fsverity digest` against `fsverity digest`.
 * - composefs (./composefs-bench.ts): `lading composefs digest` of a 1 GiB, 30k-file image against
 *   `fsverity digest` over the same files.
 *
 * Sides alternate A B A B ... and the median is reported. Environment: BENCH_RUNS (default 5),
 * BENCH_LAYERS (default 8), BENCH_LAYER_MB (default 128), BENCH_MIRROR_MB (default 2048: the mirror set's
 * distinct bytes), BENCH_MIRROR_RUNS (default: BENCH_RUNS, cut to 3 when the copy and mirror rows would
 * take over ~10 minutes), BENCH_ONLY (a comma-separated list of groups: copy (the copy and digest rows),
 * mirror, build, pin, sign, verity, composefs; default all). The fixtures live in `.bench/` and are reused.
 */
import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DigestVerifier } from '../src/oci/digest.js';
import { READ_CHUNK } from '../src/store/layout/layout-store.js';
import { ensureFixture, type Fixture, TAG } from './fixture.js';
import { alternate, capture, runCommand } from './measure.js';
import { composefsBench } from './composefs-bench.js';
import { fsBench } from './fs-bench.js';
import { mirrorBench } from './registry-bench.js';
import { pinBench } from './pin-bench.js';
import { signBench } from './sign-bench.js';
import { verityBench } from './verity-bench.js';
import { gib, mbps, render, type Row, samples } from './report.js';

const ROOT = resolve(import.meta.dirname, '..');
const WORK = join(ROOT, '.bench');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const SKOPEO = '/usr/bin/skopeo';

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${raw}: expected a positive integer`);
  return n;
}

const RUNS = envInt('BENCH_RUNS', 5);
const LAYERS = envInt('BENCH_LAYERS', 8);
const LAYER_MIB = envInt('BENCH_LAYER_MB', 128);
const MIRROR_MIB = envInt('BENCH_MIRROR_MB', 2048);
const MIRROR_RUNS = process.env.BENCH_MIRROR_RUNS ? envInt('BENCH_MIRROR_RUNS', RUNS) : undefined;
const GROUPS = ['copy', 'mirror', 'build', 'pin', 'sign', 'verity', 'composefs'] as const;
const ONLY = (process.env.BENCH_ONLY ?? '').split(',').filter((g) => g !== '');
for (const g of ONLY)
  if (!(GROUPS as readonly string[]).includes(g)) throw new Error(`BENCH_ONLY=${g}: expected one of ${GROUPS.join(', ')}`);
const want = (group: (typeof GROUPS)[number]) => ONLY.length === 0 || ONLY.includes(group);
/** The whole bench should stay under this; the mirror rows run 3 times instead of BENCH_RUNS if it would not. */
const BUDGET_SECONDS = 600;

const T0 = process.hrtime.bigint();
const elapsed = () => Number(process.hrtime.bigint() - T0) / 1e9;
const log = (s: string) => process.stderr.write(`[${elapsed().toFixed(0).padStart(4)} s] ${s}\n`);
const lading = (...args: string[]) => runCommand(process.execPath, [CLI, ...args]);
const skopeo = (...args: string[]) => runCommand(SKOPEO, args);
const sync = () => runCommand('sync', []);
const fresh = (path: string) => async () => {
  await rm(path, { recursive: true, force: true });
  await sync();
};

function machineLine(): string {
  const fsType = capture('stat', ['-f', '-c', '%T', WORK]).trim();
  const mount = tryCapture('findmnt', ['-n', '-o', 'FSTYPE', '-T', WORK]);
  const skopeoVersion = capture(SKOPEO, ['--version'])
    .trim()
    .replace(/^skopeo version /, '');
  const cpu = cpus()[0]?.model.trim() ?? 'unknown cpu';
  return (
    `machine: nproc ${availableParallelism()} (${cpu}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, node ${process.version}, ` +
    `skopeo ${skopeoVersion}, ${tryCapture('sha256sum', ['--version'])?.split('\n')[0] ?? 'sha256sum ?'}, ` +
    `filesystem ${fsType}${mount ? ` (${mount.trim()})` : ''}`
  );
}

function tryCapture(cmd: string, args: string[]): string | undefined {
  try {
    return capture(cmd, args);
  } catch {
    return undefined;
  }
}

/** Untimed checks that both tools accept the fixture and that lading's outputs are sound. */
async function verify(fx: Fixture): Promise<void> {
  const src = `oci:${fx.layout}:${TAG}`;
  const inspected = JSON.parse(capture(SKOPEO, ['inspect', src])) as { Layers?: unknown[] };
  if (inspected.Layers?.length !== LAYERS)
    throw new Error(`skopeo inspect ${src}: expected ${LAYERS} layers, got ${inspected.Layers?.length}`);
  log(`verify: skopeo inspect ${src}: ok (${LAYERS} layers)`);
  for (const flags of [[], ['--no-link']]) {
    const dst = join(WORK, 'verify-dst');
    await rm(dst, { recursive: true, force: true });
    await lading('copy', '--quiet', ...flags, src, `oci:${dst}:${TAG}`);
    log(
      `verify: lading copy${flags.map((f) => ` ${f}`).join('')}, then lading fsck: ${capture(process.execPath, [CLI, 'fsck', `oci:${dst}`]).trim()}`,
    );
    await rm(dst, { recursive: true, force: true });
  }
  const archive = join(WORK, 'verify.tar');
  await lading('copy', '--quiet', src, `oci-archive:${archive}:${TAG}`);
  const fromArchive = JSON.parse(capture(SKOPEO, ['inspect', `oci-archive:${archive}:${TAG}`])) as { Layers?: unknown[] };
  if (fromArchive.Layers?.length !== LAYERS) throw new Error(`skopeo inspect of lading's archive: expected ${LAYERS} layers`);
  log(`verify: skopeo inspect of lading's oci-archive: ok`);
  await rm(archive, { force: true });
  const sum = capture('sha256sum', [fx.digestFile]).split(' ')[0];
  if (`sha256:${sum}` !== fx.digestFileDigest) throw new Error(`sha256sum ${fx.digestFile} disagrees with the fixture marker`);
}

/**
 * One copy benchmark: lading against plain `skopeo copy` and, when `likeForLike`, against
 * `skopeo copy --preserve-digests` too, all alternating (lading's runs are shared by both rows). Plain skopeo gzips uncompressed layers on
 * the way into an OCI layout or archive (its default), so it does more work and writes a different
 * image; with --preserve-digests it writes the same bytes lading does, the like-for-like comparison.
 */
async function copyRows(
  name: string,
  fx: Fixture,
  ladingFlags: string[],
  transport: 'oci' | 'oci-archive',
  informational: boolean,
  likeForLike: boolean,
): Promise<Row[]> {
  const src = `oci:${fx.layout}:${TAG}`;
  const dst = (who: string) => join(WORK, transport === 'oci' ? `dst-${who}` : `${who}.tar`);
  const peers = [
    { peer: 'skopeo copy', flags: [] as string[], path: dst('skopeo') },
    { peer: 'skopeo copy --preserve-digests', flags: ['--preserve-digests'], path: dst('skopeo-pd') },
  ].slice(0, likeForLike ? 2 : 1);
  const dstL = dst('lading');
  const rows: Row[] = peers.map((p) => ({ name, peer: p.peer, kind: 'time', goal: 0.8, informational }));
  try {
    const [ladingRuns, ...peerRuns] = await alternate(
      RUNS,
      [
        { label: 'lading', prepare: fresh(dstL), run: () => lading('copy', '--quiet', ...ladingFlags, src, `${transport}:${dstL}:${TAG}`) },
        ...peers.map((p) => ({
          label: p.peer,
          prepare: fresh(p.path),
          run: () => skopeo('copy', '--quiet', ...p.flags, src, `${transport}:${p.path}:${TAG}`),
        })),
      ],
      (c, s) => log(`${name}: ${c.label} ${s.toFixed(3)} s`),
    );
    rows.forEach((r, i) => {
      r.lading = ladingRuns;
      r.peerRuns = peerRuns[i];
    });
  } catch (e) {
    for (const r of rows) r.error = (e as Error).message;
  } finally {
    for (const path of [dstL, ...peers.map((p) => p.path)]) await rm(path, { recursive: true, force: true });
  }
  return rows;
}

async function digestRow(fx: Fixture): Promise<Row> {
  const name = `digest sha256 ${gib(fx.totalBytes)} (page cache)`;
  const row: Row = { name, peer: 'sha256sum', kind: 'throughput', goal: 0.9, informational: false, bytes: fx.totalBytes };
  const verifyOnce = () =>
    pipeline(
      createReadStream(fx.digestFile, { highWaterMark: READ_CHUNK }),
      new DigestVerifier(fx.digestFileDigest, fx.totalBytes, 'bench file'),
      async (s) => {
        for await (const _ of s);
      },
    );
  const sha256sum = () => runCommand('sha256sum', [fx.digestFile]);
  try {
    // Warm-up, untimed: the page cache (verify() already read the file once) and the JIT.
    await verifyOnce();
    await sha256sum();
    const runs = await alternate(
      RUNS,
      [
        { label: 'DigestVerifier', run: verifyOnce },
        { label: 'sha256sum', run: sha256sum },
      ],
      (c, s) => log(`digest: ${c.label} ${s.toFixed(3)} s (${mbps(fx.totalBytes, s)} MB/s)`),
    );
    [row.lading, row.peerRuns] = runs;
  } catch (e) {
    row.error = (e as Error).message;
  }
  return row;
}

async function main(): Promise<void> {
  await mkdir(WORK, { recursive: true });
  const machine = machineLine();
  log(machine);
  const rows: Row[] = [];
  const head: string[] = [];
  const notes: string[] = [];
  if (want('copy')) {
    const fx = await ensureFixture(WORK, { layers: LAYERS, layerMiB: LAYER_MIB }, log);
    await verify(fx);
    const size = gib(fx.imageBytes);
    rows.push(
      ...(await copyRows(`copy oci→oci ${size} (hard links)`, fx, [], 'oci', false, true)),
      ...(await copyRows(`copy oci→oci ${size} --no-link`, fx, ['--no-link'], 'oci', true, true)),
      // No --preserve-digests peer here: it measured within noise of plain skopeo and cost ~50 s.
      ...(await copyRows(`copy oci→oci-archive ${size}`, fx, [], 'oci-archive', true, false)),
      await digestRow(fx),
    );
    head.push(
      `image: ${LAYERS} uncompressed tar layers x ${LAYER_MIB} MiB of random bytes + config + manifest; ${RUNS} runs each, alternating`,
    );
    notes.push(
      'copy rows time whole commands (node start-up included); destinations are removed and `sync` run before each run, untimed.',
      'destinations share the source filesystem (the normal case): lading hard-links verified blobs there and re-hashes them; --no-link streams every byte.',
      'plain `skopeo copy` gzips uncompressed layers into oci/oci-archive (new digests, more CPU); `--preserve-digests` writes the same bytes as lading.',
      'skopeo writes an oci-archive via a layout in a temp dir, then tars it. digest row: in-process DigestVerifier vs `sha256sum FILE`; MB/s = 10^6 B/s.',
    );
  }
  if (want('mirror')) {
    const m = await mirrorBench({
      work: WORK,
      cli: CLI,
      skopeo: SKOPEO,
      runs: RUNS,
      runsOverride: MIRROR_RUNS,
      totalMiB: MIRROR_MIB,
      budgetSeconds: BUDGET_SECONDS,
      elapsed,
      log,
    });
    rows.push(...m.rows);
    notes.push(...m.notes);
  }
  const small = { runs: RUNS, work: WORK, log };
  if (want('build')) rows.push(...(await fsBench(small)));
  if (want('pin')) rows.push(...(await pinBench(small)));
  if (want('sign')) rows.push(...(await signBench(small)));
  if (want('verity')) rows.push(...(await verityBench(small)));
  if (want('composefs')) {
    rows.push(...(await composefsBench(small)));
    notes.push('composefs row: whole commands, page cache warm; the image has uncompressed layers, so no decompression is measured.');
  }

  const out = [
    '',
    machine,
    ...head,
    `bench took ${elapsed().toFixed(0)} s${ONLY.length ? ` (BENCH_ONLY=${ONLY.join(',')})` : ''}`,
    '',
    render(rows),
    '',
    ...notes,
    ...samples(rows),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  if (rows.some((r) => r.lading === undefined)) process.exitCode = 1;
}

await main();
