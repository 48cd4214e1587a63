/**
 * The signature benchmark: verifying 1,000 simple signatures (OpenPGP signed messages over
 * simple-signing payloads, all for one digest, by one RSA-2048 key), whole commands timed alternately
 * (node and gpg start-up included):
 *
 * - `lading verify sha256:… --keyring K --signature s1 … --signature s1000` (one process: every signature
 *   parsed, checked against the keyring, its payload parsed strictly and its digest compared) against
 *   `gpg --verify` run once per signature in a loop, which is how scripts check release signatures
 *   (goal: at most the loop's time);
 * - the same against `gpg --multifile --verify s1 … s1000`, gpg in one process (informational).
 *
 * The fixture (a gpg key in its own GNUPGHOME, 1,000 signatures made by gpg --sign) is generated once
 * into work/sign and reused while its stamp matches. Before timing, both sides are checked to accept
 * all of them.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { alternate, runCommand } from './measure.js';
import type { Row } from './report.js';

const CLI = resolve(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const PARAMS = { version: 1, count: 1000, key: 'rsa2048' };
const DIGEST = `sha256:${'5e'.repeat(32)}`;

interface Fixture {
  home: string;
  keyring: string;
  signatures: string[];
}

function gpg(home: string, args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('gpg', ['--batch', '--no-tty', '--yes', '--homedir', home, ...args], {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr?.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function gpgOk(home: string, args: string[], input?: string): Promise<string> {
  const r = await gpg(home, args, input);
  if (r.code !== 0) throw new Error(`gpg ${args.slice(0, 4).join(' ')}… failed: ${r.stderr.trim()}`);
  return r.stdout;
}

async function ensureFixture(work: string, log: (s: string) => void): Promise<Fixture> {
  const dir = join(work, 'sign');
  const home = join(dir, 'gnupg');
  const keyring = join(dir, 'keyring.asc');
  const signatures = Array.from({ length: PARAMS.count }, (_, i) => join(dir, 'sigs', `signature-${i + 1}`));
  const stamp = join(dir, 'fixture.json');
  if ((await readFile(stamp, 'utf8').catch(() => '')) === JSON.stringify(PARAMS)) return { home, keyring, signatures };
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'sigs'), { recursive: true });
  await mkdir(home, { mode: 0o700 });
  log(`sign: making a ${PARAMS.key} key and ${PARAMS.count} signatures with gpg`);
  await gpgOk(home, [
    '--pinentry-mode',
    'loopback',
    '--passphrase',
    '',
    '--quick-gen-key',
    'Bench Release Key <bench@example.com>',
    PARAMS.key,
    'sign',
    'never',
  ]);
  await gpgOk(home, ['--armor', '--output', keyring, '--export', 'bench@example.com']);
  // One payload per signature (the same digest under 1,000 tags), signed in batches by one gpg each.
  for (let i = 0; i < PARAMS.count; i++) {
    const payload = `{"critical":{"identity":{"docker-reference":"example.com/bench/release:${i + 1}"},"image":{"docker-manifest-digest":"${DIGEST}"},"type":"atomic container signature"},"optional":{"creator":"bench"}}`;
    await writeFile(join(dir, 'sigs', `payload-${i + 1}`), payload);
  }
  // gpg signs one message per process (--sign does not take --multifile); four at a time.
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < PARAMS.count; i = next++) {
      await gpgOk(home, [
        '--local-user',
        'bench@example.com',
        '--output',
        signatures[i] as string,
        '--sign',
        join(dir, 'sigs', `payload-${i + 1}`),
      ]);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  await gpgOk(
    home,
    ['--import-ownertrust'],
    `${(await gpgOk(home, ['--with-colons', '--fingerprint', 'bench@example.com'])).match(/^fpr:+([0-9A-F]{40}):/m)?.[1]}:6:\n`,
  );
  await writeFile(stamp, JSON.stringify(PARAMS));
  return { home, keyring, signatures };
}

export async function signBench(ctx: { runs: number; work: string; log: (s: string) => void }): Promise<Row[]> {
  const rows: Row[] = [
    {
      name: `verify ${PARAMS.count} simple signatures (one process)`,
      peer: 'gpg --verify in a loop',
      kind: 'time',
      goal: 1.0,
      informational: false,
    },
    {
      name: `verify ${PARAMS.count} simple signatures (one process)`,
      peer: 'gpg --multifile --verify (one process)',
      kind: 'time',
      goal: 1.0,
      informational: true,
    },
  ];
  try {
    const f = await ensureFixture(ctx.work, ctx.log);
    const ladingArgs = [CLI, 'verify', DIGEST, '--keyring', f.keyring, ...f.signatures.flatMap((s) => ['--signature', s]), '-o', 'json'];

    // Untimed checks that both sides accept every signature.
    const out = await new Promise<string>((res, rej) => {
      const child = spawn(process.execPath, ladingArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
      let s = '';
      let e = '';
      child.stdout.on('data', (d) => (s += d));
      child.stderr.on('data', (d) => (e += d));
      child.on('close', (code) => (code === 0 ? res(s) : rej(new Error(`lading verify failed: ${e.trim()}`))));
    });
    const accepted = (JSON.parse(out) as { signatures: unknown[] }).signatures.length;
    if (accepted !== PARAMS.count) throw new Error(`lading verify accepted ${accepted} of ${PARAMS.count}`);
    const multi = await gpg(f.home, ['--multifile', '--verify', ...f.signatures]);
    const good = (multi.stderr.match(/Good signature/g) ?? []).length;
    if (multi.code !== 0 || good !== PARAMS.count) throw new Error(`gpg --multifile --verify: ${good} good of ${PARAMS.count}`);
    ctx.log(`sign: lading and gpg both accept all ${PARAMS.count} signatures`);

    const gpgArgs = (files: string[]) => ['--batch', '--no-tty', '--homedir', f.home, ...files];
    const loop = async () => {
      for (const s of f.signatures) await runCommand('gpg', gpgArgs(['--verify', s]));
    };
    const [a, b] = await alternate(
      ctx.runs,
      [
        { label: 'lading verify', run: () => runCommand(process.execPath, ladingArgs) },
        { label: 'gpg --verify loop', run: loop },
      ],
      (c, s) => ctx.log(`sign: ${c.label} ${s.toFixed(3)} s`),
    );
    rows[0]!.lading = a;
    rows[0]!.peerRuns = b;
    const [c, d] = await alternate(
      ctx.runs,
      [
        { label: 'lading verify', run: () => runCommand(process.execPath, ladingArgs) },
        { label: 'gpg --multifile --verify', run: () => runCommand('gpg', gpgArgs(['--multifile', '--verify', ...f.signatures])) },
      ],
      (c2, s) => ctx.log(`sign: ${c2.label} ${s.toFixed(3)} s`),
    );
    rows[1]!.lading = c;
    rows[1]!.peerRuns = d;
  } catch (e) {
    for (const r of rows) if (r.lading === undefined) r.error = (e as Error).message;
    ctx.log(`sign: ${(e as Error).message}`);
  }
  return rows;
}
