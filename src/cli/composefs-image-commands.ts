/**
 * `lading composefs digest|dump|export REF`: an image's composefs digest (what `cfsctl oci compute-id`
 * and bootc compute), its dump file, and its EROFS image with the object store, read from any store
 * without unpacking. The subcommands join the `composefs` group verity-commands.ts creates.
 */
import { resolve as resolvePath } from 'node:path';
import type { Command } from 'commander';
import { writeDump } from '../composefs/dump.js';
import { type FormatVersion, imageComposefs } from '../composefs/image-digest.js';
import { exportComposefs } from '../composefs/object-store.js';
import { writeFileAtomically } from '../composefs/mkfs.js';
import { LadingError } from '../errors.js';
import { parsePlatform } from '../oci/platform.js';
import type { Descriptor, Platform } from '../oci/types.js';
import type { Store } from '../store/store.js';
import { openStore, parseTransportRef, refWithinStore } from '../store/transport.js';
import type { VerityAlgorithm } from '../verity/fsverity.js';
import { hostOf } from './copy-command.js';
import { type OutputFormat, printJson } from './output.js';
import { addRegistryFlags, type RegistryFlags, registryClient } from './registry-flags.js';
import { composefsCommand } from './verity-commands.js';

export const IMAGE_REF_HELP = 'image: docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:FILE[:TAG]';

interface ImageFlags extends RegistryFlags {
  platform?: string;
}

interface ComposefsFlags extends ImageFlags {
  bootable?: boolean;
  algorithm: string;
  formatVersion: string;
  output: OutputFormat;
}

/** Opens the store REF names, resolves REF in it, runs `fn`, and closes everything. */
export async function withImage<T>(
  ref: string,
  flags: ImageFlags,
  fn: (store: Store, desc: Descriptor, platform?: Platform) => Promise<T>,
): Promise<T> {
  const t = parseTransportRef(ref);
  const platform = flags.platform === undefined ? undefined : parsePlatform(flags.platform);
  const client = registryClient(flags, { src: hostOf(t) });
  try {
    const store = await openStore(t, 'read', { registry: client });
    try {
      return await fn(store, await store.resolve(refWithinStore(t)), platform);
    } finally {
      await store.close();
    }
  } finally {
    await client.close();
  }
}

export function parseVerityAlgorithm(value: string, flag = '--algorithm'): VerityAlgorithm {
  if (value !== 'sha256' && value !== 'sha512') throw new LadingError('USAGE', `${flag} must be sha256 or sha512, not ${value}`);
  return value;
}

function parseVersion(value: string): FormatVersion {
  if (value !== '0' && value !== '1' && value !== '2') throw new LadingError('USAGE', `--format-version must be 0, 1 or 2, not ${value}`);
  return Number(value) as FormatVersion;
}

function composefsOptions(cmd: Command, withVersion: boolean): Command {
  cmd
    .option('--bootable', 'the boot variant: /boot and /sysroot emptied, SELinux labels from the image policy (what a sealed UKI names)')
    .option('--algorithm <alg>', 'fs-verity hash of files and image: sha256 or sha512 (bootc uses sha512)', 'sha512')
    .option('--platform <os/arch[/variant]>', 'for an index: the image for this platform (default: this machine)');
  if (withVersion)
    cmd.option(
      '--format-version <v>',
      'composefs EROFS format: 1 (cfsctl and bootc), 0 (mkcomposefs default) or 2 (composefs-rs legacy)',
      '1',
    );
  return addRegistryFlags(cmd);
}

function options(flags: ComposefsFlags) {
  return {
    algorithm: parseVerityAlgorithm(flags.algorithm),
    formatVersion: parseVersion(flags.formatVersion ?? '1'),
    bootable: flags.bootable ?? false,
  };
}

export function registerComposefsImageCommands(program: Command): void {
  const group = composefsCommand(program);

  composefsOptions(
    group
      .command('digest')
      .description("print an image's composefs digest: the fs-verity digest of its composefs EROFS image, as cfsctl oci compute-id")
      .argument('<ref>', IMAGE_REF_HELP)
      .option('-o, --output <format>', 'text or json', 'text'),
    true,
  ).action(async (ref: string, flags: ComposefsFlags) => {
    const opts = options(flags);
    const r = await withImage(ref, flags, (store, desc, platform) =>
      imageComposefs(store, desc, { ...opts, ...(platform !== undefined && { platform }) }),
    );
    if (flags.output !== 'json') return void process.stdout.write(`${r.digest}\n`);
    printJson({
      ...identity(ref, r),
      imageBytes: r.bytes.length,
      entries: r.tree.size,
    });
  });

  composefsOptions(
    group
      .command('dump')
      .description("write an image's composefs dump file (composefs-dump(5)), as cfsctl oci dump")
      .argument('<ref>', IMAGE_REF_HELP)
      .option('--to <file>', 'write the dump here (atomically) instead of standard output'),
    false,
  ).action(async (ref: string, flags: ComposefsFlags & { to?: string }) => {
    const opts = options({ ...flags, formatVersion: '1' });
    const r = await withImage(ref, flags, (store, desc, platform) =>
      imageComposefs(store, desc, { ...opts, ...(platform !== undefined && { platform }) }),
    );
    const text = writeDump(r.tree);
    if (flags.to !== undefined) await writeFileAtomically(resolvePath(flags.to), Buffer.from(text, 'utf8'));
    else await new Promise<void>((res, rej) => process.stdout.write(text, (e) => (e ? rej(e) : res())));
  });

  composefsOptions(
    group
      .command('export')
      .description('write the composefs EROFS image (DIR/image.erofs) and the object store (DIR/objects/XX/…) of an image')
      .argument('<ref>', IMAGE_REF_HELP)
      .requiredOption('--to <dir>', 'directory to write into (created if missing; objects already there are checked and reused)')
      .option('-o, --output <format>', 'text or json', 'text'),
    true,
  ).action(async (ref: string, flags: ComposefsFlags & { to: string }) => {
    const opts = options(flags);
    const dir = resolvePath(flags.to);
    const r = await withImage(ref, flags, (store, desc, platform) =>
      exportComposefs(store, desc, dir, { ...opts, ...(platform !== undefined && { platform }) }),
    );
    if (flags.output === 'json') {
      return printJson({
        ...identity(ref, r),
        erofs: r.image,
        objects: r.objects,
        ...r.stats,
      });
    }
    process.stdout.write(`${r.digest}  ${r.image}\n`);
    const s = r.stats;
    process.stdout.write(
      `objects: ${s.written} written, ${s.reused} reused${s.repaired > 0 ? `, ${s.repaired} repaired` : ''} in ${r.objects}\n`,
    );
  });
}

/** What `digest -o json` and `export -o json` both say of the image and its composefs. */
function identity(
  ref: string,
  r: { descriptor: { digest: string }; digest: string; algorithm: string; formatVersion: number; bootable: boolean },
) {
  return {
    image: ref,
    manifest: r.descriptor.digest,
    digest: r.digest,
    algorithm: r.algorithm,
    formatVersion: r.formatVersion,
    bootable: r.bootable,
  };
}
