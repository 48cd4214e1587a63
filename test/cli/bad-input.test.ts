/**
 * Bad input through the CLI, as a user meets it: each case must exit 1 with exactly one line on stderr
 * that says what is wrong, and leave every file on disk as it was.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import tarStream from 'tar-stream';
import { writeImage } from '../../src/build/image-writer.js';
import { canonicalJson } from '../../src/oci/canonical-json.js';
import { digestOf } from '../../src/oci/digest.js';
import type { Descriptor } from '../../src/oci/types.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { lading } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { snapshot } from '../helpers/tree.js';

/** A valid one-image layout tagged `t`, returning its manifest and the layer's digest. */
async function goodLayout(dir: string): Promise<{ manifest: Descriptor; layer: string; config: string }> {
  const store = await LayoutStore.open(dir, 'write');
  const manifest = await writeImage(store, { layers: [{ files: { 'etc/hello': 'hello world\n'.repeat(100) } }] }, ['t']);
  await store.close();
  const m = JSON.parse(Buffer.from(await store.fetchManifest(manifest)).toString()) as { layers: Descriptor[]; config: Descriptor };
  return { manifest, layer: m.layers[0]!.digest, config: m.config.digest };
}

/** A layout whose one layer (2 MiB, over the size hashed off the main thread) has one byte flipped. */
async function bigCorruptLayout(dir: string): Promise<void> {
  const store = await LayoutStore.open(dir, 'write');
  const noise = Buffer.alloc(2 << 20);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  const manifest = await writeImage(store, { layers: [{ files: { 'usr/big': noise } }] }, ['t']);
  await store.close();
  const m = JSON.parse(Buffer.from(await store.fetchManifest(manifest)).toString()) as { layers: Descriptor[] };
  assert.ok(m.layers[0]!.size > 1 << 20, 'the layer is large enough to be hashed off the main thread');
  const p = blobPath(dir, m.layers[0]!.digest);
  const bytes = await readFile(p);
  bytes[bytes.length - 5000] = (bytes[bytes.length - 5000] ?? 0) ^ 0x01;
  await writeFile(p, bytes);
}

function blobPath(dir: string, digest: string): string {
  return join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

/** Writes `bytes` as a blob under its true digest and makes index.json point `t` at it. */
async function layoutPointingAt(dir: string, bytes: Buffer, mediaType: string, size = bytes.length): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const digest = digestOf(bytes);
  await writeFile(blobPath(dir, digest), bytes);
  const index = { schemaVersion: 2, manifests: [{ mediaType, digest, size, annotations: { 'org.opencontainers.image.ref.name': 't' } }] };
  await writeFile(join(dir, 'index.json'), canonicalJson(index));
}

interface Case {
  name: string;
  setup: (dir: string) => Promise<string[]>;
  stderr: RegExp;
}

