/**
 * `lading release extract`: the payload's `release-manifests/` files into a directory, or one tool out of
 * its component image, pinned to the release it came from (what `oc adm release extract --command` does):
 * the release image as `repo@sha256:<release digest>` (the index digest for a multi-architecture release,
 * so one binary serves every architecture), the release version, and the architecture as oc writes it.
 *
 * The tool's file is streamed out of the component's layers (layer-files.ts: top layer first, whiteouts
 * honoured, nothing unpacked) through the marker replacer into a temp file, which is renamed into place
 * only after every layer read has passed its digest check. A marker the tool lacks is a warning, as in
 * oc (not every tool carries all three).
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsError, isLadingError, LadingError } from '../errors.js';
import { flattenLayers } from '../fs/flatten.js';
import { formatPlatform, hostPlatform, parsePlatform, platformMatches } from '../oci/platform.js';
import type { Platform } from '../oci/types.js';
import { readFilesFromLayers } from './layer-files.js';
import { type MarkerMatch, MarkerReplacer } from './marker-replacer.js';
import { MANIFESTS_DIR, type ToolSpec } from './payload.js';
import { pinReplacements } from './pin.js';
import { imageFor, type Payload, type ReleaseImage, readPayload, releaseArchitecture, releasePullSpec } from './read.js';
import type { StoreSet } from './store-set.js';

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;

async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true }).catch((e: unknown) => {
    throw fsError(e, 'create', dir);
  });
}

function tempName(dir: string, name: string): string {
  return join(dir, `.${name}.lading-${randomBytes(6).toString('hex')}`);
}

/** Writes every file directly under the payload's release-manifests/ into `dir`; returns their names. */
export async function extractManifests(rel: ReleaseImage, dir: string): Promise<string[]> {
  await readPayload(rel); // a payload that does not read as one is refused before anything is written
  const prefix = `${MANIFESTS_DIR}/`;
  const tree = await flattenLayers(rel.store, rel.image.manifest.layers, {
    onFile: async (h, content) => {
      if (!h.path.startsWith(prefix) || h.path.slice(prefix.length).includes('/')) return;
      const chunks: Buffer[] = [];
      for await (const c of content()) chunks.push(c as Buffer);
      return { content: { kind: 'bytes', data: Buffer.concat(chunks) } };
    },
  });
  const names = (tree.children(MANIFESTS_DIR) ?? []).filter((n) => tree.get(`${prefix}${n}`)?.type === 'file');
  await ensureDir(dir);
  for (const name of names) {
    const content = tree.get(`${prefix}${name}`)!.content;
    if (content?.kind !== 'bytes') continue;
    const tmp = tempName(dir, name);
    try {
      await writeFile(tmp, content.data, { mode: 0o644 });
      await rename(tmp, join(dir, name));
    } catch (e) {
      await rm(tmp, { force: true });
      throw fsError(e, 'write', join(dir, name));
    }
  }
  return names;
}

export interface ExtractCommandOptions {
  command: string;
  /** `--command-os`; default: the only platform the tool has, else this machine's. */
  platform?: Platform;
  dir: string;
  stores: StoreSet;
}

export interface ExtractCommandResult {
  path: string;
  tool: ToolSpec;
  platform: string;
  component: { name: string; pullSpec: string };
  pinned: { releaseImage: string; version: string; arch: string };
  matches: MarkerMatch[];
  /** Markers the binary does not carry (a warning, as in oc). */
  remaining: string[];
}

/** The tool entry and platform `--command`/`--command-os` select. */
function selectTool(
  rel: ReleaseImage,
  payload: Payload,
  command: string,
  platform: Platform | undefined,
): { tool: ToolSpec; platform: Platform } {
  const what = `release ${payload.metadata.version} (${releasePullSpec(rel)})`;
  const tools = payload.tools.filter((t) => t.name === command);
  if (tools.length === 0) {
    const names = [...new Set(payload.tools.map((t) => t.name))].sort();
    throw new LadingError(
      'NOT_FOUND',
      `${what} has no tool named ${command} (${names.length ? `it has: ${names.join(', ')}` : 'it declares no tools'})`,
      {
        command,
      },
    );
  }
  const pairs = tools.flatMap((t) =>
    (t.platform !== undefined ? [parsePlatform(t.platform)] : rel.platforms).map((p) => ({ tool: t, platform: p })),
  );
  const want = platform ?? (pairs.length === 1 ? pairs[0]!.platform : hostPlatform());
  const match = pairs.find((p) => platformMatches(want, p.platform));
  if (match === undefined) {
    throw new LadingError(
      'NO_MATCHING_PLATFORM',
      `${what} has ${command} for ${pairs.map((p) => formatPlatform(p.platform)).join(', ')}, not ${formatPlatform(want)}: pass --command-os`,
      { command },
    );
  }
  return match;
}

export async function extractCommand(rel: ReleaseImage, payload: Payload, options: ExtractCommandOptions): Promise<ExtractCommandResult> {
  const { command, dir } = options;
  if (!SAFE_NAME.test(command)) throw new LadingError('UNSAFE_PATH', `the tool name ${JSON.stringify(command)} cannot be a file name`);
  const { tool, platform } = selectTool(rel, payload, command, options.platform);
  const component = payload.references.tags.find((t) => t.name === tool.component);
  if (component === undefined) {
    throw new LadingError(
      'INVALID_RELEASE',
      `the tools table names component ${tool.component} for ${command}, but image-references has no such component`,
    );
  }
  const pinned = {
    releaseImage: releasePullSpec(rel),
    version: payload.metadata.version,
    arch: releaseArchitecture(rel, rel.multi ? platform : (rel.platforms[0] ?? platform)),
  };
  const replacements = pinReplacements({ releaseImage: pinned.releaseImage, version: pinned.version, arch: pinned.arch });
  let replacer: MarkerReplacer;
  try {
    replacer = new MarkerReplacer(replacements.map((r) => r.replacement)); // checks every value fits before any I/O
  } catch (e) {
    if (!isLadingError(e, 'USAGE')) throw e;
    throw new LadingError(
      'INVALID_RELEASE',
      `cannot pin ${command} to this release: ${e.message} (copy the release to a shorter location)`,
      { command },
    );
  }

  const { store, descriptor } = await options.stores.locate(component.pullSpec, rel.store);
  const manifest = await imageFor(store, descriptor.digest, platform, `component ${component.name} (${component.pullSpec})`);
  await ensureDir(dir);
  const target = join(dir, command);
  const tmp = tempName(dir, command);
  try {
    const found = await readFilesFromLayers(store, manifest.layers, [tool.path], async (_p, _h, content) => {
      const patch = new Transform({
        transform(chunk: Buffer, _enc, done: TransformCallback) {
          done(null, replacer.push(chunk));
        },
        flush(done: TransformCallback) {
          done(null, replacer.end());
        },
      });
      await pipeline(content, patch, createWriteStream(tmp, { mode: 0o755 })).catch((e: unknown) => {
        throw fsError(e, 'write', tmp);
      });
    });
    const r = found.get(tool.path)!;
    if (r.state === 'missing') {
      throw new LadingError(
        'NOT_FOUND',
        `component ${component.name} (${component.pullSpec}) has no /${tool.path} for ${formatPlatform(platform)}: ${r.reason}`,
        {
          command,
        },
      );
    }
    await chmod(tmp, 0o755);
    await rename(tmp, target);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return {
    path: target,
    tool,
    platform: formatPlatform(platform),
    component: { name: component.name, pullSpec: component.pullSpec },
    pinned,
    matches: replacer.matches,
    remaining: replacer.remaining,
  };
}
