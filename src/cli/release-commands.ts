/** `lading release new|info|extract` and `lading pin`: release payloads and binaries locked to them. */
import type { Command } from 'commander';
import { LadingError } from '../errors.js';
import { parsePlatform } from '../oci/platform.js';
import { type ComposeResult, composeRelease, parseComponentArg, parseToolArg } from '../release/compose.js';
import { extractCommand, extractManifests } from '../release/extract.js';
import { openRelease, type ReleaseChanges, type ReleaseInfo, readPayload, releaseChanges, releaseInfo } from '../release/read.js';
import { StoreSet } from '../release/store-set.js';
import { parseTransportRef, refWithinStore } from '../store/transport.js';
import { collect } from './option-values.js';
import { type OutputFormat, printJson } from './output.js';
import { addRegistryFlags, type RegistryFlags, registryClient } from './registry-flags.js';
import {
  addReleaseInfoSignatureOptions,
  type ReleaseSignatureFlags,
  registerReleaseMirror,
  releaseInfoSignatures,
} from './release-signature-commands.js';

function outputFormat(value: string): OutputFormat {
  if (value !== 'text' && value !== 'json') throw new LadingError('USAGE', `-o takes text or json, not ${value}`);
  return value;
}

/** Opens the release REF names (with the registry flags' client), reads its payload, runs `fn`, closes everything. */
async function withRelease<T>(
  ref: string,
  flags: RegistryFlags,
  fn: (rel: Awaited<ReturnType<typeof openRelease>>, payload: Awaited<ReturnType<typeof readPayload>>, stores: StoreSet) => Promise<T>,
): Promise<T> {
  const location = parseTransportRef(ref);
  const client = registryClient(flags, { src: location.transport === 'docker' ? location.image.domain : undefined });
  const stores = new StoreSet({ registry: client });
  try {
    const store = await stores.get(location);
    const rel = await openRelease(store, location, refWithinStore(location));
    return await fn(rel, await readPayload(rel), stores);
  } finally {
    await stores.close();
    await client.close();
  }
}

export interface ReleaseInfoFlags extends RegistryFlags {
  output: string;
  pullspecs?: boolean;
  changesFrom?: string;
}

/** Reads what `lading release info` shows (and, with --changes-from, the differences). */
export async function releaseInfoData(ref: string, flags: RegistryFlags): Promise<ReleaseInfo> {
  return withRelease(ref, flags, async (rel, payload) => releaseInfo(rel, payload));
}

/**
 * The action of `lading release info`, kept in one function so other commands' options (signatures,
 * verification) can extend it: it reads the release, then prints.
 */
export async function runReleaseInfo(ref: string, flags: ReleaseInfoFlags): Promise<void> {
  const format = outputFormat(flags.output);
  const info = await releaseInfoData(ref, flags);
  if (flags.changesFrom !== undefined) {
    const changes = releaseChanges(await releaseInfoData(flags.changesFrom, flags), info);
    if (format === 'json') printJson(changes);
    else printChanges(changes);
    return;
  }
  if (format === 'json') printJson(info);
  else printInfo(info, flags.pullspecs === true);
}

function table(rows: string[][], indent = '  '): string[] {
  const widths = rows.reduce<number[]>((w, r) => r.map((c, i) => Math.max(w[i] ?? 0, c.length)), []);
  return rows.map(
    (r) =>
      indent +
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2)))
        .join('')
        .trimEnd(),
  );
}

