/** `lading pin`: lock a binary to a release (write the release image, version, architecture into its markers), or show what it holds. */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { fsError, LadingError } from '../errors.js';
import { MARKER_KINDS, MARKERS } from '../release/markers.js';
import { pinFile } from '../release/pin.js';
import { type ShowResult, showPinned } from '../release/pin-show.js';
import { markersModuleSource } from '../release/pinned-values.js';
import { printJson } from './output.js';

interface PinFlags {
  releaseImage?: string;
  releaseVersion?: string;
  version?: string;
  arch?: string;
  output?: string;
  show?: boolean;
  writeMarkersModule?: string;
}

export function registerPinCommand(program: Command): void {
  program
    .command('pin')
    .description(
      'lock a binary to a release: write the release pull spec, version and architecture into the placeholders it was built with ' +
        "(OpenShift's installer markers), without rebuilding it; or, with --show, print what a binary holds",
    )
    .argument('[file]', 'the binary (any file carrying the markers)')
    .option('--release-image <pullspec>', 'release pull spec to write (at most 326 bytes), e.g. quay.io/org/release@sha256:…')
    .option('--release-version <version>', 'release version to write (at most 92 bytes); also --version')
    .option('--version <version>', 'same as --release-version')
    .option('--arch <arch>', 'release architecture to write (at most 97 bytes), e.g. linux/amd64 or "multi (linux/amd64)"')
    .option('-o, --output <out>', 'pin: write the pinned binary here instead of replacing FILE; --show: text or json')
    .option('--show', 'print the values the binary holds (unpatched, pinned value, or an error)')
    .option(
      '--write-markers-module <file>',
      'write a TypeScript module holding the three markers, for a Node tool to be pinned the same way',
    )
    .action(async (file: string | undefined, flags: PinFlags) => {
      if (flags.releaseVersion !== undefined) {
        if (flags.version !== undefined && flags.version !== flags.releaseVersion) throw new LadingError('USAGE', 'give the version once');
        flags.version = flags.releaseVersion;
      }
      if (flags.writeMarkersModule !== undefined) {
        await writeFile(flags.writeMarkersModule, markersModuleSource()).catch((e: unknown) => {
          throw fsError(e, 'write', flags.writeMarkersModule!);
        });
        process.stdout.write(`wrote ${flags.writeMarkersModule}: read its constants with pinnedValue(RELEASE_IMAGE, 'image') etc.\n`);
        return;
      }
      if (file === undefined)
        throw new LadingError('USAGE', 'name the binary: lading pin FILE --release-image PULLSPEC, or lading pin --show FILE');
      if (flags.show) {
        if (flags.releaseImage !== undefined || flags.version !== undefined || flags.arch !== undefined) {
          throw new LadingError('USAGE', '--show only reads: drop --release-image, --release-version and --arch');
        }
        const format = flags.output ?? 'text';
        if (format !== 'text' && format !== 'json') throw new LadingError('USAGE', `with --show, -o takes text or json, not ${format}`);
        return printShow(await showPinned(file), format);
      }
      if (flags.releaseImage === undefined && flags.version === undefined && flags.arch === undefined) {
        throw new LadingError('USAGE', 'nothing to pin: give --release-image PULLSPEC (and --release-version, --arch), or --show to read');
      }
      const result = await pinFile(
        file,
        {
          ...(flags.releaseImage !== undefined && { releaseImage: flags.releaseImage }),
          ...(flags.version !== undefined && { version: flags.version }),
          ...(flags.arch !== undefined && { arch: flags.arch }),
        },
        flags.output !== undefined ? { output: flags.output } : {},
      );
      const lines = [result.output === file ? `pinned ${file}` : `pinned ${file} into ${result.output}`];
      for (const p of result.pinned) lines.push(`  ${p.name.padEnd(22)} ${p.value}  (offset ${p.offset})`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

function printShow(shown: ShowResult, format: 'text' | 'json'): void {
  const values = Object.values(shown.values);
  if (format === 'json') printJson(shown);
  else {
    const lines = MARKER_KINDS.map((k) => {
      const v = shown.values[k];
      const text =
        v.state === 'pinned'
          ? `${v.value}  (offset ${v.offset})`
          : v.state === 'unpatched'
            ? `unpatched  (offset ${v.offset})`
            : v.state === 'missing'
              ? 'no marker'
              : `error: ${v.message}`;
      return `${`${MARKERS[k].name}:`.padEnd(23)} ${text}`;
    });
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  const invalid = values.find((v) => v.state === 'invalid');
  if (invalid?.state === 'invalid')
    throw new LadingError('INVALID_PINNED_VALUE', `${shown.path}: ${invalid.message}`, { path: shown.path });
  if (values.every((v) => v.state === 'missing')) {
    throw new LadingError('MARKER_NOT_FOUND', `${shown.path} holds none of the release markers: it was not built to be pinned`, {
      path: shown.path,
    });
  }
}
