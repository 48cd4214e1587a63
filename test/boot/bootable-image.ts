/**
 * Small bootable images for tests: a RootSpec (files and symlinks) as one gzip layer written by the
 * project's layer writer, a config with the bootc label, and an OCI manifest, into any store.
 */
import { Readable } from 'node:stream';
import { writeLayer } from '../../src/fs/layer-writer.js';
import { canonicalJsonBytes } from '../../src/oci/canonical-json.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import type { Descriptor } from '../../src/oci/types.js';
import type { Store } from '../../src/store/store.js';
import { type RootSpec, treeOf } from './root-builder.js';

export async function writeBootable(
  store: Store,
  spec: RootSpec,
  tags: readonly string[],
  labels: Record<string, string> = { 'containers.bootc': '1' },
): Promise<Descriptor> {
  const layer = await writeLayer(store, treeOf(spec), { compression: 'gzip', cacheDir: false, workers: 1 });
  const config = {
    architecture: 'amd64',
    os: 'linux',
    config: { Labels: labels },
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created_by: 'test' }],
  };
  const configBytes = canonicalJsonBytes(config);
  const configDesc: Descriptor = { mediaType: MediaType.ociConfig, digest: digestOf(configBytes), size: configBytes.byteLength };
  if (!(await store.has(configDesc))) await store.pushBlob(configDesc, Readable.from([Buffer.from(configBytes)]));
  const manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDesc, layers: [layer.descriptor] };
  const bytes = canonicalJsonBytes(manifest);
  const desc: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf(bytes), size: bytes.byteLength };
  await store.pushManifest(desc, bytes, { tags, root: true });
  return desc;
}

/** A root declaring each of `images` in its own .image unit, linked from bound-images.d. */
export function declaring(images: Record<string, string>): RootSpec {
  const spec: RootSpec = { 'etc/os-release': 'ID=test\n' };
  for (const [name, image] of Object.entries(images)) {
    spec[`usr/share/containers/systemd/${name}.image`] = `[Unit]\nDescription=${name}\n\n[Image]\nImage=${image}\n`;
    spec[`usr/lib/bootc/bound-images.d/${name}.image`] = { link: `/usr/share/containers/systemd/${name}.image` };
  }
  return spec;
}
