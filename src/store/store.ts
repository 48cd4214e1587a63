/**
 * The one interface over every place that holds OCI content: an OCI layout directory, an oci-archive
 * tar, a registry repository. A Store is one repository's worth of content: tags name manifests, and
 * blobs are addressed by digest. Every byte a Store hands out has been checked against its digest, and a
 * Store never keeps a blob whose bytes do not match the digest it was pushed under.
 */
import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/types.js';

export interface Store {
  /** What to call this store in messages, in transport syntax: `oci:/path`, `oci-archive:/f.tar`. */
  readonly name: string;

  /**
   * Finds the manifest or index that `ref` names: a tag, a digest, or undefined for "the only image"
   * (a layout with exactly one image needs no tag, as in skopeo).
   */
  resolve(ref: string | undefined): Promise<Descriptor>;

  /** Reads a manifest or index, checked against `desc` (digest, size, the 4 MiB limit). */
  fetchManifest(desc: Descriptor): Promise<Uint8Array>;

  /** A stream of the blob's bytes that errors instead of ending if they do not match `desc`. */
  fetchBlob(desc: Descriptor): Promise<Readable>;

  /** True when the store holds the content `desc` names (by digest; size is checked when cheap). */
  has(desc: Descriptor): Promise<boolean>;

  /** Stores a blob from a stream, verifying it; on any mismatch nothing is kept. */
  pushBlob(desc: Descriptor, content: Readable): Promise<void>;

  /**
   * Stores a manifest or index whose children are already present, and points `tags` at it. With no
   * tags, a layout records it untagged in index.json when `root` is true (skopeo's `oci:DIR` destination).
   */
  pushManifest(desc: Descriptor, bytes: Uint8Array, options?: { tags?: readonly string[]; root?: boolean }): Promise<void>;

  /** Tags in the store, sorted. */
  tags(): Promise<string[]>;

  /** Finishes the work: a written archive is completed and moved into place; locks are released. */
  close(): Promise<void>;

  /** Abandons writes in progress (an archive being written is deleted), then releases resources. */
  abort(): Promise<void>;
}

/** An optional capability: a store that can list the manifests whose `subject` is a given manifest. */
export interface ReferrerSource {
  referrers(subject: Descriptor): Promise<Descriptor[]>;
}

/** An optional capability: a store whose blobs are plain local files, so a copy may link instead of stream. */
export interface LocalBlobSource {
  localBlobPath(desc: Descriptor): Promise<string | undefined>;
}

/** An optional capability: a store that can take a verified local file by hard link, reflink or copy. */
export interface LocalBlobSink {
  pushBlobFromFile(desc: Descriptor, path: string): Promise<'linked' | 'copied'>;
}

export function isLocalBlobSource(s: Store): s is Store & LocalBlobSource {
  return typeof (s as Partial<LocalBlobSource>).localBlobPath === 'function';
}

export function isLocalBlobSink(s: Store): s is Store & LocalBlobSink {
  return typeof (s as Partial<LocalBlobSink>).pushBlobFromFile === 'function';
}
