/** `lading fsck` and `lading gc`: keeping an OCI layout healthy. */
import type { Command } from 'commander';
import { LadingError } from '../errors.js';
import { fsckLayout } from '../store/layout/fsck.js';
import { gcLayout } from '../store/layout/gc.js';
import { LayoutStore } from '../store/layout/layout-store.js';
import { parseTransportRef } from '../store/transport.js';
import { formatBytes, type OutputFormat, printJson } from './output.js';

async function openLayout(input: string, mode: 'read' | 'write'): Promise<LayoutStore> {
  const t = parseTransportRef(input);
  if (t.transport !== 'oci' || t.ref !== undefined) {
    throw new LadingError('USAGE', `${input}: name a layout directory as oci:DIR (no tag)`);
  }
  const store = await LayoutStore.open(t.path, 'read');
  return mode === 'read' ? store : LayoutStore.open(t.path, 'write');
}

export function registerLayoutCommands(program: Command): void {
  program
    .command('fsck')
    .description('re-hash every blob of a layout and check that every reference resolves')
    .argument('<layout>', 'oci:DIR')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (input: string, opts: { output: OutputFormat }) => {
      const store = await openLayout(input, 'read');
      const report = await fsckLayout(store);
      if (opts.output === 'json') printJson(report);
      else {
        for (const p of report.problems) process.stdout.write(`${p.message}\n`);
        process.stdout.write(
          `${store.name}: ${report.blobs} blobs, ${formatBytes(report.bytes)}, ${report.referenced} referenced: ${report.problems.length === 0 ? 'ok' : `${report.problems.length} problems`}\n`,
        );
      }
      if (report.problems.length > 0) {
        throw new LadingError('INVALID_LAYOUT', `fsck found ${report.problems.length} problems in ${store.name}`);
      }
    });

  program
    .command('gc')
    .description('remove blobs that nothing in index.json references, and temp files left by killed copies')
    .argument('<layout>', 'oci:DIR')
    .option('--dry-run', 'list what would be removed, remove nothing')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (input: string, opts: { dryRun?: boolean; output: OutputFormat }) => {
      const store = await openLayout(input, 'write');
      try {
        const report = await gcLayout(store, { dryRun: opts.dryRun ?? false });
        if (opts.output === 'json') printJson(report);
        else {
          const verb = report.dryRun ? 'would remove' : 'removed';
          for (const r of report.removed) process.stdout.write(`${verb} ${r.digest}  ${formatBytes(r.size)}\n`);
          process.stdout.write(
            `${store.name}: ${verb} ${report.removed.length} blobs (${formatBytes(report.bytes)}) and ${report.tempFiles} temp files\n`,
          );
        }
      } finally {
        await store.close();
      }
    });
}
