/**
 * Timing helpers for the benchmarks. Whole commands are timed by wall clock around the child process
 * (spawn to exit, so start-up cost counts: it is what a user waits for); in-process work by
 * process.hrtime. Contenders run alternately, A B A B ..., so that drift in the machine
 * (page cache, writeback, a noisy neighbour on the VM) hits both sides alike, and the median is
 * reported because a single slow outlier should not move the result.
 */
import { spawn, spawnSync } from 'node:child_process';

export interface Contender {
  /** Shown in progress lines. */
  label: string;
  /** Untimed preparation before each run (removing the previous destination, sync). */
  prepare?: () => Promise<void>;
  /** The timed work; resolves when it is done, rejects when it failed. */
  run: () => Promise<void>;
}

/**
 * Runs the contenders in turn, A B (C) A B (C) ..., `runs` times each; returns seconds per run, one
 * array per contender in the order given.
 */
export async function alternate(
  runs: number,
  contenders: readonly Contender[],
  onRun?: (c: Contender, s: number) => void,
): Promise<number[][]> {
  const result = contenders.map(() => [] as number[]);
  for (let i = 0; i < runs; i++) {
    for (const [k, c] of contenders.entries()) {
      await c.prepare?.();
      const t0 = process.hrtime.bigint();
      await c.run();
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      result[k]?.push(s);
      onRun?.(c, s);
    }
  }
  return result;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const mid = s.length >> 1;
  if (s.length === 0) return Number.NaN;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Runs a command to completion with output discarded (stderr kept for the error); rejects on failure. */
export function runCommand(cmd: string, args: readonly string[], options: { cwd?: string } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(options.cwd !== undefined && { cwd: options.cwd }) });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 8192) stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
  });
}

/** Runs a command synchronously and returns its stdout; throws with its stderr on failure. */
export function capture(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error !== undefined) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** A markdown table with columns padded to line up in a terminal. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/**
 * Runs a command and resolves with its stdout; rejects with its stderr on failure. Unlike `capture` it
 * does not block the event loop, so child processes this one serves (registries whose output it
 * reads) keep running meanwhile.
 */
export function captureAsync(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 8192) stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
  });
}

/** Runs a shell script (its arguments as $1, $2, …) and resolves with its stdout. */
export function sh(script: string, args: readonly string[]): Promise<string> {
  return captureAsync('sh', ['-c', script, 'sh', ...args]);
}
