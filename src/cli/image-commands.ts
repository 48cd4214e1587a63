/** `lading digest`, `lading inspect`, `lading ls`: reading images, in any store. */
import type { Command } from 'commander';
import { LadingError } from '../errors.js';
import { parseManifest } from '../oci/parse.js';
import { parsePlatform, platformMatches } from '../oci/platform.js';
import { type ImageSummary, inspectImage, readSmallBlob } from '../store/inspect.js';
import type { Store } from '../store/store.js';
import { openStore, parseTransportRef, refWithinStore } from '../store/transport.js';
import { formatBytes, type OutputFormat, printJson } from './output.js';
import { addRegistryFlags, type RegistryFlags, registryClient } from './registry-flags.js';

/** Opens the store `input` names for reading (with the registry flags' client), runs `fn`, and always closes both. */
export async function withSource<T>(
  input: string,
  flags: RegistryFlags,
  fn: (store: Store, ref: string | undefined) => Promise<T>,
): Promise<T> {
  const t = parseTransportRef(input);
  const client = registryClient(flags, { src: t.transport === 'docker' ? t.image.domain : undefined });
  try {
    const store = await openStore(t, 'read', { registry: client });
    try {
      return await fn(store, refWithinStore(t));
    } finally {
      await store.close();
    }
  } finally {
    await client.close();
  }
}

export function registerImageCommands(program: Command): void {
  addRegistryFlags(
    program
      .command('digest')
      .description('print the digest of the manifest or index REF names, and nothing else')
      .argument('<ref>', 'image reference: docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:FILE[:TAG]'),
  ).action(async (ref: string, flags: RegistryFlags) => {
    const desc = await withSource(ref, flags, (store, r) => store.resolve(r));
    process.stdout.write(`${desc.digest}\n`);
  });

  addRegistryFlags(
    program
      .command('inspect')
      .description('show an image: digest, media type, platforms, layers, config summary, annotations')
      .argument('<ref>', 'image reference')
      .option('-o, --output <format>', 'text or json', 'text')
      .option('--raw', 'print the manifest or index bytes exactly as stored')
      .option('--config', "print the image's config bytes exactly as stored")
      .option('--platform <os/arch[/variant]>', 'for an index: inspect the image for this platform'),
  ).action(async (ref: string, opts: RegistryFlags & { output: OutputFormat; raw?: boolean; config?: boolean; platform?: string }) => {
    await withSource(ref, opts, async (store, r) => {
      let target = r;
      if (opts.platform !== undefined) target = await platformChild(store, r, opts.platform);
      if (opts.raw || opts.config) {
        const desc = await store.resolve(target);
        const bytes = await store.fetchManifest(desc);
        if (opts.raw) return void process.stdout.write(bytes);
        const parsed = parseManifest(bytes, desc, `manifest ${desc.digest} in ${store.name}`);
        if (parsed.kind === 'index') {
          throw new LadingError('USAGE', `${ref} is an index, which has no config: pass --platform to pick an image`);
        }
        process.stdout.write(await readSmallBlob(store, parsed.manifest.config, 8 << 20));
        return;
      }
      const summary = await inspectImage(store, target);
      if (opts.output === 'json') printJson(summary);
      else printSummary(summary);
    });
  });

  addRegistryFlags(
    program
      .command('ls')
      .description('list the tags in a repository, an OCI layout or an archive')
      .argument('<location>', 'docker://HOST/REPO, oci:DIR or oci-archive:FILE')
      .option('-o, --output <format>', 'text or json', 'text'),
  ).action(async (location: string, opts: RegistryFlags & { output: OutputFormat }) => {
    const tags = await withSource(location, opts, (store) => store.tags());
    if (opts.output === 'json') printJson(tags);
    else for (const t of tags) process.stdout.write(`${t}\n`);
  });
}

async function platformChild(store: Store, ref: string | undefined, platform: string): Promise<string> {
  const want = parsePlatform(platform);
  const desc = await store.resolve(ref);
  const parsed = parseManifest(await store.fetchManifest(desc), desc, `manifest ${desc.digest} in ${store.name}`);
  if (parsed.kind !== 'index') return desc.digest;
  const child = parsed.index.manifests.find((m) => m.platform !== undefined && platformMatches(want, m.platform));
  if (child === undefined) throw new LadingError('NO_MATCHING_PLATFORM', `no image for ${platform} in ${store.name}`);
  return child.digest;
}

function printSummary(s: ImageSummary): void {
  const lines: string[] = [`Name:        ${s.name}`, `Digest:      ${s.digest}`, `MediaType:   ${s.mediaType}`, `Size:        ${s.size}`];
  if (s.artifactType) lines.push(`Artifact:    ${s.artifactType}`);
  if (s.manifests) {
    lines.push(`Manifests:   ${s.manifests.length}`);
    for (const m of s.manifests) lines.push(`  ${(m.platform ?? '-').padEnd(16)} ${m.digest}  ${formatBytes(m.size)}`);
  }
  const c = s.config;
  if (c) {
    if (c.platform) lines.push(`Platform:    ${c.platform}`);
    if (c.created) lines.push(`Created:     ${c.created}`);
    if (c.author) lines.push(`Author:      ${c.author}`);
    if (c.entrypoint) lines.push(`Entrypoint:  ${JSON.stringify(c.entrypoint)}`);
    if (c.cmd) lines.push(`Cmd:         ${JSON.stringify(c.cmd)}`);
    if (c.workingDir) lines.push(`WorkingDir:  ${c.workingDir}`);
    if (c.user) lines.push(`User:        ${c.user}`);
    for (const e of c.env ?? []) lines.push(`Env:         ${e}`);
    lines.push(`Config:      ${c.digest}  ${c.mediaType}`);
  }
  if (s.layers) {
    const total = s.layers.reduce((n, l) => n + l.size, 0);
    lines.push(`Layers:      ${s.layers.length} (${formatBytes(total)})`);
    for (const l of s.layers) lines.push(`  ${l.digest}  ${formatBytes(l.size).padStart(10)}  ${l.mediaType}`);
  }
  const labels = Object.entries(c?.labels ?? {});
  if (labels.length) lines.push('Labels:', ...labels.map(([k, v]) => `  ${k}=${v}`));
  const ann = Object.entries(s.annotations);
  if (ann.length) lines.push('Annotations:', ...ann.map(([k, v]) => `  ${k}=${v}`));
  process.stdout.write(`${lines.join('\n')}\n`);
}