const cases: Case[] = [
  {
    name: 'copy of a corrupted layer into a new layout',
    setup: async (dir) => {
      const { layer } = await goodLayout(join(dir, 'src'));
      const p = blobPath(join(dir, 'src'), layer);
      const bytes = await readFile(p);
      bytes[700] = (bytes[700] ?? 0) ^ 0xff;
      await writeFile(p, bytes);
      return ['copy', '--no-link', `oci:${dir}/src:t`, `oci:${dir}/dst:t`];
    },
    stderr: /blob in oci:.*src: sha256:[0-9a-f]{64} is corrupt: its content hashes to sha256:/,
  },
  {
    name: 'copy of a corrupted 2 MiB layer (hashed on a worker as it is read) into a new layout',
    setup: async (dir) => {
      await bigCorruptLayout(join(dir, 'src'));
      return ['copy', '--no-link', `oci:${dir}/src:t`, `oci:${dir}/dst:t`];
    },
    stderr: /blob in oci:.*src: sha256:[0-9a-f]{64} is corrupt: its content hashes to sha256:/,
  },
  {
    name: 'copy (by link) of a corrupted 2 MiB layer (the link re-hashed on a worker)',
    setup: async (dir) => {
      await bigCorruptLayout(join(dir, 'src'));
      return ['copy', `oci:${dir}/src:t`, `oci:${dir}/dst:t`];
    },
    stderr: /blob in .*src\/blobs\/sha256\/[0-9a-f]{64}: sha256:[0-9a-f]{64} is corrupt: its content hashes to sha256:/,
  },
  {
    name: 'fsck of a corrupted 2 MiB layer (hashed on a worker)',
    setup: async (dir) => {
      await bigCorruptLayout(dir);
      return ['fsck', `oci:${dir}`];
    },
    stderr: /^lading: fsck found 1 problems in oci:/,
  },
  {
    name: 'copy (by link) of a corrupted layer into an existing layout',
    setup: async (dir) => {
      const { layer } = await goodLayout(join(dir, 'src'));
      const dst = await LayoutStore.open(join(dir, 'dst'), 'write');
      await writeImage(dst, { layers: [{ files: { unrelated: 'content' } }] }, ['t']);
      await dst.close();
      const p = blobPath(join(dir, 'src'), layer);
      const bytes = await readFile(p);
      bytes[10] = (bytes[10] ?? 0) ^ 0xff;
      await writeFile(p, bytes);
      await writeImage(await LayoutStore.open(join(dir, 'src'), 'write'), { layers: [{ files: { x: 'y' } }] }, ['other']);
      return ['copy', `oci:${dir}/src:t`, `oci:${dir}/dst:t2`];
    },
    stderr: /sha256:[0-9a-f]{64} is corrupt/,
  },
  {
    name: 'fsck of a corrupted blob',
    setup: async (dir) => {
      const { config } = await goodLayout(dir);
      await writeFile(blobPath(dir, config), '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
      return ['fsck', `oci:${dir}`];
    },
    stderr: /^lading: fsck found 2 problems in oci:/,
  },
  {
    name: 'a blob file of the wrong length',
    setup: async (dir) => {
      const { layer } = await goodLayout(join(dir, 'src'));
      const p = blobPath(join(dir, 'src'), layer);
      await writeFile(p, (await readFile(p)).subarray(0, 1000));
      return ['copy', '--no-link', `oci:${dir}/src:t`, `oci:${dir}/dst:t`];
    },
    stderr: /has the wrong length: expected \d+ bytes, got 1000/,
  },
  {
    name: 'malformed index.json',
    setup: async (dir) => {
      await goodLayout(dir);
      await writeFile(join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[');
      return ['inspect', `oci:${dir}:t`];
    },
    stderr: /index\.json/,
  },
  {
    name: 'schema-invalid index.json',
    setup: async (dir) => {
      await goodLayout(dir);
      await writeFile(
        join(dir, 'index.json'),
        '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":"12"}]}',
      );
      return ['ls', `oci:${dir}`];
    },
    stderr: /index\.json.*invalid/,
  },
  {
    name: 'malformed manifest JSON',
    setup: async (dir) => {
      await layoutPointingAt(dir, Buffer.from('{"schemaVersion":2,'), 'application/vnd.oci.image.manifest.v1+json');
      return ['inspect', `oci:${dir}:t`];
    },
    stderr: /manifest sha256:[0-9a-f]{64}.*(JSON|json)/,
  },
  {
    name: 'schema-invalid manifest',
    setup: async (dir) => {
      const bad = {
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { digest: 'sha256:abc', size: 1 },
        layers: [],
      };
      await layoutPointingAt(dir, Buffer.from(JSON.stringify(bad)), 'application/vnd.oci.image.manifest.v1+json');
      return ['copy', `oci:${dir}:t`, `oci:${dir}-copy:t`];
    },
    stderr: /manifest sha256:[0-9a-f]{64}.* is invalid: \/config/,
  },
  {
    name: 'a manifest over 4 MiB',
    setup: async (dir) => {
      const huge = { schemaVersion: 2, annotations: { pad: 'x'.repeat(4 * 1024 * 1024) } };
      await layoutPointingAt(dir, Buffer.from(JSON.stringify(huge)), 'application/vnd.oci.image.manifest.v1+json');
      return ['inspect', `oci:${dir}:t`];
    },
    stderr: /over the 4 MiB limit/,
  },
  {
    name: 'an unknown media type',
    setup: async (dir) => {
      await layoutPointingAt(dir, Buffer.from('{"schemaVersion":2}'), 'application/vnd.example.thing+json');
      return ['copy', `oci:${dir}:t`, `oci:${dir}-copy:t`];
    },
    stderr: /unsupported manifest media type "application\/vnd\.example\.thing\+json"/,
  },
  {
    name: 'a Docker schema 1 manifest',
    setup: async (dir) => {
      await layoutPointingAt(
        dir,
        Buffer.from('{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}'),
        'application/vnd.docker.distribution.manifest.v1+prettyjws',
      );
      return ['inspect', `oci:${dir}:t`];
    },
    stderr: /Docker schema 1 manifests are not supported/,
  },
  { name: 'an empty layout path', setup: async () => ['inspect', 'oci:'], stderr: /invalid reference "oci:": oci: needs a directory path/ },
  { name: 'a malformed tag', setup: async (dir) => ['digest', `oci:${dir}:bad tag!`], stderr: /is not a valid tag/ },
  { name: 'a malformed digest', setup: async (dir) => ['digest', `oci:${dir}@sha256:1234`], stderr: /invalid sha256 digest/ },
  {
    name: 'an uppercase docker repository',
    setup: async () => ['inspect', 'docker://quay.io/Foo/bar:1'],
    stderr: /repository name must be lowercase/,
  },
  { name: 'an unknown transport', setup: async () => ['inspect', 'ftp:foo'], stderr: /unsupported transport "ftp"/ },
  {
    name: 'a tag that does not exist',
    setup: async (dir) => {
      await goodLayout(dir);
      return ['copy', `oci:${dir}:nope`, `oci:${dir}-copy:t`];
    },
    stderr: /tag "nope" not found in oci:.* \(tags: t\)/,
  },
  {
    name: 'a layout without oci-layout',
    setup: async (dir) => {
      await goodLayout(dir);
      execFileSync('rm', [join(dir, 'oci-layout')]);
      return ['inspect', `oci:${dir}:t`];
    },
    stderr: /is not an OCI image layout: it has no oci-layout file/,
  },
  {
    name: 'copying into a non-empty directory that is not a layout',
    setup: async (dir) => {
      await goodLayout(join(dir, 'src'));
      await mkdir(join(dir, 'home'));
      await writeFile(join(dir, 'home', 'notes.txt'), 'mine');
      return ['copy', `oci:${dir}/src:t`, `oci:${dir}/home:t`];
    },
    stderr: /refusing to write into .*home: it is not empty and has no oci-layout file/,
  },
  ...['../escape', '/etc/passwd'].map((path): Case => ({
    name: `an archive holding ${path}`,
    setup: async (dir) => {
      const pack = tarStream.pack();
      const chunks: Buffer[] = [];
      pack.on('data', (c: unknown) => chunks.push(c as Buffer));
      const done = new Promise<void>((r) => pack.on('end', () => r()));
      pack.entry({ name: 'oci-layout' }, '{"imageLayoutVersion":"1.0.0"}');
      pack.entry({ name: path }, 'x');
      pack.finalize();
      await done;
      await writeFile(join(dir, 'evil.tar'), Buffer.concat(chunks));
      return ['copy', `oci-archive:${dir}/evil.tar`, `oci:${dir}/out:t`];
    },
    stderr: /holds an unsafe path ".*": refusing the archive/,
  })),
];

describe('bad input', () => {
  for (const c of cases) {
    it(`${c.name}: exit 1, one line on stderr, nothing changed`, async () => {
      const dir = await tempDir();
      const args = await c.setup(dir);
      const parent = join(dir, '..');
      const siblings = (await readdir(parent)).filter((n) => n.startsWith(`${dir.slice(parent.length + 1)}-`));
      const before = await snapshot(dir);
      const r = await lading(...args);
      assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
      assert.match(lines[0]!, /^lading: /);
      assert.match(lines[0]!, c.stderr);
      assert.equal(await snapshot(dir), before, 'the files on disk are unchanged');
      const after = (await readdir(parent)).filter((n) => n.startsWith(`${dir.slice(parent.length + 1)}-`));
      assert.deepEqual(after, siblings, 'no destination directory was created beside it');
    });
  }
});

describe('a read-only destination', () => {
  it('fails with one line naming the path, and writes nothing', async () => {
    const dir = await tempDir();
    await goodLayout(join(dir, 'src'));
    const ro = join(dir, 'ro');
    await mkdir(ro);
    // Root ignores permission bits, so as root the directory is made immutable instead.
    const root = process.getuid?.() === 0;
    execFileSync(root ? 'chattr' : 'chmod', [root ? '+i' : '555', ro]);
    try {
      const before = await snapshot(dir);
      const r = await lading('copy', `oci:${dir}/src:t`, `oci:${ro}/layout:t`);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^lading: cannot .*ro\/layout.*: (operation not permitted|permission denied|read-only filesystem)/);
      assert.equal(await snapshot(dir), before);
    } finally {
      execFileSync(root ? 'chattr' : 'chmod', [root ? '-i' : '755', ro]);
    }
  });
});
