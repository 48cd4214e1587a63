/**
 * The pin benchmark: locking a 1 GiB binary to a release, whole commands timed alternately (node
 * start-up included), from a warm page cache, each destination removed and `sync` run first (untimed):
 *
 * - `lading pin FILE --release-image … --release-version … --arch … -o OUT` against `cp FILE OUT`: the
 *   copy is the physical floor of writing a pinned copy (goal: at most 1.3 times its time);
 * - `lading pin COPY …` in place against the installer's own approach, `sed -i` substituting the release
 *   image marker (hack/pin-release-image.sh in openshift/installer; reproduced here, not copied), each on a
 *   fresh copy of the file made untimed before the run. sed pins only the release image, lading all three.
 *
 * - `pinFile()` called in-process against `cp` (informational): the same work without node's start-up
 *   and the loading of every CLI module, which a whole `lading` command pays.
 *
 * The fixture is 1 GiB of random bytes (an AES-128-CTR keystream, like machine code: few NULs in a row)
 * with the three markers three quarters of the way in, so the scan reads most of the file before it has
 * found them all. Generated once into work/pin and reused while its marker file matches. Before timing,
 * both tools' outputs are checked: lading's with `lading pin --show`, sed's by the bytes it wrote.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pinFile } from '../src/release/pin.js';
import { alternate, runCommand } from './measure.js';
import { gib, type Row } from './report.js';

const CLI = resolve(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const GiB = 2 ** 30;
const PARAMS = { version: 1, bytes: GiB, at: 0.75 };
const RELEASE = `quay.io/example/release@sha256:${'0123456789abcdef'.repeat(4)}`;
const VERSION = '4.16.0-0.nightly-2024-03-13-061822';
const ARCH = 'multi (linux/amd64)';

const marker = (label: string, xs: number) =>
  Buffer.concat([Buffer.from(`\0${label}\0`, 'latin1'), Buffer.alloc(xs, 'X'), Buffer.from([0])]);
const IMAGE_MARKER = marker('_RELEASE_IMAGE_LOCATION_', 300);
const MARKERS = [IMAGE_MARKER, marker('_RELEASE_VERSION_LOCATION_', 64), marker('_RELEASE_ARCHITECTURE_LOCATION_', 64)];

async function ensureFixture(work: string, log: (s: string) => void): Promise<string> {
  const dir = join(work, 'pin');
  const file = join(dir, 'binary');
  const stamp = join(dir, 'fixture.json');
  if ((await readFile(stamp, 'utf8').catch(() => '')) === JSON.stringify(PARAMS)) return file;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  log(`pin: writing a ${gib(PARAMS.bytes)} fixture`);
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16));
  const fh = await open(file, 'w');
  try {
    const chunk = 8 << 20;
    const at = Math.floor(PARAMS.bytes * PARAMS.at);
    let written = 0;
    while (written < PARAMS.bytes) {
      const n = Math.min(chunk, PARAMS.bytes - written);
      const block = cipher.update(Buffer.alloc(n));
      if (written <= at && at < written + n) {
        let o = at - written;
        for (const m of MARKERS) {
          m.copy(block, o);
          o += m.length + 1000;
        }
      }
      await fh.write(block);
      written += n;
    }
  } finally {
    await fh.close();
  }
  await writeFile(stamp, JSON.stringify(PARAMS));
  return file;
}

/** The installer's substitution: the whole marker becomes the value, a NUL and X padding (the same 327 bytes). */
function sedArgs(file: string): string[] {
  const padding = 'X'.repeat(326 - RELEASE.length);
  return ['-i', `s|\\x0_RELEASE_IMAGE_LOCATION_\\x0${'X'.repeat(300)}\\x0|${RELEASE}\\x0${padding}|`, file];
}

const sync = () => runCommand('sync', []);

