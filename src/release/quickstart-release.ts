/**
 * The release half of `lading quickstart`: two component images built in an OCI layout, a release
 * composed from them, inspected, and a tool extracted from it pinned to the release, which then runs and
 * says which release it is locked to. The tools are small Node programs carrying the markers in string
 * literals (pinned-values.ts), so the demo needs nothing but Node.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeImage } from '../build/image-writer.js';
import { LadingError } from '../errors.js';
import { fsckLayout } from '../store/layout/fsck.js';
import { LayoutStore } from '../store/layout/layout-store.js';
import { parseTransportRef } from '../store/transport.js';
import { composeRelease } from './compose.js';
import { extractCommand } from './extract.js';
import { MARKERS, type MarkerKind } from './markers.js';
import { openRelease, readPayload, releaseInfo } from './read.js';
import { StoreSet } from './store-set.js';

/** A Node program whose string literals hold `kinds`' markers, printing what they hold. */
function toolSource(name: string, kinds: readonly MarkerKind[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`#!/usr/bin/env node\n// ${name}: a demo tool lading pins to a release\nconst markers = {\n`)];
  for (const k of kinds) parts.push(Buffer.from(`  ${JSON.stringify(MARKERS[k].name)}: '`), MARKERS[k].bytes, Buffer.from(`',\n`));
  parts.push(
    Buffer.from(
      [
        '};',
        "const read = (c) => (c.startsWith('\\0_RELEASE_') ? 'unpatched' : c.slice(0, c.indexOf('\\0')));",
        `console.log('${name}: ' + Object.entries(markers).map(([k, v]) => k + ' ' + read(v)).join(', '));`,
        '',
      ].join('\n'),
    ),
  );
  return Buffer.concat(parts);
}

/** Where the quickstart's release landed, for the signing steps that follow. */
export interface QuickstartRelease {
  dir: string;
  tag: string;
  digest: string;
}

export async function releaseQuickstart(work: string, say: (s: string) => void): Promise<QuickstartRelease> {
  const componentsDir = join(work, 'components');
  const components = await LayoutStore.open(componentsDir, 'write');
  try {
    await writeImage(components, { layers: [{ files: { 'usr/bin/installer': toolSource('installer', ['image', 'version', 'arch']) } }] }, [
      'installer',
    ]);
    await writeImage(components, { layers: [{ files: { 'usr/bin/cli': toolSource('cli', ['version']) } }] }, ['cli']);
  } finally {
    await components.close();
  }
  say(`7. built two component images in oci:${componentsDir} (installer, cli)`);

  const releaseRef = `oci:${join(work, 'release')}:1.0.0`;
  const composed = await composeRelease({
    name: '1.0.0',
    to: releaseRef,
    components: [
      { name: 'installer', ref: `oci:${componentsDir}:installer` },
      { name: 'cli', ref: `oci:${componentsDir}:cli` },
    ],
    tools: [
      { name: 'installer', component: 'installer', path: 'usr/bin/installer' },
      { name: 'cli', component: 'cli', path: 'usr/bin/cli' },
    ],
  });
  say(`8. composed release ${composed.name} at ${releaseRef}  ${composed.digest}`);

  const stores = new StoreSet();
  try {
    const location = parseTransportRef(releaseRef);
    const rel = await openRelease(await stores.get(location), location, '1.0.0');
    const payload = await readPayload(rel);
    const info = releaseInfo(rel, payload);
    say(`9. release info: ${info.name}, ${info.platforms.join(', ')}, ${info.components.length} components pinned by digest:`);
    for (const c of info.components) say(`     ${c.name.padEnd(10)} ${c.digest}`);

    const binDir = join(work, 'bin');
    const extracted = await extractCommand(rel, payload, { command: 'installer', dir: binDir, stores });
    say(`10. extracted ${extracted.path}, pinned to ${extracted.pinned.releaseImage}`);
    const { stdout } = await promisify(execFile)(process.execPath, [extracted.path]);
    say(`     running it: ${stdout.trim()}`);
    if (!stdout.includes(composed.digest))
      throw new LadingError('INVALID_RELEASE', 'the extracted tool does not report the release it came from');
  } finally {
    await stores.close();
  }

  const report = await fsckLayout(await LayoutStore.open(join(work, 'release'), 'read'));
  say(
    `11. fsck oci:${join(work, 'release')}: ${report.blobs} blobs, ${report.problems.length === 0 ? 'ok' : `${report.problems.length} problems`}`,
  );
  if (report.problems.length) throw new LadingError('INVALID_LAYOUT', report.problems.map((p) => p.message).join('; '));
  return { dir: join(work, 'release'), tag: '1.0.0', digest: composed.digest };
}
