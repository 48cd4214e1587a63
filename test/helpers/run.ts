import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion, capturing its output; never throws on a non-zero exit. Without `input`
 * the child's stdin is /dev/null.
 */
export function run(
  cmd: string,
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      ...(options.cwd !== undefined && { cwd: options.cwd }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    // A child killed by a signal has no exit code: say which signal, for the failure message.
    child.on('close', (code, signal) => resolve({ code, stdout, stderr: code === null ? `${stderr}(killed by ${signal})` : stderr }));
    if (child.stdin !== null) {
      // A child that exits before reading its stdin closes the pipe: that is its business, not a test failure.
      child.stdin.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EPIPE') reject(err);
      });
      child.stdin.end(options.input);
    }
  });
}

/** Runs the built `lading` CLI (npm test builds it first). */
export function lading(...args: string[]): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args]);
}

/** Runs a command and returns stdout, throwing with its stderr when it fails. */
export async function ok(cmd: string, ...args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Runs lading and returns its stdout, failing the test with its stderr when it exits non-zero. */
export async function ladingOk(...args: string[]): Promise<string> {
  const r = await lading(...args);
  assert.equal(r.code, 0, `lading ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

export async function ladingJson<T>(...args: string[]): Promise<T> {
  return JSON.parse(await ladingOk(...args)) as T;
}

export async function ladingDigest(ref: string): Promise<string> {
  return (await ladingOk('digest', ref)).trim();
}
