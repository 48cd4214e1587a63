/**
 * Naming for mirroring: what `--to`/`--from` name, the reference each source image gets in a registry
 * target, the ref name it gets in an OCI layout (and how to read the source back from one, to replay a
 * carried mirror), and which images a `--shard I/N` run takes. The rules sit in one place so that the
 * copy, the printed IDMS/mapping outputs and a later replay all agree on every name.
 */
import { createHash } from 'node:crypto';
import { isLadingError, LadingError } from '../errors.js';
import { formatReference, type ImageReference, parseImageReference, repositoryOf, withDefaultTag } from '../oci/reference.js';
import { parseTransportRef } from '../store/transport.js';

export type MirrorTarget =
  | { kind: 'registry'; domain: string; prefix: string /* path under the host, may be '' */ }
  | { kind: 'layout'; dir: string }
  | { kind: 'archive'; file: string };

const DOCKER_PREFIX = 'docker://';
const PROBE_HOST = 'p.io';
const TARGET_HINT = 'expected docker://HOST[/PREFIX], oci:DIR or oci-archive:FILE';

/** Parses --to / --from: docker://host[/prefix] (no tag/digest allowed), oci:DIR (no tag), oci-archive:FILE (no tag). */
export function parseMirrorTarget(input: string): MirrorTarget {
  const bad = (why: string): never => {
    throw new LadingError('USAGE', `invalid mirror target ${JSON.stringify(input)}: ${why}`, { target: input });
  };
  if (input.startsWith(DOCKER_PREFIX)) {
    const rest = input.slice(DOCKER_PREFIX.length).replace(/\/+$/, '');
    const slash = rest.indexOf('/');
    const host = slash === -1 ? rest : rest.slice(0, slash);
    const prefix = slash === -1 ? '' : rest.slice(slash + 1);
    if (host === '') bad('it needs a registry host, e.g. docker://mirror.example:5000/prefix');
    if (prefix.includes('@')) bad('a mirror target takes no digest: each image keeps its own');
    if (prefix.includes(':')) bad('a mirror target takes no tag: each image keeps its own');
    try {
      return { kind: 'registry', domain: parseHost(host), prefix: parsePrefix(prefix) };
    } catch (e) {
      if (isLadingError(e)) return bad(e.message);
      throw e;
    }
  }
  const colon = input.indexOf(':');
  const transport = colon === -1 ? '' : input.slice(0, colon);
  if (transport === 'oci' || transport === 'oci-archive') {
    const t = parseTransportRef(input);
    if (t.transport === 'docker') return bad(TARGET_HINT); // unreachable: the prefix decides the transport
    if (t.ref !== undefined) bad(`an ${transport}: target takes no tag or digest: each image is stored under its own name`);
    return transport === 'oci' ? { kind: 'layout', dir: t.path } : { kind: 'archive', file: t.path };
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(input) && !/^[^/]*:\d/.test(input)) {
    throw new LadingError('UNSUPPORTED_TRANSPORT', `unsupported mirror target ${JSON.stringify(input)}: ${TARGET_HINT}`, { target: input });
  }
  return bad(`${TARGET_HINT} (a registry needs the docker:// prefix)`);
}

/**
 * Where an image lands in a registry target: <prefix>/<path>[:tag], or with keepHost
 * <prefix>/<domain>/<path>. Digest-only sources keep their digest and get no tag; a tag+digest source keeps
 * both; a source with neither gets 'latest'. With keepHost the host becomes one path component: lowercased,
 * with a port's ':' (and an IPv6 address's brackets and colons) turned into '-' ('localhost:5000' ->
 * 'localhost-5000'), since a repository path allows no ':'. Throws INVALID_REFERENCE when the result is no
 * valid reference (a bad prefix, a name over 255 characters).
 */
