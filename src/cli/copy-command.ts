/**
 * `lading copy SRC DST`: one image between any two of docker://, oci: and oci-archive:, with its
 * referrers and cosign tags, and (given `--src-lookaside` and `--dest-lookaside`) its lookaside
 * signatures: read and checked before the image is copied, written once it has landed. The copy engine
 * is loaded when the command runs, not when the CLI starts.
 */
import type { Command } from 'commander';
import type { CopyResult } from '../copy/copy-session.js';
import { LadingError } from '../errors.js';
import { isDigest } from '../oci/digest.js';
import { parsePlatform } from '../oci/platform.js';
import { parseImageTarget } from '../sign/image-target.js';
import type { GatheredSignatures, LookasideCopyResult } from '../sign/lookaside-copy.js';
import type { Descriptor } from '../oci/types.js';
import type { Store } from '../store/store.js';
import { type TransportRef, openStore, parseTransportRef, refWithinStore } from '../store/transport.js';
import { positive } from './option-values.js';
import { type OutputFormat, formatBytes, printJson } from './output.js';
import { type ProgressMode, progressDisplay, progressOptions } from './progress-display.js';
import { type RegistryFlags, addRegistryFlags, registryClient } from './registry-flags.js';

interface CopyFlags extends RegistryFlags {
  all?: boolean;
  platform?: string[];
  link: boolean;
  referrers: boolean;
  srcLookaside?: string;
  destLookaside?: string;
  dryRun?: boolean;
  jobs: string;
  quiet?: boolean;
  progress: ProgressMode;
  output: OutputFormat;
}

export function registerCopyCommand(program: Command): void {
  const cmd = program
    .command('copy')
    .description('copy an image, with its signatures and referrers, between registries, OCI layouts and archives')
    .argument('<src>', 'source: docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG]')
    .argument('<dst>', 'destination: docker://HOST/REPO[:TAG], oci:DIR[:TAG], oci-archive:FILE[:TAG]')
    .option('--all', 'copy every image of an index, keeping the index whole')
    .option('--platform <platform...>', 'os/arch[/variant]: copy the image for this platform of an index (default: this machine)')
    .option('--no-link', 'always copy bytes, never hard-link blobs between layouts on one filesystem')
    .option('--no-referrers', 'leave referrers and cosign signature tags behind')
    .option('--src-lookaside <url|dir>', "carry the image's simple signatures from this lookaside store (directory, file://, http(s)://)")
    .option('--dest-lookaside <dir>', 'write the carried signatures into this lookaside directory (<dir>/<repo>@sha256=<hex>/signature-N)')
    .option('--dry-run', 'print what would be copied, skipped and mounted; write nothing')
    .option('-j, --jobs <n>', 'blob transfers at once per destination', '6')
    .option('-o, --output <format>', 'text or json', 'text');
  progressOptions(cmd);
  addRegistryFlags(cmd).action(async (srcInput: string, dstInput: string, flags: CopyFlags) => {
    if (flags.all && flags.platform) throw new LadingError('USAGE', '--all and --platform exclude each other');
    const srcRef = parseTransportRef(srcInput);
    const dstRef = parseTransportRef(dstInput);
    const dstTag =
      dstRef.transport === 'docker' ? (dstRef.image.digest ? undefined : (dstRef.image.tag ?? 'latest')) : refWithinStore(dstRef);
    if (dstTag !== undefined && isDigest(dstTag)) {
      throw new LadingError('USAGE', `destination ${dstInput} names a digest: name a tag, or no tag at all`);
    }
    const lookaside = lookasideRepositories(flags, srcInput, dstInput);
    const { CopySession } = await import('../copy/copy-session.js');
    const client = registryClient(flags, { src: hostOf(srcRef), dest: hostOf(dstRef) });
    try {
      const src = await openStore(srcRef, 'read', { registry: client });
      try {
        const dst = await openStore(dstRef, 'write', { registry: client });
        let result: CopyResult;
        let gathered: GatheredSignatures | undefined;
        let srcWithin = refWithinStore(srcRef);
        try {
          if (lookaside !== undefined) {
            // Read and check the signatures first: a bad one stops the copy before anything is written.
            const descriptor = await src.resolve(srcWithin);
            gathered = await gatherSignatures(lookaside, src, descriptor, flags);
            srcWithin = descriptor.digest;
          }
          const progress = progressDisplay(flags.progress, flags.quiet ?? false).listener;
          const session = new CopySession({
            link: flags.link,
            referrers: flags.referrers,
            dryRun: flags.dryRun ?? false,
            jobs: positive(flags.jobs, '--jobs'),
            ...(progress && { onProgress: progress }),
          });
          result = await session.copy(src, srcWithin, dst, {
            ...(flags.all ? { platforms: 'all' as const } : flags.platform ? { platforms: flags.platform.map(parsePlatform) } : {}),
            tags: dstTag === undefined ? [] : [dstTag],
          });
          if (flags.dryRun) await dst.abort();
          else await dst.close();
        } catch (e) {
          await dst.abort();
          throw e;
        }
        let carried: LookasideCopyResult | undefined;
        if (lookaside !== undefined && gathered !== undefined && !flags.dryRun) {
          const { placeLookasideSignatures } = await import('../sign/lookaside-copy.js');
          const landed = new Set(result.plan.filter((p) => p.kind === 'manifest').map((p) => p.digest));
          carried = await placeLookasideSignatures(gathered, { to: lookaside.to, toRepo: lookaside.toRepo, landed });
        }
        printResult(result, srcInput, dstInput, flags, carried);
      } finally {
        await src.close();
      }
    } finally {
      await client.close();
    }
  });
}

