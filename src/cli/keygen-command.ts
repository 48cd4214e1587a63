/**
 * `lading keygen --cosign [--output-prefix P] [--force]`: writes P.key (cosign's encrypted ECDSA P-256
 * key, mode 0600) and P.pub (PKIX), readable by cosign, skopeo and Lading. The password comes from
 * COSIGN_PASSWORD (which may be empty, as in cosign) or, on a terminal, from a prompt asked twice.
 *
 * Also exports the password lookup, so `lading sign --cosign-key` asks the same way.
 */
import { randomBytes } from 'node:crypto';
import { link, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { fsError, LadingError } from '../errors.js';
import { generateCosignKeyPair } from '../sign/cosign/index.js';
import { type OutputFormat, printJson } from './output.js';

interface KeygenFlags {
  cosign?: boolean;
  outputPrefix: string;
  force?: boolean;
  output: OutputFormat;
}

export function registerKeygenCommand(program: Command): void {
  program
    .command('keygen')
    .description('generate a signing key pair: with --cosign, PREFIX.key (encrypted, cosign format) and PREFIX.pub')
    .option('--cosign', 'a cosign ECDSA P-256 key pair (password from COSIGN_PASSWORD or a prompt)')
    .option('--output-prefix <prefix>', 'write PREFIX.key and PREFIX.pub', 'cosign')
    .option('-f, --force', 'overwrite PREFIX.key and PREFIX.pub if they exist')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (flags: KeygenFlags) => {
      if (!flags.cosign) {
        throw new LadingError('USAGE', 'keygen makes cosign keys only: pass --cosign (OpenPGP keys for simple signing come from gpg)');
      }
      if (flags.output !== 'text' && flags.output !== 'json')
        throw new LadingError('USAGE', `--output must be text or json, not ${flags.output}`);
      if (flags.outputPrefix === '') throw new LadingError('USAGE', '--output-prefix must not be empty');
      const keyPath = resolve(`${flags.outputPrefix}.key`);
      const pubPath = resolve(`${flags.outputPrefix}.pub`);
      if (!flags.force) for (const p of [keyPath, pubPath]) await refuseExisting(p);
      const password = await cosignPassword({ confirm: true });
      const { privatePem, publicPem } = await generateCosignKeyPair(password);
      await writeBoth(
        [
          { path: keyPath, content: privatePem, mode: 0o600 },
          { path: pubPath, content: publicPem, mode: 0o644 },
        ],
        flags.force ?? false,
      );
      if (flags.output === 'json') printJson({ privateKey: keyPath, publicKey: pubPath });
      else process.stdout.write(`Private key written to ${keyPath}\nPublic key written to ${pubPath}\n`);
    });
}

/**
 * The cosign key password: COSIGN_PASSWORD when set (even to ""), else a prompt on the terminal (twice
 * when `confirm`), else a usage error (a script must not hang waiting for input it cannot give).
 */
export async function cosignPassword(options: { confirm: boolean; prompt?: string }): Promise<string> {
  const env = process.env.COSIGN_PASSWORD;
  if (env !== undefined) return env;
  if (!process.stdin.isTTY) {
    throw new LadingError(
      'USAGE',
      'no password for the cosign key: set COSIGN_PASSWORD (it may be empty) or run on a terminal to be asked',
    );
  }
  const prompt = options.prompt ?? 'Enter password for private key: ';
  const answers = await promptHidden(options.confirm ? [prompt, prompt.replace(/: $/, ' again: ')] : [prompt]);
  if (options.confirm && answers[0] !== answers[1]) throw new LadingError('USAGE', 'the passwords do not match');
  return answers[0] ?? '';
}

/** Asks each prompt on stderr and reads one line per prompt from the terminal without echo. */
function promptHidden(prompts: readonly string[]): Promise<string[]> {
  const stdin = process.stdin;
  const answers: string[] = [];
  let current = '';
  return new Promise((resolvePromise, reject) => {
    const finish = (err?: Error): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      if (err) reject(err);
      else resolvePromise(answers);
    };
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          process.stderr.write('\n');
          answers.push(current);
          current = '';
          if (answers.length === prompts.length) return finish();
          process.stderr.write(prompts[answers.length] ?? '');
        } else if (ch === '\u0003') {
          process.stderr.write('\n');
          return finish(new LadingError('USAGE', 'interrupted'));
        } else if (ch === '\u0004' && current === '') {
          process.stderr.write('\n');
          return finish(new LadingError('USAGE', 'no password given (end of input)'));
        } else if (ch === '\u007f' || ch === '\b') {
          current = [...current].slice(0, -1).join('');
        } else {
          current += ch;
        }
      }
    };
    // Echo off before the prompt shows, so input typed as soon as it appears is not echoed.
    stdin.setRawMode(true);
    process.stderr.write(prompts[0] ?? '');
    stdin.on('data', onData);
    stdin.resume();
  });
}

async function refuseExisting(path: string): Promise<void> {
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw fsError(e, 'check', path);
  });
  if (st !== undefined)
    throw new LadingError('IO', `${path} already exists: pass --force to overwrite it, or choose another --output-prefix`, { path });
}

/**
 * Writes each file to a temp file beside it (fsynced, with its mode), then moves them into place: by
 * rename with --force, else by hard link, which fails rather than replace a file that appeared meanwhile.
 * On any failure, nothing this run wrote is left behind.
 */
async function writeBoth(files: { path: string; content: string; mode: number }[], force: boolean): Promise<void> {
  const temps: string[] = [];
  const placed: string[] = [];
  try {
    for (const f of files) {
      const tmp = join(dirname(f.path), `.${basename(f.path)}.${randomBytes(6).toString('hex')}.tmp`);
      const fh = await open(tmp, 'wx', f.mode).catch((e: unknown) => {
        throw fsError(e, 'write', f.path);
      });
      temps.push(tmp);
      try {
        await fh.writeFile(f.content);
        await fh.chmod(f.mode); // exact mode whatever the umask
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    for (const [i, f] of files.entries()) {
      const tmp = temps[i] as string;
      if (force) await rename(tmp, f.path);
      else {
        await link(tmp, f.path).catch((e: NodeJS.ErrnoException) => {
          if (e.code === 'EEXIST') throw new LadingError('IO', `${f.path} already exists: pass --force to overwrite it`, { path: f.path });
          throw fsError(e, 'write', f.path);
        });
      }
      placed.push(f.path);
    }
  } catch (e) {
    if (!force) for (const p of placed) await rm(p, { force: true });
    throw e;
  } finally {
    for (const t of temps) await rm(t, { force: true });
  }
}
