/**
 * Image references in skopeo's transport syntax, and opening the Store each one names:
 *   oci:DIR[:TAG]   oci:DIR@DIGEST   oci-archive:FILE[:TAG]   docker://HOST/REPO[:TAG|@DIGEST]
 * A reference with no transport prefix means docker://, as in skopeo's and crane's CLIs.
 */
import { LadingError } from '../errors.js';
import { isDigest, parseDigest } from '../oci/digest.js';
import { formatReference, type ImageReference, parseImageReference } from '../oci/reference.js';
import type { RegistryClient } from './registry/client.js';
import type { Store } from './store.js';

export type TransportRef =
  | { transport: 'oci'; path: string; ref?: string }
  | { transport: 'oci-archive'; path: string; ref?: string }
  | { transport: 'docker'; image: ImageReference };

// containers/image accepts these in a layout reference; ':' and '@' appear in oras-style full names.
const LAYOUT_REF = /^[A-Za-z0-9_][A-Za-z0-9._\-:/@+]*$/;
const DIGEST_SUFFIX = /@((?:sha256|sha512):[0-9a-f]+)$/;

export function parseTransportRef(input: string): TransportRef {
  const colon = input.indexOf(':');
  const prefix = colon === -1 ? '' : input.slice(0, colon);
  if (prefix === 'oci' || prefix === 'oci-archive') return parseLocal(prefix, input.slice(colon + 1), input);
  if (input.startsWith('docker://')) return { transport: 'docker', image: parseImageReference(input.slice('docker://'.length)) };
  if (/^[a-z][a-z0-9-]*:(?!\d)/.test(input) && !input.includes('/')) {
    throw new LadingError('UNSUPPORTED_TRANSPORT', `unsupported transport "${prefix}" in "${input}": use oci:, oci-archive: or docker://`);
  }
  if (/^(containers-storage|docker-daemon|docker-archive|dir|sif|ostree):/.test(input)) {
    throw new LadingError('UNSUPPORTED_TRANSPORT', `transport "${prefix}:" is not supported: use oci:, oci-archive: or docker://`);
  }
  return { transport: 'docker', image: parseImageReference(input) };
}

function parseLocal(transport: 'oci' | 'oci-archive', rest: string, input: string): TransportRef {
  const bad = (why: string) => new LadingError('INVALID_REFERENCE', `invalid reference "${input}": ${why}`);
  let path = rest;
  let ref: string | undefined;
  const digest = DIGEST_SUFFIX.exec(rest);
  if (digest?.[1] !== undefined) {
    try {
      parseDigest(digest[1]);
    } catch (e) {
      throw bad((e as Error).message);
    }
    path = rest.slice(0, digest.index);
    ref = digest[1];
  } else {
    // As in containers/image: the path ends at the first ':' (a path with ':' cannot be named).
    const colon = rest.indexOf(':');
    if (colon !== -1) {
      path = rest.slice(0, colon);
      ref = rest.slice(colon + 1);
      if (!LAYOUT_REF.test(ref)) throw bad(`"${ref}" is not a valid tag`);
    }
  }
  if (path === '') throw bad(`${transport}: needs a ${transport === 'oci' ? 'directory' : 'file'} path`);
  return ref === undefined ? { transport, path } : { transport, path, ref };
}

export function formatTransportRef(t: TransportRef): string {
  if (t.transport === 'docker') return `docker://${formatReference(t.image)}`;
  if (t.ref === undefined) return `${t.transport}:${t.path}`;
  return isDigest(t.ref) ? `${t.transport}:${t.path}@${t.ref}` : `${t.transport}:${t.path}:${t.ref}`;
}

/** The reference inside the store: a tag or digest, or undefined for the store's only image. */
export function refWithinStore(t: TransportRef): string | undefined {
  if (t.transport !== 'docker') return t.ref;
  return t.image.digest ?? t.image.tag ?? 'latest';
}

/** What opening a store may share across a run: the registry client (connections, tokens, TLS). */
export interface OpenContext {
  registry?: RegistryClient;
}

/**
 * Opens the store a reference names. Each kind of store is loaded when first opened: a command that
 * parses references (most do) does not pay at start-up for the stores it never opens.
 */
export async function openStore(t: TransportRef, mode: 'read' | 'write', context: OpenContext = {}): Promise<Store> {
  switch (t.transport) {
    case 'oci': {
      const { LayoutStore } = await import('./layout/layout-store.js');
      return LayoutStore.open(t.path, mode);
    }
    case 'oci-archive': {
      const { ArchiveReader, ArchiveWriter } = await import('./archive/archive-store.js');
      return mode === 'read' ? ArchiveReader.open(t.path) : ArchiveWriter.create(t.path);
    }
    case 'docker': {
      const { RegistryStore } = await import('./registry/registry-store.js');
      const access = mode === 'write' ? 'push' : 'pull';
      if (context.registry !== undefined) return new RegistryStore(context.registry, t.image.domain, t.image.path, access);
      const { RegistryClient } = await import('./registry/client.js');
      return new RegistryStore(new RegistryClient(), t.image.domain, t.image.path, access, true);
    }
  }
}
