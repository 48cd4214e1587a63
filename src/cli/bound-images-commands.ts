/**
 * `lading bound-images list|pin|pull`: the application images a bootable (bootc) image declares in
 * /usr/lib/bootc/bound-images.d, read from an image without unpacking it or from an unpacked root.
 */
import { resolve as resolvePath } from 'node:path';
import type { Command } from 'commander';
import { type BoundImage, type BoundImageProblem, scanBoundImages } from '../boot/bound-images/bound-images.js';
import { openImageRoot } from '../boot/bound-images/image-root.js';
import { pinBoundImages } from '../boot/bound-images/pin.js';
import { AuthFiles, pullBoundImages } from '../boot/bound-images/pull.js';
import { HostRootView, type RootView } from '../boot/bound-images/root-view.js';
import { LadingError } from '../errors.js';
import type { Compression } from '../fs/compress.js';
import { isDigest } from '../oci/digest.js';
import { parsePlatform } from '../oci/platform.js';
import { formatReference } from '../oci/reference.js';
import type { Platform } from '../oci/types.js';
import type { RegistryClient } from '../store/registry/client.js';
import { RegistryStore } from '../store/registry/registry-store.js';
import { openStore, parseTransportRef, refWithinStore } from '../store/transport.js';
import { hostOf } from './copy-command.js';
import { positive } from './option-values.js';
import { formatBytes, type OutputFormat, printJson } from './output.js';
import { type ProgressMode, progressDisplay, progressOptions, reportImage } from './progress-display.js';
import { addRegistryFlags, type RegistryFlags, registryClient } from './registry-flags.js';

interface RootFlags extends RegistryFlags {
  root?: string;
  hostRoot: string;
  platform?: string;
  output: OutputFormat;
}

interface PinFlags extends RegistryFlags {
  to: string;
  hostRoot: string;
  compression: string;
  output: OutputFormat;
}

interface PullFlags extends RootFlags {
  store: string;
  boundPlatform?: string[];
  jobs: string;
  imageJobs: string;
  quiet?: boolean;
  progress: ProgressMode;
}

const REF_HELP = 'bootable image: docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:FILE[:TAG]';

