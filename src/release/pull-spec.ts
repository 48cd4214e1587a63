/**
 * Pull specs pinned by digest, the only way a release names its components and the way a pinned binary
 * names its release: `host/repo@sha256:…` for a registry (what OpenShift writes), and, so a release can
 * live in an OCI layout or archive with no registry at all, `oci:/abs/dir@sha256:…` and
 * `oci-archive:/abs/file@sha256:…` (skopeo's transport syntax).
 */
import { resolve } from 'node:path';
import { LadingError } from '../errors.js';
import { type Digest, isDigest } from '../oci/digest.js';
import { parseTransportRef, type TransportRef } from '../store/transport.js';

/** The digest-pinned pull spec for `digest` in the repository or layout `t` names (any tag dropped). */
export function pullSpecFor(t: TransportRef, digest: string): string {
  if (t.transport === 'docker') return `${t.image.domain}/${t.image.path}@${digest}`;
  return `${t.transport}:${resolve(t.path)}@${digest}`;
}

/** Where a pinned pull spec points and the digest it pins; refuses a spec without a digest. */
export function parsePinnedPullSpec(spec: string): { location: TransportRef; digest: Digest } {
  const t = parseTransportRef(spec);
  const digest = t.transport === 'docker' ? t.image.digest : t.ref;
  if (digest === undefined || !isDigest(digest)) {
    throw new LadingError('INVALID_REFERENCE', `${spec} is not pinned by digest (expected …@sha256:<hex>)`, { reference: spec });
  }
  return { location: t, digest };
}
