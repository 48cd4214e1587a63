/**
 * The stores one release command reads from, opened once per repository or layout and closed together:
 * a release names many components, often in the same repository, and they share one registry client.
 */
import { resolve } from 'node:path';
import { isLadingError } from '../errors.js';
import type { Descriptor } from '../oci/types.js';
import type { Store } from '../store/store.js';
import { type OpenContext, openStore, type TransportRef } from '../store/transport.js';
import { parsePinnedPullSpec } from './pull-spec.js';

function locationKey(t: TransportRef): string {
  return t.transport === 'docker' ? `docker://${t.image.domain}/${t.image.path}` : `${t.transport}:${resolve(t.path)}`;
}

export class StoreSet {
  private readonly stores = new Map<string, Promise<Store>>();

  constructor(private readonly context: OpenContext = {}) {}

  /** The store at `location` (any tag or digest in it is ignored), opened for reading on first use. */
  get(location: TransportRef): Promise<Store> {
    const key = locationKey(location);
    let store = this.stores.get(key);
    if (store === undefined) {
      store = openStore(location, 'read', this.context);
      this.stores.set(key, store);
    }
    return store;
  }

  /**
   * Where to read the image `pullSpec` pins: `preferred` (the release's own store: mirrors keep
   * components next to the release) when it holds that digest, else the location the pull spec names.
   * Content is checked against the digest either way, so which store serves it does not matter.
   */
  async locate(pullSpec: string, preferred?: Store): Promise<{ store: Store; descriptor: Descriptor }> {
    const { location, digest } = parsePinnedPullSpec(pullSpec);
    if (preferred !== undefined) {
      try {
        return { store: preferred, descriptor: await preferred.resolve(digest) };
      } catch (e) {
        if (!isLadingError(e, 'NOT_FOUND')) throw e;
      }
    }
    const store = await this.get(location);
    return { store, descriptor: await store.resolve(digest) };
  }

  async close(): Promise<void> {
    const all = await Promise.allSettled(this.stores.values());
    this.stores.clear();
    for (const s of all) if (s.status === 'fulfilled') await s.value.close().catch(() => undefined);
  }
}
