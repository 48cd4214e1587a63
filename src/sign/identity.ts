/**
 * Whether the identity a signature names (`critical.identity.docker-reference`) is acceptable for the
 * image being verified: containers-policy.json(5)'s `signedIdentity` rules, plus `none`, the
 * cluster-version-operator's rule for release images (any non-empty identity, so that a mirrored
 * release still verifies under its original name). Both sides are normalized as containers/image does
 * (`busybox` is `docker.io/library/busybox`) before they are compared.
 */
import { isLadingError } from '../errors.js';
import { type ImageReference, parseImageReference, repositoryOf } from '../oci/reference.js';

export type SignedIdentity =
  | { type: 'matchExact' }
  | { type: 'matchRepoDigestOrExact' }
  | { type: 'matchRepository' }
  | { type: 'exactReference'; dockerReference: string }
  | { type: 'exactRepository'; dockerRepository: string }
  | { type: 'remapIdentity'; prefix: string; signedPrefix: string }
  | { type: 'none' };

/** containers/image's default when a policy (or Lading's CLI) names no rule. */
export const DEFAULT_SIGNED_IDENTITY: SignedIdentity = { type: 'matchRepoDigestOrExact' };

export type IdentityVerdict = { ok: true } | { ok: false; reason: string };

/**
 * Checks `signed` against `intended` (the reference the user asked for; undefined when only a digest is
 * known) under `rule`.
 */
export function identityMatches(rule: SignedIdentity, intended: ImageReference | undefined, signed: string): IdentityVerdict {
  if (rule.type === 'none') return { ok: true };
  const signedRef = tryParse(signed);
  if (signedRef === undefined) return no(`the signed identity ${JSON.stringify(signed)} is not a valid image reference`);

  switch (rule.type) {
    case 'exactReference': {
      const want = tryParse(rule.dockerReference);
      if (want === undefined || nameOnly(want))
        return no(`the policy's dockerReference ${JSON.stringify(rule.dockerReference)} is not a tag or digest reference`);
      return exact(want, signedRef);
    }
    case 'exactRepository': {
      const want = tryParse(rule.dockerRepository);
      if (want === undefined) return no(`the policy's dockerRepository ${JSON.stringify(rule.dockerRepository)} is not a valid repository`);
      return sameRepository(want, signedRef);
    }
    default:
      break;
  }

  if (intended === undefined) {
    return no(
      `the image is known only by its digest, so identity ${JSON.stringify(signed)} cannot be checked: name the image or pass --identity`,
    );
  }
  switch (rule.type) {
    case 'matchExact':
      return exact(intended, signedRef);
    case 'matchRepository':
      return sameRepository(intended, signedRef);
    case 'matchRepoDigestOrExact':
      return repoDigestOrExact(intended, signedRef);
    case 'remapIdentity': {
      const remapped = remap(intended, rule.prefix, rule.signedPrefix);
      if (remapped === 'invalid')
        return no(`remapping ${show(intended)} with signedPrefix ${JSON.stringify(rule.signedPrefix)} gives no valid reference`);
      return repoDigestOrExact(remapped ?? intended, signedRef);
    }
  }
}

/** A digest reference needs only the same repository; a tag reference must match exactly. */
function repoDigestOrExact(intended: ImageReference, signed: ImageReference): IdentityVerdict {
  if (intended.digest !== undefined) return sameRepository(intended, signed);
  if (intended.tag !== undefined) return exact(intended, signed);
  return no(`${show(intended)} has neither a tag nor a digest`);
}

function exact(intended: ImageReference, signed: ImageReference): IdentityVerdict {
  if (nameOnly(intended)) return no(`${show(intended)} has neither a tag nor a digest`);
  if (nameOnly(signed)) return no(`the signature names repository ${show(signed)} only, and an exact reference is required`);
  return show(intended) === show(signed) ? { ok: true } : no(`the signature is for ${show(signed)}, not ${show(intended)}`);
}

function sameRepository(intended: ImageReference, signed: ImageReference): IdentityVerdict {
  return repositoryOf(intended) === repositoryOf(signed)
    ? { ok: true }
    : no(`the signature is for repository ${repositoryOf(signed)}, not ${repositoryOf(intended)}`);
}

/**
 * remapIdentity: when `intended` lies under `prefix` (a host, a namespace or a repository), the same
 * reference under `signedPrefix` is what the signature must name. Undefined when the prefix does not
 * apply. Unlike containers/image, `example.com` does not cover `example.com:5000/…` (upstream documents
 * that match as unintended).
 */
function remap(intended: ImageReference, prefix: string, signedPrefix: string): ImageReference | undefined | 'invalid' {
  const full = show(intended);
  if (!full.startsWith(prefix)) return undefined;
  const next = full.charAt(prefix.length);
  const boundary = next === '' || next === '/' || next === '@' || (next === ':' && prefix.includes('/'));
  if (!boundary) return undefined;
  return tryParse(signedPrefix + full.slice(prefix.length)) ?? 'invalid';
}

function nameOnly(r: ImageReference): boolean {
  return r.tag === undefined && r.digest === undefined;
}

/** The normalized string form: `docker.io/library/busybox:latest`, `quay.io/x/y@sha256:…`. */
function show(r: ImageReference): string {
  // containers/image references hold a tag or a digest, not both; with both, the digest decides.
  if (r.digest !== undefined) return `${repositoryOf(r)}@${r.digest}`;
  return r.tag === undefined ? repositoryOf(r) : `${repositoryOf(r)}:${r.tag}`;
}

function tryParse(s: string): ImageReference | undefined {
  try {
    return parseImageReference(s);
  } catch (e) {
    if (isLadingError(e)) return undefined;
    throw e;
  }
}

function no(reason: string): IdentityVerdict {
  return { ok: false, reason };
}
