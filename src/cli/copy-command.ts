/** `lading copy SRC DST`: one image between any two stores. */
import type { Command } from 'commander';
import { type CopyResult, copyImage } from '../copy/copy-image.js';
import { LadingError } from '../errors.js';
import { isDigest } from '../oci/digest.js';
import { parsePlatform } from '../oci/platform.js';
import { openStore, parseTransportRef, refWithinStore } from '../store/transport.js';
import { formatBytes, type OutputFormat, printJson, progressPrinter } from './output.js';

interface CopyFlags {
  all?: boolean;
  platform?: string[];
  link: boolean;
  quiet?: boolean;
  output: OutputFormat;
}

export function registerCopyCommand(program: Command): void {
  program
    .command('copy')
    .description('copy an image between OCI layouts and archives, verifying every byte')
    .argument('<src>', 'source: oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG]')
    .argument('<dst>', 'destination: oci:DIR[:TAG], oci-archive:FILE[:TAG]')
    .option('--all', 'copy every image of an index, keeping the index whole')
    .option('--platform <platform...>', 'os/arch[/variant]: copy the image for this platform of an index (default: this machine)')
    .option('--no-link', 'always copy bytes, never hard-link blobs between layouts on one filesystem')
    .option('-q, --quiet', 'no progress output')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (srcInput: string, dstInput: string, flags: CopyFlags) => {
      if (flags.all && flags.platform) throw new LadingError('USAGE', '--all and --platform exclude each other');
      const srcRef = parseTransportRef(srcInput);
      const dstRef = parseTransportRef(dstInput);
      const dstTag = refWithinStore(dstRef);
      if (dstTag !== undefined && isDigest(dstTag)) {
        throw new LadingError('USAGE', `destination ${dstInput} names a digest: name a tag, or no tag at all`);
      }
      const src = await openStore(srcRef, 'read');
      try {
        const dst = await openStore(dstRef, 'write');
        let result: CopyResult;
        try {
          const progress = progressPrinter(flags.quiet ?? false);
          result = await copyImage(src, refWithinStore(srcRef), dst, {
            platforms: flags.all ? 'all' : flags.platform?.map(parsePlatform),
            tags: dstTag === undefined ? [] : [dstTag],
            link: flags.link,
            ...(progress && { onProgress: progress }),
          } as Parameters<typeof copyImage>[3]);
          await dst.close();
        } catch (e) {
          await dst.abort();
          throw e;
        }
        if (flags.output === 'json') printJson({ source: srcInput, destination: dstInput, ...result });
        else {
          const b = result.blobs;
          process.stdout.write(
            `${result.descriptor.digest}  ${dst.name}${dstTag ? `:${dstTag}` : ''}  (${result.manifests} manifests; blobs: ${b.copied} copied, ${b.linked} linked, ${b.skipped} already there; ${formatBytes(result.bytes)})\n`,
          );
        }
      } finally {
        await src.close();
      }
    });
}
