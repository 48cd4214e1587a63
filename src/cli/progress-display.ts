/**
 * Progress for people and scripts. On a terminal: one status line, redrawn at most 5 times a second,
 * with images, blobs, bytes moved and the rate; finished images and failures scroll above it. With
 * `--progress json`: every ProgressEvent as one JSON line on stderr. Piped and not asked for: silence.
 */
import type { Command } from 'commander';
import type { ProgressEvent, ProgressListener } from '../copy/progress.js';
import { formatBytes } from './output.js';

export type ProgressMode = 'auto' | 'json' | 'none';

export interface ProgressDisplay {
  listener: ProgressListener | undefined;
  /** Prints a line above the status line (a finished image, a failure). */
  log(line: string): void;
  stop(): void;
}

/** What a finished (or failed) image reports: the `image` progress event, and the line printed for it. */
export interface ImageDone {
  source: string;
  destination: string;
  digest?: string | undefined;
  error?: string | undefined;
}

/** Sends the `image` event for a finished image and prints `line` (a failure's line when it failed). */
export function reportImage(display: ProgressDisplay, o: ImageDone, line: string): void {
  display.listener?.({
    type: 'image',
    source: o.source,
    destination: o.destination,
    ...(o.digest !== undefined && { digest: o.digest }),
    ...(o.error !== undefined && { error: o.error }),
  });
  display.log(line);
}

/** The output options every command that moves images takes: `-q` and `--progress`. */
export function progressOptions(cmd: Command): Command {
  return cmd
    .option('-q, --quiet', 'no progress output')
    .option('--progress <mode>', 'auto (a status line on a terminal), json (events on stderr), or none', 'auto');
}

export function progressDisplay(mode: ProgressMode, quiet: boolean): ProgressDisplay {
  if (mode === 'json') {
    return { listener: (e) => process.stderr.write(`${JSON.stringify(e)}\n`), log: () => undefined, stop: () => undefined };
  }
  if (quiet || mode === 'none' || !process.stderr.isTTY) return { listener: undefined, log: () => undefined, stop: () => undefined };

  const started = Date.now();
  const partial = new Map<string, number>();
  const totals = { images: 0, failed: 0, blobs: 0, skipped: 0, bytes: 0 };
  let drawn = false;
  let last = 0;
  const status = () => {
    const moving = [...partial.values()].reduce((a, b) => a + b, 0);
    const bytes = totals.bytes + moving;
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const images =
      totals.images + totals.failed > 0 ? `images ${totals.images}${totals.failed ? ` (+${totals.failed} failed)` : ''} · ` : '';
    return `${images}blobs ${totals.blobs} moved, ${totals.skipped} there · ${formatBytes(bytes)} · ${formatBytes(bytes / seconds)}/s · ${seconds.toFixed(0)}s`;
  };
  const draw = (force = false) => {
    const now = Date.now();
    if (!force && now - last < 200) return;
    last = now;
    process.stderr.write(`\r\x1b[2K${status()}`);
    drawn = true;
  };
  const clear = () => {
    if (drawn) process.stderr.write('\r\x1b[2K');
  };
  const listener = (e: ProgressEvent) => {
    if (e.type === 'bytes') partial.set(e.digest, e.transferred);
    else if (e.type === 'blob') {
      partial.delete(e.digest);
      if (e.action === 'copied' || e.action === 'linked') {
        totals.blobs++;
        totals.bytes += e.size;
      } else totals.skipped++;
    } else if (e.type === 'image') {
      if (e.error !== undefined) totals.failed++;
      else totals.images++;
    }
    draw();
  };
  return {
    listener,
    log: (line) => {
      clear();
      process.stderr.write(`${line}\n`);
      draw(true);
    },
    stop: () => {
      clear();
      drawn = false;
    },
  };
}
