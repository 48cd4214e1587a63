/**
 * The fs-verity benchmark: `lading fsverity digest` against `fsverity digest` (Debian's fsverity-utils,
 * C and OpenSSL) on the same files, whole commands timed alternately (node start-up included):
 *
 * - one 1 GiB file, SHA-256 and SHA-512;
 * - 30,000 files totalling 1 GiB (sizes spread from a few bytes to ~1 MiB, like an OS image), SHA-256,
 *   both tools given every path through `xargs -0` in the same order.
 *
 * The fixture (random bytes: an AES-128-CTR keystream) is generated once into work/verity and reused
 * while its marker matches. Before timing, both tools' outputs are compared line for line.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { alternate, sh } from './measure.js';
import { gib, type Row } from './report.js';

const CLI = resolve(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const GiB = 2 ** 30;
const FILES = 30_000;
const DIRS = 300;
const PARAMS = { version: 1, bigBytes: GiB, files: FILES, treeBytes: GiB };

interface Fixture {
  big: string;
  tree: string;
  list: string;
}

/** Random bytes on demand, fast: an AES-128-CTR keystream. */
export function keystream(): (n: number) => Buffer {
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16));
  return (n) => cipher.update(Buffer.alloc(n));
}

/** `count` file sizes: log-uniform from 1 byte to 1 MiB, like an OS image, scaled so they add up to `total`. */
export function treeSizes(total: number, count = FILES): number[] {
  const raw = Array.from({ length: count }, (_, i) => Math.exp((((i * 7919) % count) / count) * Math.log(2 ** 20)));
  const sum = raw.reduce((a, b) => a + b, 0);
  const sizes = raw.map((r) => Math.max(0, Math.floor((r / sum) * total)));
  sizes[0]! += total - sizes.reduce((a, b) => a + b, 0);
  return sizes;
}

async function ensureFixture(work: string, log: (s: string) => void): Promise<Fixture> {
  const dir = join(work, 'verity');
  const fx: Fixture = { big: join(dir, 'big.bin'), tree: join(dir, 'tree'), list: join(dir, 'files.list') };
  const marker = join(dir, 'fixture.json');
  const found = await readFile(marker, 'utf8').catch(() => '');
  if (found === JSON.stringify(PARAMS)) return fx;
  log(`verity fixture: generating ${gib(PARAMS.bigBytes)} file and ${FILES} files (${gib(PARAMS.treeBytes)}) in ${dir}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(fx.tree, { recursive: true });
  const bytes = keystream();
  const fh = await open(fx.big, 'w');
  for (let done = 0; done < PARAMS.bigBytes; done += 4 << 20) await fh.write(bytes(Math.min(4 << 20, PARAMS.bigBytes - done)));
  await fh.close();
  for (let d = 0; d < DIRS; d++) await mkdir(join(fx.tree, `d${String(d).padStart(3, '0')}`));
  const paths: string[] = [];
  for (const [i, size] of treeSizes(PARAMS.treeBytes).entries()) {
    const path = join(fx.tree, `d${String(i % DIRS).padStart(3, '0')}`, `f${i}`);
    await writeFile(path, bytes(size));
    paths.push(path);
  }
  await writeFile(fx.list, `${paths.join('\0')}\0`);
  await writeFile(marker, JSON.stringify(PARAMS));
  return fx;
}

const ladingCmd = (alg: string) => `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} fsverity digest --hash-alg ${alg}`;
const peerCmd = (alg: string) => `fsverity digest --hash-alg ${alg}`;

async function row(
  name: string,
  alg: string,
  script: (cmd: string) => string,
  args: string[],
  runs: number,
  log: (s: string) => void,
): Promise<Row> {
  const r: Row = { name, peer: 'fsverity digest', kind: 'time', goal: 1.2, informational: false };
  try {
    const [ours, theirs] = [await sh(script(ladingCmd(alg)), args), await sh(script(peerCmd(alg)), args)];
    if (ours !== theirs) throw new Error(`${name}: lading and fsverity print different digests`);
    log(`${name}: outputs agree (${ours.split('\n').length - 1} lines)`);
    [r.lading, r.peerRuns] = await alternate(
      runs,
      [
        { label: 'lading', run: () => sh(script(ladingCmd(alg)), args).then(() => undefined) },
        { label: 'fsverity', run: () => sh(script(peerCmd(alg)), args).then(() => undefined) },
      ],
      (c, s) => log(`${name}: ${c.label} ${s.toFixed(3)} s`),
    );
  } catch (e) {
    r.error = (e as Error).message;
  }
  return r;
}

export async function verityBench(ctx: { runs: number; work: string; log: (s: string) => void }): Promise<Row[]> {
  const fx = await ensureFixture(ctx.work, ctx.log);
  const single = (cmd: string) => `${cmd} "$1"`;
  // One invocation per tool (xargs's default 128 KiB batches would time node's start-up 11 times).
  const many = (cmd: string) => `xargs -0 -s 2000000 -a "$1" ${cmd}`;
  return [
    await row(`fsverity digest sha256, one ${gib(PARAMS.bigBytes)} file`, 'sha256', single, [fx.big], ctx.runs, ctx.log),
    await row(`fsverity digest sha512, one ${gib(PARAMS.bigBytes)} file`, 'sha512', single, [fx.big], ctx.runs, ctx.log),
    await row(`fsverity digest sha256, ${FILES} files, ${gib(PARAMS.treeBytes)}`, 'sha256', many, [fx.list], ctx.runs, ctx.log),
  ];
}
