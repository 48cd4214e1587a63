/**
 * Docker image references ("alpine", "quay.io/x/y:tag@sha256:...") parsed and normalized the way the docker
 * CLI and containers/image do (github.com/distribution/reference: ParseNormalizedNamed, FamiliarString,
 * TagNameOnly). Hand-written on purpose: the grammar is small, it must match upstream exactly (which names
 * count as a registry host, when "library/" is added, what is an error), and no npm package mirrors
 * distribution/reference faithfully. Deliberate differences are noted where they occur.
 */
import { LadingError } from '../errors.js';
import { type Digest, parseDigest } from './digest.js';

export interface ImageReference {
  /** Registry host with optional port, normalized: 'docker.io' for Docker Hub ('index.docker.io' maps to it). */
  readonly domain: string;
  /** Repository path inside the registry, e.g. 'library/alpine'. */
  readonly path: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
const NAME_MAX = 255;

// A host name (components of letters, digits and inner hyphens, joined by '.') or a bracketed IPv6
// address, then an optional numeric port.
const HOST_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${HOST_COMPONENT}(?:\\.${HOST_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
// One path component: lowercase alphanumerics separated by '.', '_', '__' or a run of '-'.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
// A bare image ID; upstream refuses it as a name so that `docker pull <id>` does not mean docker.io/library/<id>.
const IMAGE_ID = /^[a-f0-9]{64}$/;

/** Parses and normalizes a reference ('alpine' -> docker.io/library/alpine, no tag added). */
export function parseImageReference(input: string): ImageReference {
  const fail = (reason: string): never => {
    throw new LadingError('INVALID_REFERENCE', `invalid reference ${quote(input)}: ${reason}`, { reference: input });
  };
  const badFormat = (hint?: string): never => fail(`invalid reference format${hint === undefined ? '' : ` (${hint})`}`);

  if (input === '') fail('repository name must have at least one component');
  if (/\s/.test(input)) badFormat('it contains whitespace');
  if (IMAGE_ID.test(input)) fail('cannot specify 64-byte hexadecimal strings (that is an image ID, not a repository name)');

  // Digest: everything after the first '@' (neither names nor tags may contain '@').
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    const encoded = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      digest = parseDigest(encoded).digest;
    } catch (e) {
      fail(e instanceof Error ? e.message : `invalid digest ${quote(encoded)}`);
    }
  }

  // Tag: after the last ':' unless a '/' follows it (then that ':' is a registry port).
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon !== -1 && !rest.includes('/', colon)) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      badFormat(
        tag === '' ? 'empty tag' : `tag ${quote(tag)} must be 1-128 of letters, digits, '_', '.', '-', not starting with '.' or '-'`,
      );
    }
  }
  if (rest === '') badFormat('missing repository name');

  const { domain, path } = splitDomain(rest);
  if (path !== path.toLowerCase()) fail('repository name must be lowercase');
  // Deliberate difference: upstream, given a would-be host that is no valid host name but is a valid path
  // ('a_b.c/x'), returns a reference with an empty domain; we refuse it rather than guess a registry.
  if (!DOMAIN.test(domain)) badFormat(`${quote(domain)} is not a valid registry host`);
  if (path === '') badFormat('missing repository path');
  if (!path.split('/').every((c) => PATH_COMPONENT.test(c))) badFormat();
  if (domain.length + 1 + path.length > NAME_MAX) fail(`repository name must not be more than ${NAME_MAX} characters`);

  return {
    domain,
    path,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  };
}

/** 'docker.io/library/alpine' */
export function repositoryOf(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** Full normalized string: 'docker.io/library/alpine:3.19@sha256:...' (tag then digest, each only if present). */
export function formatReference(ref: ImageReference): string {
  return repositoryOf(ref) + suffix(ref);
}

/**
 * The short docker-CLI form: 'alpine:3.19', 'user/app', 'quay.io/x/y@sha256:..'. Docker Hub loses its
 * domain, and official images their 'library/' (only when nothing nests below it, as upstream).
 * Deliberate difference: upstream also drops 'docker.io/' when the rest would then read as a registry
 * host ('docker.io/foo.bar/baz' -> 'foo.bar/baz', which names registry foo.bar); we keep it so the familiar
 * form always parses back to the same reference.
 */
export function familiarString(ref: ImageReference): string {
  let name = repositoryOf(ref);
  if (ref.domain === DEFAULT_DOMAIN) {
    const official = ref.path.startsWith(OFFICIAL_PREFIX) ? ref.path.slice(OFFICIAL_PREFIX.length) : undefined;
    const short = official !== undefined && !official.includes('/') ? official : ref.path;
    const back = splitDomain(short);
    if (back.domain === ref.domain && back.path === ref.path) name = short;
  }
  return name + suffix(ref);
}

/** Returns ref with tag 'latest' when it has neither tag nor digest (docker's TagNameOnly). */
export function withDefaultTag(ref: ImageReference): ImageReference {
  return ref.tag === undefined && ref.digest === undefined ? { ...ref, tag: 'latest' } : ref;
}

/** Splits off the registry host and applies Docker Hub's defaults ('index.docker.io', 'library/'). */
function splitDomain(name: string): { domain: string; path: string } {
  const slash = name.indexOf('/');
  let domain = DEFAULT_DOMAIN;
  let path = name;
  if (slash !== -1 && looksLikeDomain(name.slice(0, slash))) {
    domain = name.slice(0, slash);
    path = name.slice(slash + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && path !== '' && !path.includes('/')) path = OFFICIAL_PREFIX + path;
  return { domain, path };
}

/** Upstream's rule for "the first component is a registry": it has '.' or ':', is localhost, or has uppercase. */
function looksLikeDomain(component: string): boolean {
  return /[.:]/.test(component) || component === 'localhost' || component !== component.toLowerCase();
}

function suffix(ref: ImageReference): string {
  return (ref.tag === undefined ? '' : `:${ref.tag}`) + (ref.digest === undefined ? '' : `@${ref.digest}`);
}

/** Quotes (escaping control characters, so the message stays one line) and clips to ~80 characters. */
function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}