export function registryDestination(
  source: ImageReference,
  target: { domain: string; prefix: string },
  options: { keepHost?: boolean } = {},
): ImageReference {
  const where = `docker://${target.domain}${target.prefix === '' ? '' : `/${target.prefix}`}`;
  const fail = (why: string): never => {
    throw new LadingError('INVALID_REFERENCE', `cannot mirror ${formatReference(source)} to ${where}: ${why}`, {
      source: formatReference(source),
      target: where,
    });
  };
  let domain = target.domain;
  try {
    domain = parseHost(target.domain);
    parsePrefix(target.prefix);
  } catch (e) {
    if (isLadingError(e)) fail(e.message);
    throw e;
  }
  const host = options.keepHost === true ? hostComponent(source.domain) : '';
  const path = [target.prefix, host, source.path].filter((c) => c !== '').join('/');
  const { tag, digest } = withDefaultTag(source);
  const name = `${domain}/${path}`;
  let parsed: ImageReference;
  try {
    parsed = parseImageReference(name);
  } catch (e) {
    if (isLadingError(e)) return fail(e.message);
    throw e;
  }
  if (parsed.domain !== domain) fail(`${JSON.stringify(target.domain)} does not read back as a registry host`);
  return { domain: parsed.domain, path: parsed.path, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

// What containers/image accepts as an OCI layout ref name: [A-Za-z0-9._-] components joined by ':' or '/'.
const LAYOUT_REF_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*(?:[:/][A-Za-z0-9._-]+)*$/;

/**
 * The ref name (org.opencontainers.image.ref.name) an image gets in a layout target: its full normalized
 * name and tag, e.g. 'quay.io/org/app:1.2', 'docker.io/library/alpine:3.19' — readable by
 * `skopeo copy oci:DIR:NAME`. Undefined for a digest-only source (it is stored untagged), and for a name
 * that no layout reader would accept (an IPv6 registry address); SOURCE_ANNOTATION still names those.
 */
export function layoutRefName(source: ImageReference): string | undefined {
  const { tag } = withDefaultTag(source);
  if (tag === undefined) return undefined;
  const name = `${repositoryOf(source)}:${tag}`;
  return LAYOUT_REF_NAME.test(name) ? name : undefined;
}

/** The annotation that records, on a layout's index.json entry, which source an entry came from (so a carried mirror can be replayed under the same names even for digest-only images). */
export const SOURCE_ANNOTATION = 'io.lading.mirror.source';
/** On a bound image's index.json entry: the source of the image that declares it (so a replay still shows it as bound). */
export const BOUND_OF_ANNOTATION = 'io.lading.mirror.bound-of';
const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/**
 * Inverse for replay: from an index.json entry's annotations back to the source reference (prefers
 * SOURCE_ANNOTATION, else parses the ref name); undefined if neither. A ref name counts only when it is a
 * full normalized name with a tag, as layoutRefName writes it: a plain tag ('latest', '1.0') names no
 * source. A SOURCE_ANNOTATION that is no valid reference throws INVALID_LAYOUT.
 */
export function sourceFromLayoutEntry(annotations: Record<string, string> | undefined): ImageReference | undefined {
  const recorded = annotations?.[SOURCE_ANNOTATION];
  if (recorded !== undefined) {
    try {
      return withDefaultTag(parseImageReference(recorded));
    } catch (e) {
      if (!isLadingError(e)) throw e;
      throw new LadingError('INVALID_LAYOUT', `invalid ${SOURCE_ANNOTATION} annotation in index.json: ${e.message}`, {
        annotation: recorded,
      });
    }
  }
  const refName = annotations?.[REF_NAME_ANNOTATION];
  if (refName === undefined) return undefined;
  let ref: ImageReference;
  try {
    ref = parseImageReference(refName);
  } catch (e) {
    if (isLadingError(e)) return undefined;
    throw e;
  }
  return ref.tag !== undefined && ref.digest === undefined && formatReference(ref) === refName ? ref : undefined;
}

/** Deterministic sharding: true when `source` belongs to shard i of n (1-based i, as in --shard 2/3): sha256 of formatReference(source) mod n. */
export function inShard(source: ImageReference, shard: { index: number; count: number }): boolean {
  const { index, count } = shard;
  if (!Number.isSafeInteger(count) || !Number.isSafeInteger(index) || count < 1 || index < 1 || index > count) {
    throw new LadingError('USAGE', `invalid shard ${index}/${count}: expected I/N with 1 <= I <= N`);
  }
  const hash = BigInt(`0x${createHash('sha256').update(formatReference(source)).digest('hex')}`);
  return Number(hash % BigInt(count)) + 1 === index;
}

/** Parses --shard "I/N" (1-based: "2/3" is the second of three); USAGE error for 0/3, 4/3, 1/0 and junk. */
export function parseShard(spec: string): { index: number; count: number } {
  const m = /^(\d{1,9})\/(\d{1,9})$/.exec(spec.trim());
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (m === null || count < 1 || index < 1 || index > count) {
    throw new LadingError('USAGE', `invalid shard ${JSON.stringify(spec)}: expected I/N with 1 <= I <= N, e.g. 2/3`, { shard: spec });
  }
  return { index, count };
}

/** Validates a registry host as the first component of a reference; returns it normalized (index.docker.io -> docker.io). */
function parseHost(host: string): string {
  let ref: ImageReference | undefined;
  try {
    ref = parseImageReference(`${host}/x/x`);
  } catch {
    // reported below, naming the host rather than the probe
  }
  if (ref === undefined || /[/@]/.test(host)) {
    throw new LadingError('INVALID_REFERENCE', `${JSON.stringify(host)} is not a valid registry host`);
  }
  if (ref.path !== 'x/x' || (ref.domain === 'docker.io' && host !== 'docker.io' && host !== 'index.docker.io')) {
    // docker would read it as the first path component of a Docker Hub name.
    throw new LadingError(
      'INVALID_REFERENCE',
      `${JSON.stringify(host)} is not a registry host: it needs a '.' or a port, or must be localhost (e.g. ${host}.example or ${host}:5000)`,
    );
  }
  return ref.domain;
}

/** Validates a prefix (repository path components under the host, or ''); returns it unchanged. */
function parsePrefix(prefix: string): string {
  if (prefix === '') return prefix;
  // Each component must read back as itself under a short probe host; the whole name (and its length)
  // is checked once the image's own path is added.
  const valid = prefix.split('/').every((c) => {
    try {
      const ref = parseImageReference(`${PROBE_HOST}/${c}`);
      return ref.path === c && ref.tag === undefined && ref.digest === undefined;
    } catch {
      return false;
    }
  });
  if (!valid) {
    throw new LadingError(
      'INVALID_REFERENCE',
      `invalid registry prefix ${JSON.stringify(prefix)}: use lowercase letters and digits, with '.', '_' or '-' between them, in components joined by '/'`,
    );
  }
  return prefix;
}

/** A registry host as one repository path component (':' and brackets are not allowed in one). */
function hostComponent(domain: string): string {
  return domain
    .toLowerCase()
    .replace(/[^a-z0-9.]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
}