export function registerBoundImagesCommands(program: Command): void {
  const group = program
    .command('bound-images')
    .description('the images a bootable (bootc) image declares in /usr/lib/bootc/bound-images.d: list, pin, pull');

  rootOptions(
    group.command('list').description('list the bound images a bootable image (or an unpacked root) declares').argument('[ref]', REF_HELP),
  ).action(async (ref: string | undefined, flags: RootFlags) => {
    const { images, problems } = await withRoot(ref, flags, (view, host) => scanBoundImages(view, { hostRoot: host }));
    failOnProblems(problems, '');
    if (flags.output === 'json') return printJson(images.map(listJson));
    for (const b of images) {
      process.stdout.write(`${b.image}\n`);
      process.stdout.write(
        `  ${b.reference.digest !== undefined ? `digest ${b.reference.digest}` : `tag ${b.reference.tag ?? 'latest'} (no digest)`}\n`,
      );
      process.stdout.write(`  declared in ${b.file}${b.container !== undefined ? ` (named by ${b.container})` : ''} via ${b.source}\n`);
      if (b.authFile !== undefined)
        process.stdout.write(`  auth file ${b.authFile.path} (from the ${b.authFile.foundIn}: ${b.authFile.resolved})\n`);
      for (const w of b.warnings) process.stdout.write(`  warning: ${w}\n`);
    }
    process.stdout.write(
      images.length === 0 ? 'no bound images declared\n' : `${images.length} bound image${images.length === 1 ? '' : 's'}\n`,
    );
  });

  addRegistryFlags(
    group
      .command('pin')
      .description('rewrite every bound image declared by tag to repo@sha256:DIGEST (resolved now), as a new layer on top of the image')
      .argument('<ref>', REF_HELP)
      .requiredOption('--to <ref>', 'where to write the pinned image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker://HOST/REPO[:TAG]')
      .option('--compression <kind>', 'the new layer: gzip, zstd or none (a Docker manifest always gets gzip)', 'gzip')
      .option('--host-root <dir>', 'where AuthFile= paths the image does not hold are looked up', '/')
      .option('-o, --output <format>', 'text or json', 'text'),
  ).action(async (ref: string, flags: PinFlags) => {
    if (!['gzip', 'zstd', 'none'].includes(flags.compression)) throw new LadingError('USAGE', '--compression takes gzip, zstd or none');
    const srcRef = parseTransportRef(ref);
    const dstRef = parseTransportRef(flags.to);
    const dstTag =
      dstRef.transport === 'docker' ? (dstRef.image.digest ? undefined : (dstRef.image.tag ?? 'latest')) : refWithinStore(dstRef);
    if (dstTag !== undefined && isDigest(dstTag))
      throw new LadingError('USAGE', `--to ${flags.to} names a digest: name a tag, or no tag at all`);
    const clients = new Clients(flags, { src: hostOf(srcRef), dest: hostOf(dstRef) });
    try {
      const src = await openStore(srcRef, 'read', { registry: clients.base });
      try {
        const dst = await openStore(dstRef, 'write', { registry: clients.base });
        try {
          const result = await pinBoundImages(src, refWithinStore(srcRef), dst, {
            tags: dstTag === undefined ? [] : [dstTag],
            compression: flags.compression as Compression,
            hostRoot: new HostRootView(resolvePath(flags.hostRoot)),
            resolveDigest: async (r, b) => {
              const client = await clients.forImage(b);
              return (await new RegistryStore(client, r.domain, r.path, 'pull').resolve(r.tag ?? 'latest')).digest;
            },
          });
          await dst.close();
          if (flags.output === 'json') return printJson({ source: ref, destination: flags.to, ...result });
          for (const c of result.changes) process.stdout.write(`pinned  ${c.from} -> ${c.to}  (${c.file})\n`);
          for (const a of result.alreadyPinned) process.stdout.write(`kept    ${a.image}  (already pinned by digest)\n`);
          const what = result.descriptor.digest === result.original.digest ? 'nothing to pin; image unchanged' : `pinned image`;
          process.stdout.write(`${result.descriptor.digest}  ${flags.to}  (${what})\n`);
        } catch (e) {
          await dst.abort();
          throw e;
        }
      } finally {
        await src.close();
      }
    } finally {
      await clients.close();
    }
  });

  rootOptions(
    progressOptions(group.command('pull'))
      .description('pull every bound image into an OCI layout, in parallel, all or nothing (a failure leaves the layout as it was)')
      .argument('[ref]', REF_HELP)
      .requiredOption('--store <oci:DIR>', 'the OCI layout to pull into')
      .option(
        '--bound-platform <os/arch...>',
        'copy only these platforms of each bound image (default: all, so pinned index digests stay valid)',
      )
      .option('-j, --jobs <n>', 'blob transfers at once', '6')
      .option('--image-jobs <n>', 'images at once', '4'),
  ).action(async (ref: string | undefined, flags: PullFlags) => {
    const store = parseTransportRef(flags.store);
    if (store.transport !== 'oci' || store.ref !== undefined)
      throw new LadingError('USAGE', `--store takes oci:DIR (no tag), not ${flags.store}`);
    const platforms = flags.boundPlatform?.map(parsePlatform);
    const jobs = positive(flags.jobs, '--jobs');
    const imageJobs = positive(flags.imageJobs, '--image-jobs');
    const images = await withRoot(ref, flags, async (view, host) => {
      const { images: found, problems } = await scanBoundImages(view, { hostRoot: host });
      failOnProblems(problems, '; nothing was pulled');
      return found;
    });
    const clients = new Clients(flags);
    const display = progressDisplay(flags.progress, flags.quiet ?? false);
    try {
      const pre = await Promise.all(images.map((b) => clients.forImage(b).then((c) => [b, c] as const)));
      const byImage = new Map(pre);
      const report = await pullBoundImages(images, store.path, {
        clientFor: (b) => byImage.get(b) ?? clients.base,
        ...(platforms !== undefined && { platforms }),
        jobs,
        imageJobs,
        ...(display.listener && { onProgress: display.listener }),
        onImage: (o) =>
          reportImage(display, o, o.error !== undefined ? `FAILED  ${o.image}: ${o.error}` : `ok      ${o.image} -> ${o.destination}`),
      });
      display.stop();
      if (flags.output === 'json') {
        return printJson({ store: flags.store, bytes: report.bytes, images: report.images.map(({ result: _, ...o }) => o) });
      }
      for (const o of report.images) process.stdout.write(`${o.digest ?? ''}  ${o.image} -> ${o.destination}\n`);
      process.stdout.write(
        `${report.images.length} bound image${report.images.length === 1 ? '' : 's'} in ${flags.store} (${formatBytes(report.bytes)} moved)\n`,
      );
    } finally {
      display.stop();
      await clients.close();
    }
  });
}

