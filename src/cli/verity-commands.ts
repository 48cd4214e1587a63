/**
 * `lading fsverity digest` (the output of `fsverity digest`, computed in user space) and
 * `lading composefs mkfs` (`mkcomposefs --from-file`). The `composefs` group is shared: other
 * command files add their subcommands to it through `composefsCommand`.
 */
import type { Command } from 'commander';
import { LadingError } from '../errors.js';
import { mkfsFromDump } from '../composefs/mkfs.js';
import { fsverityDigest, type VerityAlgorithm } from '../verity/fsverity.js';
import { type OutputFormat, printJson } from './output.js';

/** The `composefs` command group, created on first use (so any file may call this, in any order). */
export function composefsCommand(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === 'composefs') ??
    program.command('composefs').description('composefs images: EROFS metadata images whose files are verified by fs-verity')
  );
}

function parseAlgorithm(value: string): VerityAlgorithm {
  if (value !== 'sha256' && value !== 'sha512') {
    throw new LadingError('USAGE', `--hash-alg must be sha256 or sha512, not ${value}`);
  }
  return value;
}

function parseFormatVersion(value: string): 0 | 1 | 2 {
  if (value !== '0' && value !== '1' && value !== '2') {
    throw new LadingError('USAGE', `--format-version must be 0, 1 (mkcomposefs's) or 2 (composefs-rs legacy), not ${value}`);
  }
  return Number(value) as 0 | 1 | 2;
}

export function registerVerityCommands(program: Command): void {
  const fsverity = program.command('fsverity').description('fs-verity digests of files, as the fsverity tool prints them');
  fsverity
    .command('digest')
    .description('print the fs-verity digest of each FILE (4096-byte blocks, no salt), like `fsverity digest`')
    .argument('<files...>', 'files to measure')
    .option('--hash-alg <alg>', 'sha256 or sha512', 'sha256')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (files: string[], opts: { hashAlg: string; output: OutputFormat }) => {
      const alg = parseAlgorithm(opts.hashAlg);
      const results: { file: string; digest: string }[] = [];
      // Lines go out in batches: one write per file costs more than hashing a small file.
      let pending = '';
      try {
        for (const file of files) {
          const digest = `${alg}:${(await fsverityDigest(file, alg)).toString('hex')}`;
          if (opts.output === 'json') results.push({ file, digest });
          else pending += `${digest} ${file}\n`;
          if (pending.length > 65536) {
            process.stdout.write(pending);
            pending = '';
          }
        }
      } finally {
        // The lines of the files measured before a failure still go out, as fsverity prints them.
        if (pending !== '') process.stdout.write(pending);
      }
      if (opts.output === 'json') printJson(results);
    });

  composefsCommand(program)
    .command('mkfs')
    .description('write the composefs EROFS image of a dump file, byte for byte as mkcomposefs --from-file')
    .argument('<out>', 'image file to write (- for standard output)')
    .requiredOption('--from-dump <dump>', 'composefs-dump(5) file (- for standard input; .gz is unpacked)')
    .option('--format-version <v>', '0 or 1 (default: 0, raised to 1 when the tree has a whiteout), or composefs-rs legacy 2')
    .option(
      '--strict',
      "refuse what mkcomposefs's CFS_PARSE_STRICT refuses (missing final newline, RDEV on non-devices, symlink SIZE mismatch)",
    )
    .option('--print-digest', 'print the fs-verity (sha256) digest of the image, as mkcomposefs --print-digest')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(
      async (
        out: string,
        opts: { fromDump: string; formatVersion?: string; strict?: boolean; printDigest?: boolean; output: OutputFormat },
      ) => {
        const formatVersion = opts.formatVersion === undefined ? undefined : parseFormatVersion(opts.formatVersion);
        if (out === '-' && process.stdout.isTTY)
          throw new LadingError('USAGE', 'refusing to write an image to a terminal: name an OUT file');
        if (out === '-' && (opts.printDigest || opts.output === 'json')) {
          throw new LadingError('USAGE', 'the image goes to standard output: --print-digest and -o json need an OUT file');
        }
        const result = await mkfsFromDump(opts.fromDump, out, {
          ...(formatVersion !== undefined && { formatVersion }),
          ...(opts.strict !== undefined && { strict: opts.strict }),
        });
        if (opts.output === 'json') printJson(result);
        else if (opts.printDigest) process.stdout.write(`${result.fsverity}\n`);
      },
    );
}
