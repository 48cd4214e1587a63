/**
 * `lading boot check|seal`: UKIs and the composefs digest of the image they boot. `check` verifies that
 * every UKI in an image names the image's bootable digest; `seal` adds a UKI to an image as a final
 * layer once it does, recording the digests in the manifest (composefs OCI sealing spec, inline mode).
 */
import { resolve as resolvePath } from 'node:path';
import type { Command } from 'commander';
import { checkBoot } from '../boot/check.js';
import { prepareSeal, writeSeal } from '../boot/seal.js';
import { kargKind } from '../boot/uki/cmdline.js';
import { LadingError } from '../errors.js';
import type { Compression } from '../fs/compress.js';
import { isDigest } from '../oci/digest.js';
import { openStore, parseTransportRef, refWithinStore } from '../store/transport.js';
import { IMAGE_REF_HELP, withImage } from './composefs-image-commands.js';
import { hostOf } from './copy-command.js';
import { type OutputFormat, printJson } from './output.js';
import { addRegistryFlags, type RegistryFlags, registryClient } from './registry-flags.js';

interface CheckFlags extends RegistryFlags {
  platform?: string;
  output: OutputFormat;
}

interface SealFlags extends CheckFlags {
  uki: string;
  to: string;
  name?: string;
  compression: string;
}

export function registerBootCommands(program: Command): void {
  const group = program.command('boot').description('UKIs and the composefs digest of the image they boot: check, seal');

  addRegistryFlags(
    group
      .command('check')
      .description("check that every UKI in /boot/EFI/Linux names the image's bootable composefs digest in its .cmdline")
      .argument('<ref>', IMAGE_REF_HELP)
      .option('--platform <os/arch[/variant]>', 'for an index: the image for this platform (default: this machine)')
      .option('-o, --output <format>', 'text or json', 'text'),
  ).action(async (ref: string, flags: CheckFlags) => {
    const r = await withImage(ref, flags, (store, desc, platform) => checkBoot(store, desc, platform === undefined ? {} : { platform }));
    if (flags.output === 'json') return printJson({ image: ref, manifest: r.manifest.digest, ok: r.ok, ukis: r.ukis });
    for (const u of r.ukis) {
      for (const k of u.kargs)
        process.stdout.write(`ok  ${u.path}  ${kargKind(k)}:${k.digest}${k.insecure ? ' (insecure: verity optional)' : ''}\n`);
    }
    process.stdout.write(
      `${r.ukis.length} UKI${r.ukis.length === 1 ? '' : 's'} ${r.ukis.length === 1 ? 'names' : 'name'} the bootable composefs digest of ${r.manifest.digest}\n`,
    );
  });

  addRegistryFlags(
    group
      .command('seal')
      .description("add a UKI to an image under /boot/EFI/Linux, after checking its .cmdline names the image's bootable composefs digest")
      .argument('<ref>', IMAGE_REF_HELP)
      .requiredOption('--uki <file>', 'the UKI (a PE file with a .cmdline section naming composefs.digest=… or composefs=…)')
      .requiredOption('--to <ref>', 'where to write the sealed image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker://HOST/REPO[:TAG]')
      .option('--name <file.efi>', 'its file name under /boot/EFI/Linux (default: the UKI file name)')
      .option('--compression <kind>', 'the new layer: gzip, zstd or none (a Docker manifest always gets gzip)', 'gzip')
      .option('--platform <os/arch[/variant]>', 'for an index: seal the image for this platform (default: this machine)')
      .option('-o, --output <format>', 'text or json', 'text'),
  ).action(async (ref: string, flags: SealFlags) => {
    if (!['gzip', 'zstd', 'none'].includes(flags.compression)) throw new LadingError('USAGE', '--compression takes gzip, zstd or none');
    const dstRef = parseTransportRef(flags.to);
    const dstTag =
      dstRef.transport === 'docker' ? (dstRef.image.digest ? undefined : (dstRef.image.tag ?? 'latest')) : refWithinStore(dstRef);
    if (dstTag !== undefined && isDigest(dstTag))
      throw new LadingError('USAGE', `--to ${flags.to} names a digest: name a tag, or no tag at all`);
    const compression = flags.compression as Compression;
    const result = await withImage(ref, flags, async (src, desc, platform) => {
      const plan = await prepareSeal(src, desc, {
        uki: resolvePath(flags.uki),
        ...(flags.name !== undefined && { name: flags.name }),
        ...(platform !== undefined && { platform }),
      });
      // The target is opened only now: a refused UKI leaves it untouched.
      const client = registryClient(flags, { dest: hostOf(dstRef) });
      try {
        const dst = await openStore(dstRef, 'write', { registry: client });
        try {
          const written = await writeSeal(src, dst, plan, { tags: dstTag === undefined ? [] : [dstTag], compression });
          await dst.close();
          return { plan, written };
        } catch (e) {
          await dst.abort();
          throw e;
        }
      } finally {
        await plan.dispose();
        await client.close();
      }
    });
    const { plan, written } = result;
    if (flags.output === 'json') {
      return printJson({
        source: ref,
        destination: flags.to,
        digest: written.descriptor.digest,
        sealed: plan.manifest.digest,
        uki: plan.path,
        otherUkis: plan.otherUkis,
        kargs: plan.kargs,
        annotations: plan.annotations,
        layer: written.layer.digest,
      });
    }
    for (const k of plan.kargs) process.stdout.write(`ok  ${plan.path}  ${kargKind(k)}:${k.digest}\n`);
    for (const other of plan.otherUkis)
      process.stderr.write(`lading: warning: the image also holds ${other}; lading boot check checks it too\n`);
    process.stdout.write(`${written.descriptor.digest}  ${flags.to}  (sealed ${plan.manifest.digest})\n`);
  });
}