function rootOptions(cmd: Command): Command {
  return addRegistryFlags(
    cmd
      .option('--root <dir>', 'read an unpacked root filesystem instead of an image')
      .option('--host-root <dir>', 'where AuthFile= paths the image does not hold are looked up', '/')
      .option('--platform <os/arch[/variant]>', 'for an index: the image for this platform (default: this machine)')
      .option('-o, --output <format>', 'text or json', 'text'),
  );
}

/** Opens the root REF or --root names (exactly one) and runs `fn` on it. */
async function withRoot<T>(ref: string | undefined, flags: RootFlags, fn: (view: RootView, host: RootView) => Promise<T>): Promise<T> {
  if ((ref === undefined) === (flags.root === undefined))
    throw new LadingError('USAGE', 'give an image reference or --root DIR (one of them)');
  const host = new HostRootView(resolvePath(flags.hostRoot));
  if (flags.root !== undefined) {
    if (flags.platform !== undefined) throw new LadingError('USAGE', '--platform applies to an image, not to --root');
    return fn(new HostRootView(resolvePath(flags.root)), host);
  }
  const t = parseTransportRef(ref!);
  const platform: Platform | undefined = flags.platform === undefined ? undefined : parsePlatform(flags.platform);
  const client = registryClient(flags, { src: t.transport === 'docker' ? t.image.domain : undefined });
  try {
    const store = await openStore(t, 'read', { registry: client });
    try {
      const root = await openImageRoot(store, await store.resolve(refWithinStore(t)), platform);
      return await fn(root.view, host);
    } finally {
      await store.close();
    }
  } finally {
    await client.close();
  }
}

/** Every problem on stderr, in order, one line each; the last one is the error the command exits with. */
function failOnProblems(problems: readonly BoundImageProblem[], suffix: string): void {
  const last = problems[problems.length - 1];
  if (last === undefined) return;
  for (const p of problems.slice(0, -1)) process.stderr.write(`lading: ${p.message}\n`);
  throw new LadingError('INVALID_BOUND_IMAGE', `${last.message}${suffix}`, { source: last.source });
}

function listJson(b: BoundImage): Record<string, unknown> {
  return {
    image: b.image,
    file: b.file,
    source: b.source,
    tag: b.reference.tag ?? null,
    digest: b.reference.digest ?? null,
    warnings: b.warnings,
    reference: formatReference(b.reference),
    ...(b.container !== undefined && { container: b.container }),
    ...(b.authFile !== undefined && { authFile: { path: b.authFile.path, foundIn: b.authFile.foundIn, resolved: b.authFile.resolved } }),
  };
}

/**
 * Registry clients for a run: one from the flags, and one more per auth file the bound images declare
 * (its credentials for that image's pulls; --creds still wins, as everywhere).
 */
class Clients {
  readonly base: RegistryClient;
  private readonly byPath = new Map<string, RegistryClient>();
  private readonly files = new AuthFiles();

  constructor(
    private readonly flags: RegistryFlags,
    hosts: { src?: string | undefined; dest?: string | undefined } = {},
  ) {
    this.base = registryClient(flags, hosts);
  }

  async forImage(b: BoundImage): Promise<RegistryClient> {
    const path = await this.files.pathFor(b);
    if (path === undefined) return this.base;
    let client = this.byPath.get(path);
    if (client === undefined) this.byPath.set(path, (client = registryClient({ ...this.flags, authfile: path })));
    return client;
  }

  async close(): Promise<void> {
    await this.base.close();
    for (const c of this.byPath.values()) await c.close();
    await this.files.cleanup();
  }
}