export async function pinBench(ctx: { runs: number; work: string; log: (s: string) => void }): Promise<Row[]> {
  const file = await ensureFixture(ctx.work, ctx.log);
  const dir = join(ctx.work, 'pin');
  const size = gib(PARAMS.bytes);
  const pinArgs = ['--release-image', RELEASE, '--release-version', VERSION, '--arch', ARCH];
  const outL = join(dir, 'out-lading');
  const outC = join(dir, 'out-cp');
  const inplaceL = join(dir, 'inplace-lading');
  const inplaceS = join(dir, 'inplace-sed');
  const rows: Row[] = [
    { name: `pin ${size} -o OUT`, peer: 'cp', kind: 'time', goal: 1.3, informational: false },
    { name: `pin ${size} in place`, peer: "installer's sed -i", kind: 'time', goal: 1.0, informational: false },
    { name: `pinFile() in-process ${size} -o OUT`, peer: 'cp', kind: 'time', goal: 1.3, informational: true },
  ];
  const env = { ...process.env, LC_ALL: 'C' };
  try {
    // Untimed checks that both sides do the job.
    await runCommand(process.execPath, [CLI, 'pin', file, ...pinArgs, '-o', outL]);
    const shown = spawnSync(process.execPath, [CLI, 'pin', '--show', outL, '-o', 'json'], { encoding: 'utf8' });
    const values = Object.values((JSON.parse(shown.stdout) as { values: Record<string, { value?: string }> }).values).map((v) => v.value);
    if (JSON.stringify(values) !== JSON.stringify([RELEASE, VERSION, ARCH]))
      throw new Error(`lading pin --show read back ${JSON.stringify(values)}`);
    await runCommand('cp', [file, inplaceS]);
    const sed = spawnSync('sed', sedArgs(inplaceS), { env });
    if (sed.status !== 0) throw new Error(`sed failed: ${sed.stderr.toString()}`);
    const head = Buffer.alloc(IMAGE_MARKER.length);
    const fh = await open(inplaceS, 'r');
    await fh.read(head, 0, head.length, Math.floor(PARAMS.bytes * PARAMS.at));
    await fh.close();
    if (!head.toString('latin1').startsWith(`${RELEASE}\0XXX`)) throw new Error('sed did not pin the release image');
    ctx.log('pin: lading pin --show and the bytes sed wrote check out');

    // Warm the page cache for the source, untimed.
    await runCommand('cat', [file]).catch(() => undefined);
    const fresh = (path: string) => async () => {
      await rm(path, { force: true });
      await sync();
    };
    const copyOf = (path: string) => async () => {
      await rm(path, { force: true });
      await runCommand('cp', [file, path]);
      await sync();
    };
    const [a, b] = await alternate(
      ctx.runs,
      [
        {
          label: 'lading pin -o',
          prepare: fresh(outL),
          run: () => runCommand(process.execPath, [CLI, 'pin', file, ...pinArgs, '-o', outL]),
        },
        { label: 'cp', prepare: fresh(outC), run: () => runCommand('cp', [file, outC]) },
      ],
      (c, s) => ctx.log(`pin -o vs cp: ${c.label} ${s.toFixed(3)} s`),
    );
    rows[0]!.lading = a;
    rows[0]!.peerRuns = b;
    const [c, d] = await alternate(
      ctx.runs,
      [
        {
          label: 'lading pin (in place)',
          prepare: copyOf(inplaceL),
          run: () => runCommand(process.execPath, [CLI, 'pin', inplaceL, ...pinArgs]),
        },
        {
          label: 'sed -i',
          prepare: copyOf(inplaceS),
          run: () => runCommand('env', ['LC_ALL=C', 'sed', ...sedArgs(inplaceS)]),
        },
      ],
      (cc, s) => ctx.log(`pin in place vs sed: ${cc.label} ${s.toFixed(3)} s`),
    );
    rows[1]!.lading = c;
    rows[1]!.peerRuns = d;
    const [e, f] = await alternate(
      ctx.runs,
      [
        {
          label: 'pinFile()',
          prepare: fresh(outL),
          run: async () => void (await pinFile(file, { releaseImage: RELEASE, version: VERSION, arch: ARCH }, { output: outL })),
        },
        { label: 'cp', prepare: fresh(outC), run: () => runCommand('cp', [file, outC]) },
      ],
      (cc, s) => ctx.log(`pinFile() vs cp: ${cc.label} ${s.toFixed(3)} s`),
    );
    rows[2]!.lading = e;
    rows[2]!.peerRuns = f;
  } catch (e) {
    for (const r of rows) if (r.lading === undefined || r.peerRuns === undefined) r.error = (e as Error).message;
  } finally {
    for (const p of [outL, outC, inplaceL, inplaceS]) await rm(p, { force: true });
  }
  return rows;
}
