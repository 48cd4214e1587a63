/**
 * What `sign` and `verify` are pointed at: a bare digest (`sha256:<hex>`), a registry reference, or an
 * image in a layout or archive. The digest is all that signing and verifying a simple signature need,
 * so a reference that carries one (`host/repo@sha256:…`, or a bare digest) is never resolved: no
 * registry is contacted. The docker reference, when there is one, is the identity signed for and the
 * identity a signature is checked against; a layout entry named like a registry reference (as
 * `lading mirror` names them: `quay.io/ns/app:1.0`) counts as one.
 */
import { LadingError } from '../errors.js';
import { isDigest } from '../oci/digest.js';
import { type ImageReference, parseImageReference } from '../oci/reference.js';
import type { Descriptor } from '../oci/types.js';
import type { Store } from '../store/store.js';
import { type OpenContext, type TransportRef, openStore, parseTransportRef, refWithinStore } from '../store/transport.js';

export interface ImageTarget {
  input: string;
  /** Undefined for a bare digest. */
  transport?: TransportRef;
  /** Known from the reference itself. */
  digest?: string;
  /** The registry reference the image is known by, if any. */
  docker?: ImageReference;
}

export function parseImageTarget(input: string): ImageTarget {
  if (/^sha(256|512):/.test(input)) {
    if (!isDigest(input)) throw new LadingError('INVALID_REFERENCE', `invalid digest ${JSON.stringify(input)}: expected sha256:<64 hex>`);
    return { input, digest: input };
  }
  const transport = parseTransportRef(input);
  if (transport.transport === 'docker') {
    return { input, transport, docker: transport.image, ...(transport.image.digest !== undefined && { digest: transport.image.digest }) };
  }
  const target: ImageTarget = { input, transport };
  if (transport.ref !== undefined && isDigest(transport.ref)) target.digest = transport.ref;
  else if (transport.ref !== undefined) {
    const docker = registryLike(transport.ref);
    if (docker !== undefined) target.docker = docker;
  }
  return target;
}

/** A layout ref name that reads as `host/path[:tag]`, with a host that could only be a registry. */
function registryLike(ref: string): ImageReference | undefined {
  const first = ref.split('/')[0] ?? '';
  if (!ref.includes('/') || !(/[.:]/.test(first) || first === 'localhost')) return undefined;
  try {
    return parseImageReference(ref);
  } catch {
    return undefined;
  }
}

/** Opens the target's store and resolves the image; the caller closes the store. */
export async function openImageTarget(
  target: ImageTarget,
  mode: 'read' | 'write',
  context: OpenContext = {},
): Promise<{ store: Store; descriptor: Descriptor }> {
  if (target.transport === undefined) {
    throw new LadingError(
      'USAGE',
      `${target.input} is a bare digest: name the image (docker://HOST/REPO@DIGEST or oci:DIR@DIGEST) to read it from a store`,
    );
  }
  const store = await openStore(target.transport, mode, context);
  try {
    const descriptor = await store.resolve(refWithinStore(target.transport));
    if (target.digest !== undefined && descriptor.digest !== target.digest) {
      throw new LadingError('DIGEST_MISMATCH', `${target.input} resolved to ${descriptor.digest}, not ${target.digest}`);
    }
    return { store, descriptor };
  } catch (e) {
    await store.abort().catch(() => undefined);
    throw e;
  }
}

/** The image's digest: from the reference when it has one, else by resolving it in its store. */
export async function targetDigest(target: ImageTarget, context: OpenContext = {}): Promise<string> {
  if (target.digest !== undefined) return target.digest;
  const { store, descriptor } = await openImageTarget(target, 'read', context);
  await store.close();
  return descriptor.digest;
}
