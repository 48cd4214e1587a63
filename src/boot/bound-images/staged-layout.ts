/**
 * An OCI layout that takes blobs and manifests now but lists the new images in index.json only at
 * `commit()`, in one atomic rename. Until then nothing a reader of the layout sees has changed; `abort()`
 * deletes the blobs this run added (LayoutStore.abort), so a failed run leaves the layout byte for byte
 * as it was and a retry starts clean. This is what makes pulling a set of bound images all or nothing
 * without copying the blobs twice (a staging directory would have to be merged afterwards).
 */
import type { Readable } from 'node:stream';
import type { Descriptor } from '../../oci/types.js';
import { withImage } from '../../store/layout/index-json.js';
import type { LayoutStore } from '../../store/layout/layout-store.js';
import type { LocalBlobSink, Store } from '../../store/store.js';

export class StagedLayout implements Store, LocalBlobSink {
  readonly name: string;
  private readonly pending: { desc: Descriptor; tags: readonly string[] }[] = [];

  constructor(private readonly layout: LayoutStore) {
    this.name = layout.name;
  }

  resolve(ref: string | undefined): Promise<Descriptor> {
    return this.layout.resolve(ref);
  }

  fetchManifest(desc: Descriptor): Promise<Uint8Array> {
    return this.layout.fetchManifest(desc);
  }

  fetchBlob(desc: Descriptor): Promise<Readable> {
    return this.layout.fetchBlob(desc);
  }

  has(desc: Descriptor): Promise<boolean> {
    return this.layout.has(desc);
  }

  pushBlob(desc: Descriptor, content: Readable): Promise<void> {
    return this.layout.pushBlob(desc, content);
  }

  pushBlobFromFile(desc: Descriptor, path: string): Promise<'linked' | 'copied'> {
    return this.layout.pushBlobFromFile(desc, path);
  }

  /** Stores the manifest blob now; its index.json entry waits for commit(). */
  async pushManifest(desc: Descriptor, bytes: Uint8Array, options: { tags?: readonly string[]; root?: boolean } = {}): Promise<void> {
    await this.layout.pushManifest(desc, bytes);
    const tags = options.tags ?? [];
    if (tags.length > 0 || options.root === true) this.pending.push({ desc, tags });
  }

  tags(): Promise<string[]> {
    return this.layout.tags();
  }

  /** Lists every image pushed in index.json at once (under the layout lock, merged with concurrent writers). */
  async commit(): Promise<void> {
    if (this.pending.length === 0) return;
    await this.layout.updateIndex((index) => this.pending.reduce((i, p) => withImage(i, p.desc, p.tags), index));
  }

  close(): Promise<void> {
    return this.layout.close();
  }

  abort(): Promise<void> {
    return this.layout.abort();
  }
}
