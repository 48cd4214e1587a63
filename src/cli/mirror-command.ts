/**
 * `lading mirror`: a mirror set (or a carried mirror) into a registry prefix, one layout, or one archive,
 * with the bound images of every bootable image it copies (src/boot finds them; `--no-bound-images` opts
 * out) and, given `--src-lookaside` and `--dest-lookaside`, the images' lookaside signatures.
 * The mirror engine and the YAML parser are loaded when the command runs, not when the CLI starts.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { MirrorOutcome, MirrorReport, MirrorSource } from '../copy/mirror.js';
import { parseMirrorTarget, parseShard } from '../copy/mirror-names.js';
import type { MirrorMapping } from '../copy/mirror-outputs.js';
import type { BoundImageFinder, ImageCheck } from '../copy/mirror-plan.js';
import { formatReference } from '../oci/reference.js';
import type { GatheredSignatures, LookasideCopyResult } from '../sign/lookaside-copy.js';
import { LadingError, fsError } from '../errors.js';
import { parseSize } from '../store/archive/parts.js';
import { positive } from './option-values.js';
import { type ProgressMode, progressDisplay, progressOptions, reportImage } from './progress-display.js';
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
  boundImages: boolean;
  srcLookaside?: string;
  destLookaside?: string;
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
    .description(
      'mirror a set of images, with their bound images, signatures and referrers, into a registry, one OCI layout, or one archive',
    )
    .option('-f, --file <mirrorset.yaml>', 'the images to mirror (images: - name: …, platforms: […])')
    .option('--from <oci:DIR|oci-archive:FILE>', 'replay a carried mirror instead of reading a mirror set')
    .requiredOption('--to <target>', 'docker://HOST[/PREFIX], oci:DIR, or oci-archive:FILE')
    .option('--keep-host', 'in a registry target, put the source host in front of the path')
    .option('--keep-going', 'a failed image does not stop the others; the summary lists what failed')
    .option('--shard <i/n>', 'do only shard i of n (deterministic), so n jobs can share one mirror')
    .option('--split-size <size>', 'for an oci-archive target: cut it into parts of at most SIZE (e.g. 4G) for removable media')
    .option('--dry-run', 'print the plan; write nothing')
    .option('--no-referrers', 'leave referrers and cosign signature tags behind')
    .option('--no-bound-images', 'leave the bound images of bootable images (usr/lib/bootc/bound-images.d) behind')
    .option('--src-lookaside <url|dir>', "carry each image's simple signatures from this lookaside store (directory, file://, http(s)://)")
    .option(
      '--dest-lookaside <dir>',
      'write the carried signatures into this lookaside directory, under the repository each image lands in',
    )
    .option('-j, --jobs <n>', 'blob transfers at once per destination registry', '6')
    .option('--image-jobs <n>', 'images at once', '4')
    .option('--results <dir>', 'where to write imagedigestmirrorset.yaml and mapping.txt', '.')
    .option('-o, --output <format>', 'text or json', 'text');
  progressOptions(cmd);
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
    const lookaside = await lookasideCarrier(flags);
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
        ...(flags.boundImages && { boundImages: await boundImageFinder() }),
        ...(lookaside && { checkImage: lookaside.check }),
        ...(flags.shard !== undefined && { shard: parseShard(flags.shard) }),
        ...(flags.splitSize !== undefined && { splitBytes: parseSize(flags.splitSize) }),
        ...(display.listener && { onProgress: display.listener }),
        onImage: (o) => {
          if (o.error !== undefined) return reportImage(display, o, `FAILED  ${o.source}: ${o.error}`);
          const r = o.result;
          const moved = r
            ? `${r.blobs.copied + r.blobs.linked} blobs moved, ${r.blobs.mounted} mounted, ${r.blobs.skipped} there; ${formatBytes(r.bytes)}`
            : '';
          const bound = o.boundOf === undefined ? '' : `  (bound image of ${o.boundOf})`;
          reportImage(
            display,
            o,
            `${flags.dryRun ? 'plan' : 'ok'}      ${o.source} -> ${o.destination}  ${o.digest ?? ''}  (${moved})${bound}`,
          );
        },
      });
      display.stop();
      // Signatures are written once the images are where the target keeps them (an aborted target keeps none).
      const committed = !flags.dryRun && (report.failed === 0 || flags.keepGoing === true);
      const carried = lookaside && committed ? await lookaside.place(report) : undefined;
      if (!flags.dryRun && report.mappings.length > 0) await writeResults(flags.results, to.kind === 'registry', report.mappings);
      if (flags.output === 'json') printJson(carried === undefined ? report : { ...report, lookaside: carried });
      else {
        const plan = planLines(report, flags.dryRun ?? false);
        if (plan.length > 0) process.stdout.write(`${plan.join('\n')}\n`);
        const bytes = report.images.reduce((n, i) => n + (i.result?.bytes ?? 0), 0);
        process.stdout.write(
          `${flags.dryRun ? 'dry run: ' : ''}${report.images.length - report.failed} images mirrored to ${flags.to}, ${report.failed} failed, ${formatBytes(bytes)} moved\n`,
        );
        for (const f of report.images.filter((i) => i.error !== undefined)) process.stdout.write(`  failed: ${f.source}: ${f.error}\n`);
        if (carried !== undefined)
          process.stdout.write(`lookaside: ${carried.copied} of ${carried.found} signature(s) carried to ${flags.destLookaside}\n`);
      }
      if (report.failed > 0) throw new LadingError('REGISTRY', `${report.failed} of ${report.images.length} images failed to mirror`);
    } finally {
      await client.close();
    }
  });
}

/** The bound-image finder of src/boot, as the mirror planner takes it (also used by `release mirror`). */
export async function boundImageFinder(): Promise<BoundImageFinder> {
  const { boundImagesOf } = await import('../boot/bound-images/bound-images-of.js');
  // AuthFile= names a file on the machine that will run the image, not on this one: not looked up here.
  return (store, desc) => boundImagesOf(store, desc, { authFiles: false });
}

