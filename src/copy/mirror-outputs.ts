/**
 * What a mirror run hands to the people and clusters that use the mirror: an OpenShift
 * ImageDigestMirrorSet that redirects digest pulls from each source repository to its mirror, and the
 * plain `SOURCE=DESTINATION` list that `oc image mirror -f` reads. Both are sorted and deduplicated, so the
 * same mirror set always prints the same bytes (and a diff between runs shows only what changed).
 */
import { stringify } from 'yaml';
import { isLadingError, LadingError } from '../errors.js';
import { formatReference, type ImageReference, repositoryOf } from '../oci/reference.js';
import { parseTransportRef } from '../store/transport.js';

export interface MirrorMapping {
  source: ImageReference;
  /** Full destination reference string, e.g. 'mirror.example:5000/prefix/org/app:1.2' or 'oci:/path:quay.io/org/app:1.2'. */
  destination: string;
}

const DEFAULT_NAME = 'lading-mirror';
// metadata.name of a cluster-scoped object: a DNS subdomain (RFC 1123), at most 253 characters.
const DNS_SUBDOMAIN = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;

/**
 * ImageDigestMirrorSet YAML (config.openshift.io/v1): one imageDigestMirrors entry per source repository,
 * listing every repository it was mirrored to; entries sorted by source, mirrors sorted, duplicates
 * dropped. Sources are repositories without tag or digest, a Docker Hub one written in full
 * ('docker.io/library/x'). Only for registry targets: a layout or archive destination is a USAGE error.
 */
export function imageDigestMirrorSet(mappings: MirrorMapping[], name = DEFAULT_NAME): string {
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    throw new LadingError(
      'USAGE',
      `invalid ImageDigestMirrorSet name ${JSON.stringify(name)}: use lowercase letters, digits, '-' and '.' (at most 253 characters)`,
    );
  }
  const mirrors = new Map<string, Set<string>>();
  for (const m of mappings) {
    const source = repositoryOf(m.source);
    const mirror = repositoryOf(registryImage(m.destination));
    let set = mirrors.get(source);
    if (set === undefined) mirrors.set(source, (set = new Set()));
    set.add(mirror);
  }
  const imageDigestMirrors = [...mirrors.keys()].sort(compare).map((source) => ({
    mirrors: [...(mirrors.get(source) ?? [])].sort(compare),
    source,
  }));
  const doc = {
    apiVersion: 'config.openshift.io/v1',
    kind: 'ImageDigestMirrorSet',
    metadata: { name },
    spec: { imageDigestMirrors },
  };
  // Kubernetes style: sequences not indented under their key, no line folding.
  return stringify(doc, { indentSeq: false, lineWidth: 0 });
}

/** A plain list, one line per image: `SOURCE=DESTINATION` (the mapping-file format of `oc image mirror -f`), sorted, deduplicated. */
export function mappingList(mappings: MirrorMapping[]): string {
  const lines = new Set(mappings.map((m) => `${formatReference(m.source)}=${m.destination}`));
  return [...lines]
    .sort(compare)
    .map((line) => `${line}\n`)
    .join('');
}

/** The registry image a destination names; USAGE error for a layout or archive destination. */
function registryImage(destination: string): ImageReference {
  let ref;
  try {
    ref = parseTransportRef(destination);
  } catch (e) {
    if (!isLadingError(e)) throw e;
    throw new LadingError('USAGE', `cannot write an ImageDigestMirrorSet for ${JSON.stringify(destination)}: ${e.message}`);
  }
  if (ref.transport !== 'docker') {
    throw new LadingError(
      'USAGE',
      `cannot write an ImageDigestMirrorSet for ${JSON.stringify(destination)}: a cluster can only pull from a registry, not from ${ref.transport}:`,
    );
  }
  return ref.image;
}

/** Code-unit order, the same on every machine (localeCompare is not). */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