function printInfo(info: ReleaseInfo, pullspecs: boolean): void {
  const lines = [
    `Name:      ${info.name}`,
    `Digest:    ${info.digest}`,
    ...(info.created !== undefined ? [`Created:   ${info.created}`] : []),
    `OS/Arch:   ${info.multi ? `multi (${info.platforms.join(', ')})` : (info.platforms[0] ?? 'unknown')}`,
    `Pull From: ${info.pullSpec}`,
    '',
    'Release Metadata:',
    `  Version:  ${info.metadata.version}`,
  ];
  if (info.upgrades.length > 0) lines.push(`  Upgrades: ${info.upgrades.join(', ')}`);
  else lines.push('  Upgrades: <none>');
  const meta = Object.entries(info.metadata.metadata ?? {});
  if (meta.length > 0) {
    lines.push('  Metadata:');
    for (const [k, v] of meta) lines.push(`    ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  lines.push('', pullspecs ? 'Images (pull specs):' : 'Images:');
  lines.push(
    ...table([['NAME', pullspecs ? 'PULL SPEC' : 'DIGEST'], ...info.components.map((c) => [c.name, pullspecs ? c.pullSpec : c.digest])]),
  );
  if (info.tools.length > 0) {
    lines.push('', 'Tools:');
    lines.push(
      ...table([
        ['NAME', 'COMPONENT', 'PATH', 'PLATFORM'],
        ...info.tools.map((t) => [t.name, t.component, `/${t.path}`, t.platform ?? '(release)']),
      ]),
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

function printChanges(c: ReleaseChanges): void {
  const lines = [
    ...table([
      ['', 'FROM', 'TO'],
      ['Name', c.from.name, c.to.name],
      ['Digest', c.from.digest, c.to.digest],
    ]),
    `  Upgrade From: ${c.upgradeFrom ? 'Yes' : 'No'}`,
  ];
  const section = (title: string, rows: string[][]) => {
    if (rows.length > 0) lines.push('', `${title}:`, ...table(rows));
  };
  section(
    'Images Changed',
    c.changed.map((x) => [x.name, x.from, '→', x.to]),
  );
  section(
    'Images Added',
    c.added.map((x) => [x.name, x.pullSpec]),
  );
  section(
    'Images Removed',
    c.removed.map((x) => [x.name, x.pullSpec]),
  );
  if (c.changed.length + c.added.length + c.removed.length === 0) lines.push('', 'No image changes.');
  process.stdout.write(`${lines.join('\n')}\n`);
}

interface NewFlags extends RegistryFlags {
  name: string;
  to: string;
  component: string[];
  fromReferences?: string;
  previous: string[];
  metadata?: string;
  tool: string[];
  platform: string[];
  output: string;
}

function parseMetadata(json: string | undefined): Record<string, unknown> | undefined {
  if (json === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (e) {
    throw new LadingError('USAGE', `invalid --metadata: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new LadingError('USAGE', 'invalid --metadata: expected a JSON object');
  return value as Record<string, unknown>;
}

function printComposed(r: ComposeResult, format: OutputFormat): void {
  for (const m of r.moved) {
    process.stderr.write(
      `warning: component ${m.name}: ${m.input} moved to ${m.now} while the release was written; the release pins ${m.pinned}\n`,
    );
  }
  if (format === 'json') return printJson(r);
  process.stdout.write(`${r.digest} ${r.name} ${r.created}\nPull spec: ${r.pullSpec}\n`);
}

export function registerReleaseCommands(program: Command): void {
  const release = program
    .command('release')
    .description('compose, inspect and extract release payloads: one image pinning every component by digest');

  addRegistryFlags(
    release
      .command('new')
      .description('compose a release image: image-references and release-metadata (OpenShift formats) pinning every component by digest')
      .requiredOption('--name <version>', 'the release version (semver), e.g. 4.15.0')
      .requiredOption(
        '--to <ref>',
        'where to write it: oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker://HOST/REPO[:TAG] (tag default: the version)',
      )
      .option('--component <name=ref>', 'a component image; REF by tag or digest (repeatable)', collect, [])
      .option('--from-references <file>', 'take components from an image-references file (ImageStream, JSON or YAML)')
      .option('--previous <version>', 'a version this one updates from (repeatable)', collect, [])
      .option('--metadata <json>', 'a JSON object for release-metadata\'s "metadata"')
      .option('--tool <name=component:/path[@os/arch]>', 'a tool `release extract --command` can extract and pin (repeatable)', collect, [])
      .option(
        '--platform <os/arch>',
        'platform of the release image (repeatable; several make a multi-architecture index); default linux/amd64',
        collect,
        [],
      )
      .option('-o, --output <format>', 'text or json', 'text'),
  ).action(async (flags: NewFlags) => {
    const format = outputFormat(flags.output);
    const to = parseTransportRef(flags.to);
    const client = registryClient(flags, { dest: to.transport === 'docker' ? to.image.domain : undefined });
    try {
      const metadata = parseMetadata(flags.metadata);
      const result = await composeRelease({
        name: flags.name,
        to: flags.to,
        components: flags.component.map(parseComponentArg),
        ...(flags.fromReferences !== undefined && { fromReferences: flags.fromReferences }),
        previous: flags.previous,
        ...(metadata !== undefined && { metadata }),
        tools: flags.tool.map(parseToolArg),
        platforms: flags.platform.map(parsePlatform),
        context: { registry: client },
      });
      printComposed(result, format);
    } finally {
      await client.close();
    }
  });

  const info = addRegistryFlags(
    release
      .command('info')
      .description('show a release: name, digest, created, platforms, metadata and its components by digest')
      .argument('<ref>', 'the release image: docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:FILE[:TAG]')
      .option('-o, --output <format>', 'text or json', 'text')
      .option('--pullspecs', 'list components by pull spec instead of digest')
      .option('--changes-from <ref>', 'show the components added, removed and changed since this older release'),
  );
  addReleaseInfoSignatureOptions(info).action(async (ref: string, flags: ReleaseInfoFlags & ReleaseSignatureFlags) => {
    if (await releaseInfoSignatures(ref, flags)) return;
    await runReleaseInfo(ref, flags);
  });
  registerReleaseMirror(release);

  addRegistryFlags(
    release
      .command('extract')
      .description(
        "write a release's release-manifests/ files into DIR, or, with --command, extract a tool from its component image pinned to the release",
      )
      .argument('<ref>', 'the release image')
      .requiredOption('--to <dir>', 'directory to write into (created if missing)')
      .option('--command <name>', 'extract this tool (see the Tools section of lading release info)')
      .option('--command-os <os/arch>', "the tool's platform (default: the only one it has, else this machine's)")
      .option('-o, --output <format>', 'text or json', 'text'),
  ).action(async (ref: string, flags: RegistryFlags & { to: string; command?: string; commandOs?: string; output: string }) => {
    const format = outputFormat(flags.output);
    if (flags.commandOs !== undefined && flags.command === undefined) throw new LadingError('USAGE', '--command-os needs --command');
    await withRelease(ref, flags, async (rel, payload, stores) => {
      if (flags.command === undefined) {
        const files = await extractManifests(rel, flags.to);
        if (format === 'json') printJson({ dir: flags.to, files });
        else
          process.stdout.write(`extracted ${files.length} files from ${payload.metadata.version} into ${flags.to}: ${files.join(', ')}\n`);
        return;
      }
      const r = await extractCommand(rel, payload, {
        command: flags.command,
        ...(flags.commandOs !== undefined && { platform: parsePlatform(flags.commandOs) }),
        dir: flags.to,
        stores,
      });
      if (r.remaining.length > 0) {
        process.stderr.write(
          `warning: Unable to make all expected replacements in ${flags.command}.  Remaining: ${r.remaining.join(', ')}\n`,
        );
      }
      if (format === 'json') printJson(r);
      else {
        const values: Record<string, string> = {
          'release image': r.pinned.releaseImage,
          'release version': r.pinned.version,
          'release architecture': r.pinned.arch,
        };
        const lines = [`extracted ${r.path} (${r.platform}) from ${r.component.name} ${r.component.pullSpec}`];
        for (const m of r.matches) lines.push(`  pinned ${`${m.name}:`.padEnd(22)} ${values[m.name] ?? ''}`);
        process.stdout.write(`${lines.join('\n')}\n`);
      }
    });
  });
}
