/**
 * `lading mirror`: a mirror set (or a carried mirror) into a registry prefix, one layout, or one archive.
 * The mirror engine and the YAML parser are loaded when the command runs, not when the CLI starts.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { MirrorSource } from '../copy/mirror.js';
import { parseMirrorTarget, parseShard } from '../copy/mirror-names.js';
import type { MirrorMapping } from '../copy/mirror-outputs.js';
import { LadingError, fsError } from '../errors.js';
import { parseSize } from '../store/archive/parts.js';
import { positive } from './copy-command.js';
import { type ProgressMode, progressDisplay } from './progress-display.js';
import { type OutputFormat, formatBytes, printJson } from './output.js';
import { type RegistryFlags, addRegistryFlags, registryClient } from './registry-flags.js';

interface MirrorFlags extends RegistryFlags {
  file?: string;
  from?: string;
  to: string;
  keepHost?: boolean;
  keepGoing?: boolean;
  shard?: string;
  dryRun?: boolean;
  referrers: boolean;
  jobs: string;
  imageJobs: string;
  results: string;
  splitSize?: string;
  quiet?: boolean;
  progress: ProgressMode;
  output: OutputFormat;
}

export function registerMirrorCommand(program: Command): void {
  const cmd = program
    .command('mirror')
    .description('mirror a set of images, with signatures and referrers, into a registry, one OCI layout, or one archive')
    .option('-f, --file <mirrorset.yaml>', 'the images to mirror (images: - name: …, platforms: […])')
    .option('--from <oci:DIR|oci-archive:FILE>', 'replay a carried mirror instead of reading a mirror set')
    .requiredOption('--to <target>', 'docker://HOST[/PREFIX], oci:DIR, or oci-archive:FILE')
    .option('--keep-host', 'in a registry target, put the source host in front of the path')
    .option('--keep-going', 'a failed image does not stop the others; the summary lists what failed')
    .option('--shard <i/n>', 'do only shard i of n (deterministic), so n jobs can share one mirror')
    .option('--split-size <size>', 'for an oci-archive target: cut it into parts of at most SIZE (e.g. 4G) for removable media')
    .option('--dry-run', 'print the plan; write nothing')
    .option('--no-referrers', 'leave referrers and cosign signature tags behind')
    .option('-j, --jobs <n>', 'blob transfers at once per destination registry', '6')
    .option('--image-jobs <n>', 'images at once', '4')
    .option('--results <dir>', 'where to write imagedigestmirrorset.yaml and mapping.txt', '.')
    .option('-q, --quiet', 'no progress output')
    .option('--progress <mode>', 'auto (a status line on a terminal), json (events on stderr), or none', 'auto')
    .option('-o, --output <format>', 'text or json', 'text');
  addRegistryFlags(cmd).action(async (flags: MirrorFlags) => {
    if ((flags.file === undefined) === (flags.from === undefined))
      throw new LadingError('USAGE', 'give either -f MIRRORSET.yaml or --from oci:DIR|oci-archive:FILE');
    const [{ mirror }, { parseMirrorSet }] = await Promise.all([import('../copy/mirror.js'), import('../copy/mirror-set.js')]);
    const to = parseMirrorTarget(flags.to);
    let from: MirrorSource;
    if (flags.file !== undefined) {
      const text = await readFile(flags.file, 'utf8').catch((e) => {
        throw fsError(e, 'read', flags.file as string);
      });
      from = { kind: 'set', images: parseMirrorSet(text, flags.file).images };
    } else {
      from = { kind: 'carried', location: parseMirrorTarget(flags.from as string) };
    }
    const client = registryClient(flags, to.kind === 'registry' ? { dest: to.domain } : {});
    const display = progressDisplay(flags.progress, flags.quiet ?? false);
    try {
      const report = await mirror(from, to, client, {
        keepHost: flags.keepHost ?? false,
        keepGoing: flags.keepGoing ?? false,
        dryRun: flags.dryRun ?? false,
        referrers: flags.referrers,
        jobs: positive(flags.jobs, '--jobs'),
        imageJobs: positive(flags.imageJobs, '--image-jobs'),
        ...(flags.shard !== undefined && { shard: parseShard(flags.shard) }),
        ...(flags.splitSize !== undefined && { splitBytes: parseSize(flags.splitSize) }),
        ...(display.listener && { onProgress: display.listener }),
        onImage: (o) => {
          display.listener?.({
            type: 'image',
            source: o.source,
            destination: o.destination,
            ...(o.digest !== undefined && { digest: o.digest }),
            ...(o.error !== undefined && { error: o.error }),
          });
          if (o.error !== undefined) return display.log(`FAILED  ${o.source}: ${o.error}`);
          const r = o.result;
          const moved = r
            ? `${r.blobs.copied + r.blobs.linked} blobs moved, ${r.blobs.mounted} mounted, ${r.blobs.skipped} there; ${formatBytes(r.bytes)}`
            : '';
          display.log(`${flags.dryRun ? 'plan' : 'ok'}      ${o.source} -> ${o.destination}  ${o.digest ?? ''}  (${moved})`);
        },
      });
      display.stop();
      if (!flags.dryRun && report.mappings.length > 0) await writeResults(flags.results, to.kind === 'registry', report.mappings);
      if (flags.output === 'json') printJson(report);
      else {
        const bytes = report.images.reduce((n, i) => n + (i.result?.bytes ?? 0), 0);
        process.stdout.write(
          `${flags.dryRun ? 'dry run: ' : ''}${report.images.length - report.failed} images mirrored to ${flags.to}, ${report.failed} failed, ${formatBytes(bytes)} moved\n`,
        );
        for (const f of report.images.filter((i) => i.error !== undefined)) process.stdout.write(`  failed: ${f.source}: ${f.error}\n`);
      }
      if (report.failed > 0) throw new LadingError('REGISTRY', `${report.failed} of ${report.images.length} images failed to mirror`);
    } finally {
      await client.close();
    }
  });
}

async function writeResults(dir: string, registry: boolean, mappings: MirrorMapping[]): Promise<void> {
  const { imageDigestMirrorSet, mappingList } = await import('../copy/mirror-outputs.js');
  await mkdir(dir, { recursive: true }).catch((e) => {
    throw fsError(e, 'create', dir);
  });
  await writeFile(join(dir, 'mapping.txt'), mappingList(mappings));
  if (registry) await writeFile(join(dir, 'imagedigestmirrorset.yaml'), imageDigestMirrorSet(mappings));
}
