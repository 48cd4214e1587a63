/**
 * `lading quickstart` (what `npm start` runs): Lading's main job end to end on the embedded default,
 * OCI layouts, with no server. Creates a two-platform image, copies it to a second layout and into a
 * sneakernet archive and back, inspects it, and checks every layout with fsck; then builds two component
 * images, composes a release from them, inspects it and extracts a tool pinned to it (runs it, too);
 * then signs the release, carries it with its signature to a second layout and verifies it there,
 * printing each step.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { writeImage, writeIndex } from '../build/image-writer.js';
import { copyImage } from '../copy/copy-image.js';
import { LadingError } from '../errors.js';
import { ArchiveReader, ArchiveWriter } from '../store/archive/archive-store.js';
import { inspectImage } from '../store/inspect.js';
import { fsckLayout } from '../store/layout/fsck.js';
import { releaseQuickstart } from '../release/quickstart-release.js';
import { signingQuickstart } from './quickstart-sign.js';
import { LayoutStore } from '../store/layout/layout-store.js';

export function registerQuickstart(program: Command): void {
  program
    .command('quickstart')
    .description('run the main job on OCI layouts in a scratch directory, printing each step')
    .option('--dir <dir>', 'where to work (default: a new temp directory)')
    .action(async (opts: { dir?: string }) => {
      const work = opts.dir ?? (await mkdtemp(join(tmpdir(), 'lading-quickstart-')));
      const say = (s: string) => process.stdout.write(`${s}\n`);
      say(`Working in ${work}`);

      const source = await LayoutStore.open(join(work, 'source'), 'write');
      const images = [];
      for (const [os, architecture] of [
        ['linux', 'amd64'],
        ['linux', 'arm64'],
      ] as const) {
        images.push(
          await writeImage(source, {
            platform: { os, architecture },
            layers: [
              { files: { 'etc/release': `lading quickstart\n` } },
              { files: { [`opt/app/${architecture}.txt`]: `built for ${os}/${architecture}\n` } },
            ],
            config: { Cmd: ['/bin/sh'], Env: ['PATH=/usr/bin:/bin'] },
          }),
        );
      }
      const index = await writeIndex(source, images, ['v1']);
      await source.close();
      say(`1. created oci:${join(work, 'source')}:v1  ${index.digest} (linux/amd64 + linux/arm64)`);

      const mirror = await LayoutStore.open(join(work, 'mirror'), 'write');
      const copied = await copyImage(source, 'v1', mirror, { platforms: 'all', tags: ['v1'] });
      await mirror.close();
      say(
        `2. copied to oci:${join(work, 'mirror')}:v1  (${copied.manifests} manifests, ${copied.blobs.linked} blobs linked, ${copied.blobs.copied} copied)`,
      );

      const archivePath = join(work, 'release.tar');
      const archive = await ArchiveWriter.create(archivePath);
      await copyImage(mirror, 'v1', archive, { platforms: 'all', tags: ['v1'] }).catch(async (e) => {
        await archive.abort();
        throw e;
      });
      await archive.close();
      say(`3. packed into oci-archive:${archivePath}:v1 for the sneakernet`);

      const reader = await ArchiveReader.open(archivePath);
      const site = await LayoutStore.open(join(work, 'site'), 'write');
      await copyImage(reader, 'v1', site, { platforms: 'all', tags: ['v1'] });
      await reader.close();
      await site.close();
      say(`4. unpacked at the disconnected site into oci:${join(work, 'site')}:v1`);

      const summary = await inspectImage(site, 'v1');
      say(`5. inspected: ${summary.digest} ${summary.mediaType}`);
      for (const m of summary.manifests ?? []) say(`     ${m.platform}  ${m.digest}`);
      if (summary.digest !== index.digest) throw new LadingError('DIGEST_MISMATCH', 'the site holds a different digest than the source');

      for (const dir of ['source', 'mirror', 'site']) {
        const report = await fsckLayout(await LayoutStore.open(join(work, dir), 'read'));
        say(
          `6. fsck oci:${join(work, dir)}: ${report.blobs} blobs, ${report.problems.length === 0 ? 'ok' : `${report.problems.length} problems`}`,
        );
        if (report.problems.length) throw new LadingError('INVALID_LAYOUT', report.problems.map((p) => p.message).join('; '));
      }
      const release = await releaseQuickstart(work, say);
      await signingQuickstart(work, release, say);
      say(`Same digest at the source and the site. Try: lading inspect oci:${join(work, 'site')}:v1 --platform linux/arm64`);
      say(`and: lading release info oci:${join(work, 'release')}:1.0.0, lading pin --show ${join(work, 'bin', 'installer')}`);
      say(
        `and: lading verify oci:${join(work, 'site-release')}:1.0.0 --keyring ${join(work, 'keys', 'release-key.pub.asc')} ` +
          `--store ${join(work, 'signatures')} --identity quay.example/lading/release:1.0.0`,
      );
    });
}
