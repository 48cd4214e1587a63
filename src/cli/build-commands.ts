/** `lading build` (and `build --check`) and `lading diff`: reproducible images from a spec, and what differs between two. */
import type { Command } from 'commander';
import { type BuildOptions, type BuildReport, buildImage, parseEpoch } from '../build/build.js';
import { assertReproducible, checkBuild } from '../build/check.js';
import { diffImages, formatDiff } from '../build/diff.js';
import { readSpec } from '../build/spec.js';
import { LadingError } from '../errors.js';
import { isDigest } from '../oci/digest.js';
import { parsePlatform } from '../oci/platform.js';
import type { Compression } from '../fs/compress.js';
import { openStore, parseTransportRef, refWithinStore } from '../store/transport.js';
import { hostOf } from './copy-command.js';
import { formatBytes, type OutputFormat, printJson } from './output.js';
import { addRegistryFlags, type RegistryFlags, registryClient } from './registry-flags.js';

interface BuildFlags extends RegistryFlags {
  to?: string;
  check?: boolean;
  allowFloatingBase?: boolean;
  allowOutsideContext?: boolean;
  sourceDateEpoch?: string;
  compression: string;
  compressionLevel?: string;
  cache: boolean;
  output: OutputFormat;
}

export function registerBuildCommands(program: Command): void {
  addRegistryFlags(
    program
      .command('build')
      .description('build an image from a declarative spec, reproducibly (same spec and inputs, same digest)')
      .argument('<spec>', 'the build spec (YAML)')
      .option('--to <ref>', 'where to put the image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker://HOST/REPO[:TAG]')
      .option('--check', 'build twice from differently perturbed copies of the inputs and fail if the digests differ')
      .option('--allow-floating-base', 'accept a base image named by tag (its resolved digest is recorded)')
      .option('--allow-outside-context', "let src paths resolve outside the spec's directory")
      .option('--source-date-epoch <seconds>', 'time for every file and the config (default: $SOURCE_DATE_EPOCH, else 0)')
      .option('--compression <kind>', 'gzip, zstd or none', 'gzip')
      .option('--compression-level <n>', 'gzip 1-9 (default 6), zstd 1-19 (default 3)')
      .option('--no-cache', 'compress every layer again instead of reusing cached blobs')
      .option('-o, --output <format>', 'text or json', 'text'),
  ).action(async (specPath: string, flags: BuildFlags) => {
    if ((flags.to === undefined) === (flags.check !== true)) {
      throw new LadingError('USAGE', 'give either --to REF (build and store the image) or --check (build twice, compare, keep nothing)');
    }
    const options: BuildOptions = {
      sourceDateEpoch: epochFrom(flags.sourceDateEpoch),
      compression: compressionFrom(flags.compression),
      ...(flags.compressionLevel !== undefined && { level: whole(flags.compressionLevel, '--compression-level') }),
      ...(flags.allowFloatingBase && { allowFloatingBase: true }),
      ...(flags.allowOutsideContext && { allowOutsideContext: true }),
      ...(!flags.cache && { cacheDir: false as const }),
    };
    const spec = await readSpec(specPath);
    const baseHost = spec.base.kind === 'image' ? hostOf(spec.base.transport) : undefined;
    const dstRef = flags.to === undefined ? undefined : parseTransportRef(flags.to);
    const client = registryClient(flags, { src: baseHost, dest: dstRef === undefined ? undefined : hostOf(dstRef) });
    try {
      options.open = { registry: client };
      if (dstRef === undefined) {
        const report = await checkBuild(specPath, options);
        if (flags.output === 'json') printJson(report);
        else if (report.reproducible) {
          process.stdout.write(`reproducible: ${report.digest} (built twice from copies with different mtimes, umask and owner)\n`);
        } else if (report.diff) process.stdout.write(`${formatDiff(report.diff)}\n`);
        assertReproducible(report, spec.path);
        return;
      }
      const tag =
        dstRef.transport === 'docker' ? (dstRef.image.digest ? undefined : (dstRef.image.tag ?? 'latest')) : refWithinStore(dstRef);
      if (dstRef.transport === 'docker' ? dstRef.image.digest !== undefined : tag !== undefined && isDigest(tag)) {
        throw new LadingError('USAGE', `--to ${flags.to} names a digest: name a tag, or no tag at all (the digest is the build's result)`);
      }
      const target = await openStore(dstRef, 'write', { registry: client });
      let report: BuildReport;
      try {
        report = await buildImage(specPath, target, tag === undefined ? [] : [tag], options);
        await target.close();
      } catch (e) {
        await target.abort();
        throw e;
      }
      if (flags.output === 'json') printJson({ ...report, destination: flags.to });
      else printReport(report, flags.to!);
    } finally {
      await client.close();
    }
  });

  addRegistryFlags(
    program
      .command('diff')
      .description('show what differs between two images (index, manifest, config, every tar entry); exit 1 when they differ')
      .argument('<a>', 'image reference: oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG], docker://HOST/REPO[:TAG|@DIGEST]')
      .argument('<b>', 'image reference')
      .option('--platform <os/arch[/variant]>', 'for indexes: compare only the images for this platform')
      .option('-o, --output <format>', 'text or json', 'text'),
  ).action(async (a: string, b: string, flags: RegistryFlags & { platform?: string; output: OutputFormat }) => {
    const ra = parseTransportRef(a);
    const rb = parseTransportRef(b);
    const platform = flags.platform === undefined ? undefined : parsePlatform(flags.platform);
    const client = registryClient(flags, { src: hostOf(ra), dest: hostOf(rb) });
    try {
      const sa = await openStore(ra, 'read', { registry: client });
      try {
        const sb = await openStore(rb, 'read', { registry: client });
        try {
          const report = await diffImages(
            { store: sa, ref: refWithinStore(ra) },
            { store: sb, ref: refWithinStore(rb) },
            platform === undefined ? {} : { platform },
          );
          if (flags.output === 'json') printJson(report);
          else process.stdout.write(`${formatDiff(report)}\n`);
          if (!report.identical) process.exitCode = 1;
        } finally {
          await sb.close();
        }
      } finally {
        await sa.close();
      }
    } finally {
      await client.close();
    }
  });
}

function printReport(r: BuildReport, destination: string): void {
  const lines = [`spec        ${r.spec}`];
  if (r.base) lines.push(`base        ${r.base.name} -> ${r.base.digest}${r.base.floating ? '  (floating tag: pin this digest)' : ''}`);
  lines.push(`epoch       ${r.sourceDateEpoch} (${r.created})`, `compressor  ${r.compressor}`);
  for (const image of r.images) {
    lines.push(`${image.platform}  ${image.digest}  config ${image.config.digest}`);
    image.layers.forEach((l, i) => {
      const note = l.from === 'base' ? '  (base)' : l.cached ? '  (cached)' : '';
      lines.push(`  layer ${i + 1}  diff_id ${l.diffId}  blob ${l.digest}  ${formatBytes(l.size)}${note}`);
    });
  }
  lines.push(`${r.digest}  ${destination}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

function epochFrom(flag: string | undefined): number {
  if (flag !== undefined) return parseEpoch(flag, '--source-date-epoch');
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env !== undefined && env !== '') return parseEpoch(env, 'SOURCE_DATE_EPOCH');
  return 0;
}

function compressionFrom(value: string): Compression {
  if (value === 'gzip' || value === 'zstd' || value === 'none') return value;
  throw new LadingError('USAGE', `--compression ${value}: use gzip, zstd or none`);
}

function whole(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new LadingError('USAGE', `${flag} takes a whole number`);
  return n;
}
