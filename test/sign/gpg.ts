/**
 * gpg as an independent peer for the signing tests: a throwaway GNUPGHOME per test, keys made with
 * `--quick-gen-key` (optionally at a faked time, for expiry), signatures made and checked by gpg itself.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after } from 'node:test';
import { spawn } from 'node:child_process';
import type { RunResult } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

export interface Gpg {
  home: string;
  stopAgent(): Promise<void>;
  run(args: string[], input?: string): Promise<RunResult>;
  ok(args: string[], input?: string): Promise<string>;
  /** Makes a key and returns its fingerprint. */
  genKey(uid: string, options?: { algo?: string; usage?: string; expire?: string; at?: string; passphrase?: string }): Promise<string>;
  /** Writes the public key(s) to a file (armored or binary) and returns its path. */
  exportPublic(fpr: string, armor?: boolean, name?: string): Promise<string>;
  /** Writes the secret key to an armored file and returns its path. */
  exportSecret(fpr: string, passphrase?: string): Promise<string>;
}

/**
 * A gpg with its own home. Inside a test, the home is removed when the test ends; from a before hook,
 * pass `home` (made and removed by the caller) and call `stopAgent()` in the matching after hook.
 */
export async function newGpg(home?: string): Promise<Gpg> {
  const owned = home === undefined;
  home ??= await tempDir('lading-gpg-');
  const env = { ...process.env, GNUPGHOME: home, LC_ALL: 'C' };
  if (owned) after(() => exec('gpgconf', ['--kill', 'gpg-agent'], env).then(() => undefined));
  const g: Gpg = {
    home,
    stopAgent: () => exec('gpgconf', ['--kill', 'gpg-agent'], env).then(() => undefined),
    run: (args, input) => exec('gpg', ['--batch', '--no-tty', '--yes', '--homedir', home, ...args], env, input),
    async ok(args, input) {
      const r = await g.run(args, input);
      if (r.code !== 0) throw new Error(`gpg ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
      return r.stdout;
    },
    async genKey(uid, o = {}) {
      const time = o.at === undefined ? [] : ['--faked-system-time', `${o.at}!`];
      await g.ok([
        ...time,
        '--pinentry-mode',
        'loopback',
        '--passphrase',
        o.passphrase ?? '',
        '--quick-gen-key',
        uid,
        o.algo ?? 'ed25519',
        o.usage ?? 'sign',
        o.expire ?? 'never',
      ]);
      const listing = await g.ok(['--with-colons', '--list-keys', uid]);
      const fpr = /^fpr:+([0-9A-F]{40}):/m.exec(listing)?.[1];
      if (fpr === undefined) throw new Error(`no fingerprint for ${uid}`);
      return fpr;
    },
    async exportPublic(fpr, armor = true, name = `${fpr}.${armor ? 'asc' : 'gpg'}`) {
      const path = join(home, name);
      await g.ok([...(armor ? ['--armor'] : []), '--output', path, '--export', fpr]);
      return path;
    },
    async exportSecret(fpr, passphrase = '') {
      const path = join(home, `${fpr}.secret.asc`);
      await g.ok(['--pinentry-mode', 'loopback', '--passphrase', passphrase, '--armor', '--output', path, '--export-secret-keys', fpr]);
      return path;
    },
  };
  await writeFile(join(home, 'gpg.conf'), 'no-auto-key-locate\n');
  return g;
}

/** Runs a command; stdin is closed unless there is input (gpg may exit before reading, which must not EPIPE). */
export function exec(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr?.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (input !== undefined && child.stdin !== null) {
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    }
  });
}