interface LookasideRepositories {
  from: string;
  to: string;
  repo: string;
  toRepo: string;
}

/**
 * Where --src-lookaside and --dest-lookaside file the image: under the repository path of each end, as
 * `lading sign`/`verify` do (a registry reference, or a layout entry named like one, as mirror names
 * them); an end whose reference names no repository takes the other end's.
 */
function lookasideRepositories(flags: CopyFlags, srcInput: string, dstInput: string): LookasideRepositories | undefined {
  if (flags.srcLookaside === undefined && flags.destLookaside === undefined) return undefined;
  if (flags.srcLookaside === undefined || flags.destLookaside === undefined)
    throw new LadingError('USAGE', '--src-lookaside and --dest-lookaside go together: where the signatures are, and where they go');
  const src = parseImageTarget(srcInput).docker?.path;
  const dst = parseImageTarget(dstInput).docker?.path;
  const repo = src ?? dst;
  const toRepo = dst ?? src;
  if (repo === undefined || toRepo === undefined) {
    throw new LadingError(
      'USAGE',
      `lookaside signatures are filed by repository, and neither ${srcInput} nor ${dstInput} names one: name a layout image like a registry image (oci:DIR:HOST/REPO:TAG)`,
    );
  }
  return { from: flags.srcLookaside, to: flags.destLookaside, repo, toRepo };
}

async function gatherSignatures(
  l: LookasideRepositories,
  src: Store,
  descriptor: Descriptor,
  flags: CopyFlags,
): Promise<GatheredSignatures> {
  const [{ gatherLookasideSignatures }, { storeTlsOptions }] = await Promise.all([
    import('../sign/lookaside-copy.js'),
    import('../sign/signature-store.js'),
  ]);
  const storeOptions = await storeTlsOptions({
    tlsVerify: flags.tlsVerify !== 'false',
    ...(flags.certDir !== undefined && { certDir: flags.certDir }),
  });
  return gatherLookasideSignatures({ from: l.from, repo: l.repo, store: src, descriptor, storeOptions });
}

function printResult(result: CopyResult, srcInput: string, dstInput: string, flags: CopyFlags, carried?: LookasideCopyResult): void {
  if (flags.output === 'json')
    return printJson({
      source: srcInput,
      destination: dstInput,
      dryRun: flags.dryRun ?? false,
      ...result,
      ...(carried !== undefined && { lookaside: carried }),
    });
  const b = result.blobs;
  if (flags.dryRun) {
    for (const p of result.plan) process.stdout.write(`${p.action.padEnd(8)} ${p.kind.padEnd(8)} ${p.digest}  ${formatBytes(p.size)}\n`);
    const bytes = result.plan.filter((p) => p.kind === 'blob' && p.action === 'copied').reduce((n, p) => n + p.size, 0);
    process.stdout.write(
      `dry run: would copy ${b.copied} blobs (${formatBytes(bytes)}), link ${b.linked}, mount ${b.mounted}, skip ${b.skipped}\n`,
    );
    return;
  }
  process.stdout.write(
    `${result.descriptor.digest}  ${dstInput}  (${result.manifests} manifests; blobs: ${b.copied} copied, ${b.linked} linked, ${b.mounted} mounted, ${b.skipped} already there; ${result.attached} referrers/signatures; ${formatBytes(result.bytes)})\n`,
  );
}

export function hostOf(t: TransportRef): string | undefined {
  return t.transport === 'docker' ? t.image.domain : undefined;
}