/**
 * The plan as people read it: with --dry-run every image, else only the images declaring bound images;
 * each declaring image followed by its bound images, indented, with the file declaring each.
 */
function planLines(report: MirrorReport, dryRun: boolean): string[] {
  const bySource = new Map(report.images.map((i) => [i.source, i]));
  const status = (i: MirrorOutcome | undefined) => (i === undefined ? 'skip' : i.error !== undefined ? 'failed' : dryRun ? 'plan' : 'ok');
  const where = (i: MirrorOutcome | undefined) =>
    i === undefined ? '' : ` -> ${i.destination}${i.digest === undefined ? '' : `  ${i.digest}`}`;
  const lines: string[] = [];
  for (const image of report.images) {
    if (image.boundOf !== undefined && bySource.has(image.boundOf)) continue; // listed under its image
    if (!dryRun && image.bound === undefined) continue;
    lines.push(`${status(image).padEnd(7)}${image.source}${where(image)}`);
    for (const b of image.bound ?? []) {
      const bound = bySource.get(b.source);
      lines.push(`  ${status(bound).padEnd(7)}bound image ${b.source} (declared in ${b.file})${where(bound)}`);
    }
  }
  return lines;
}

/** --src-lookaside and --dest-lookaside: signatures checked as each image is planned, written once the images have landed. */
async function lookasideCarrier(
  flags: MirrorFlags,
): Promise<{ check: ImageCheck; place: (report: MirrorReport) => Promise<LookasideCopyResult> } | undefined> {
  if (flags.srcLookaside === undefined && flags.destLookaside === undefined) return undefined;
  if (flags.srcLookaside === undefined || flags.destLookaside === undefined)
    throw new LadingError('USAGE', '--src-lookaside and --dest-lookaside go together: where the signatures are, and where they go');
  const from = flags.srcLookaside;
  const to = flags.destLookaside;
  const [{ gatherLookasideSignatures, placeLookasideSignatures }, { storeTlsOptions }] = await Promise.all([
    import('../sign/lookaside-copy.js'),
    import('../sign/signature-store.js'),
  ]);
  const storeOptions = await storeTlsOptions({
    tlsVerify: flags.tlsVerify !== 'false',
    ...(flags.certDir !== undefined && { certDir: flags.certDir }),
  });
  const gathered = new Map<string, { signatures: GatheredSignatures; toRepo: string }>();
  return {
    check: async (image) => {
      const signatures = await gatherLookasideSignatures({
        from,
        repo: image.source.path,
        store: image.store,
        descriptor: image.descriptor,
        storeOptions,
      });
      gathered.set(formatReference(image.source), { signatures, toRepo: image.target.path });
    },
    place: async (report) => {
      const total: LookasideCopyResult = { found: 0, copied: 0, written: [] };
      for (const image of report.images) {
        const g = gathered.get(image.source);
        if (g === undefined || image.error !== undefined || image.result === undefined) continue;
        const landed = new Set(image.result.plan.filter((p) => p.kind === 'manifest').map((p) => p.digest));
        const r = await placeLookasideSignatures(g.signatures, { to, toRepo: g.toRepo, landed });
        total.found += r.found;
        total.copied += r.copied;
        total.written.push(...r.written);
      }
      return total;
    },
  };
}

async function writeResults(dir: string, registry: boolean, mappings: MirrorMapping[]): Promise<void> {
  const { imageDigestMirrorSet, mappingList } = await import('../copy/mirror-outputs.js');
  await mkdir(dir, { recursive: true }).catch((e) => {
    throw fsError(e, 'create', dir);
  });
  await writeFile(join(dir, 'mapping.txt'), mappingList(mappings));
  if (registry) await writeFile(join(dir, 'imagedigestmirrorset.yaml'), imageDigestMirrorSet(mappings));
}
