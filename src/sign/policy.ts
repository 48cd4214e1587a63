/**
 * containers-policy.json(5): which signatures an image needs, by scope. Parsing is strict, as in
 * containers/image: unknown members, a missing `default`, an empty requirement list, a requirement with
 * two key sources or none are all errors, so a typo never silently weakens a policy.
 *
 * Supported requirements: `insecureAcceptAnything`, `reject`, `signedBy` (keyType GPGKeys; keyPath,
 * keyPaths or keyData) and `sigstoreSigned` with public keys (keyPath, keyPaths, keyData, keyDatas);
 * Fulcio, PKI and Rekor settings are refused with a message (Lading verifies key-based signatures only).
 * Every `signedIdentity` rule is supported. Relative key paths are taken relative to the policy file.
 *
 * Scopes are looked up in `transports.docker` from the most specific to the least, as containers/image
 * does for docker references: `host/ns/repo:tag` (or `@digest`), `host/ns/repo`, `host/ns`, `host`,
 * `*.sub.host`, `*.host`, then the transport's `""` entry, then `default`. An image known only by its
 * digest (no repository) gets `default`.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LadingError, fsError } from '../errors.js';
import { type ImageReference, repositoryOf } from '../oci/reference.js';
import { DEFAULT_SIGNED_IDENTITY, type SignedIdentity, identityMatches } from './identity.js';
import { type Keyring, loadKeyringFile, parseKeyring } from './keyring.js';
import { type SignatureInput, checkSimpleSignatures } from './verify-image.js';

export type PolicyRequirement =
  | { type: 'insecureAcceptAnything' }
  | { type: 'reject' }
  | { type: 'signedBy'; keys: KeySource[]; signedIdentity: SignedIdentity }
  | { type: 'sigstoreSigned'; keys: KeySource[]; signedIdentity: SignedIdentity };

/** A key file (absolute path) or inline key bytes. */
export type KeySource = { path: string } | { data: Uint8Array };

export interface Policy {
  default: PolicyRequirement[];
  transports: Record<string, Record<string, PolicyRequirement[]>>;
}

export async function loadPolicyFile(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fsError(e, 'read policy', path);
  }
  return parsePolicy(text, { name: path, baseDir: dirname(resolve(path)) });
}

export function parsePolicy(text: string, where: { name: string; baseDir: string }): Policy {
  const fail = (why: string) => new LadingError('INVALID_POLICY', `policy ${where.name}: ${why}`, { policy: where.name });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw fail(`not valid JSON (${(e as Error).message})`);
  }
  const top = members(doc, 'the policy', ['default'], ['transports'], fail);
  const policy: Policy = { default: requirements(top.default, 'default', where.baseDir, fail), transports: {} };
  if (top.transports !== undefined) {
    const transports = members(top.transports, 'transports', [], undefined, fail);
    for (const [transport, scopesValue] of Object.entries(transports)) {
      const scopes = members(scopesValue, `transports.${transport}`, [], undefined, fail);
      const out: Record<string, PolicyRequirement[]> = {};
      for (const [scope, reqs] of Object.entries(scopes))
        out[scope] = requirements(reqs, `transports.${transport}["${scope}"]`, where.baseDir, fail);
      policy.transports[transport] = out;
    }
  }
  return policy;
}

/** The requirements that apply to `image` (a docker reference, or undefined for a bare digest), and the scope they came from. */
export function requirementsFor(policy: Policy, image: ImageReference | undefined): { scope: string; requirements: PolicyRequirement[] } {
  const docker = policy.transports.docker ?? {};
  if (image !== undefined) {
    for (const scope of dockerScopes(image)) {
      const reqs = docker[scope];
      if (reqs !== undefined) return { scope: `docker:${scope}`, requirements: reqs };
    }
    if (docker[''] !== undefined) return { scope: 'docker (transport default)', requirements: docker[''] };
  }
  return { scope: 'default', requirements: policy.default };
}

/** sigstoreSigned members Lading knows but refuses: keyless (Fulcio/Rekor) and PKI verification. */
const UNSUPPORTED_SIGSTORE_FIELDS = [
  'fulcio',
  'pki',
  'rekorPublicKeyPath',
  'rekorPublicKeyPaths',
  'rekorPublicKeyData',
  'rekorPublicKeyDatas',
] as const;

/** Scopes from the most specific to the least. */
export function dockerScopes(image: ImageReference): string[] {
  const repo = repositoryOf(image);
  const scopes: string[] = [];
  if (image.digest !== undefined) scopes.push(`${repo}@${image.digest}`);
  else if (image.tag !== undefined) scopes.push(`${repo}:${image.tag}`);
  const parts = repo.split('/');
  for (let i = parts.length; i >= 1; i--) scopes.push(parts.slice(0, i).join('/'));
  const host = image.domain.replace(/:\d+$/, '');
  const labels = host.split('.');
  for (let i = 1; i < labels.length; i++) scopes.push(`*.${labels.slice(i).join('.')}`);
  return scopes;
}

export interface PolicyContext {
  image: string;
  digest: string;
  intended: ImageReference | undefined;
  /** The image's simple signatures, loaded when a signedBy requirement needs them. */
  simpleSignatures: () => Promise<SignatureInput[]>;
  /** Verifies cosign signatures with one public key (PEM); resolves to the identities they name. */
  cosignIdentities?: (publicKeyPem: string) => Promise<string[]>;
  from?: string;
}

export interface RequirementOutcome {
  type: PolicyRequirement['type'];
  ok: boolean;
  detail: string;
}

export interface PolicyVerdict {
  scope: string;
  outcomes: RequirementOutcome[];
}

/** Applies the policy to one image; throws LadingError('SIGNATURE') naming the scope and the failed requirements unless all are met. */
export async function enforcePolicy(policy: Policy, ctx: PolicyContext): Promise<PolicyVerdict> {
  const { scope, requirements: reqs } = requirementsFor(policy, ctx.intended);
  const outcomes: RequirementOutcome[] = [];
  for (const req of reqs) outcomes.push(await evaluate(req, ctx));
  const failed = outcomes.filter((o) => !o.ok);
  if (failed.length > 0) {
    throw new LadingError(
      'SIGNATURE',
      `policy rejects ${ctx.image} (scope ${scope}): ${failed.map((f) => `${f.type}: ${f.detail}`).join('; ')}`,
      {
        image: ctx.image,
        digest: ctx.digest,
      },
    );
  }
  return { scope, outcomes };
}

async function evaluate(req: PolicyRequirement, ctx: PolicyContext): Promise<RequirementOutcome> {
  switch (req.type) {
    case 'insecureAcceptAnything':
      return { type: req.type, ok: true, detail: 'accepted without checking' };
    case 'reject':
      return { type: req.type, ok: false, detail: 'the policy rejects this image outright' };
    case 'signedBy': {
      const keyrings = await Promise.all(
        req.keys.map((k, i) => ('path' in k ? loadKeyringFile(k.path) : parseKeyring(k.data, `keyData #${i + 1}`))),
      );
      // containers/image merges every keyPath into one keyring: a signature by any of the keys counts.
      const merged: Keyring = { name: keyrings.map((k) => k.name).join('+'), keys: keyrings.flatMap((k) => k.keys) };
      const signatures = await ctx.simpleSignatures();
      const result = await checkSimpleSignatures({
        image: ctx.image,
        digest: ctx.digest,
        intended: ctx.intended,
        identity: req.signedIdentity,
        keyrings: [merged],
        keyringRule: 'any',
        signatures,
      });
      if (result.satisfied) {
        const who = result.accepted[0]?.signers[0];
        return { type: req.type, ok: true, detail: `signed by ${who?.userID ?? who?.fingerprint ?? 'a trusted key'}` };
      }
      if (signatures.length === 0)
        return { type: req.type, ok: false, detail: `no signatures found${ctx.from === undefined ? '' : ` in ${ctx.from}`}` };
      return { type: req.type, ok: false, detail: result.rejected.map((r) => `signature ${r.name}: ${r.reason}`).join('; ') };
    }
    case 'sigstoreSigned': {
      if (ctx.cosignIdentities === undefined)
        return { type: req.type, ok: false, detail: 'cosign signatures were not looked up (pass --registry)' };
      const reasons: string[] = [];
      for (const key of req.keys) {
        const pem = 'path' in key ? await readKeyText(key.path) : Buffer.from(key.data).toString('utf8');
        let identities: string[];
        try {
          identities = await ctx.cosignIdentities(pem);
        } catch (e) {
          if (!(e instanceof LadingError)) throw e;
          reasons.push(e.message);
          continue;
        }
        for (const identity of identities) {
          const verdict = identityMatches(req.signedIdentity, ctx.intended, identity);
          if (verdict.ok) return { type: req.type, ok: true, detail: `cosign signature for ${identity}` };
          reasons.push(verdict.reason);
        }
      }
      return { type: req.type, ok: false, detail: reasons.join('; ') || 'no cosign signature verifies' };
    }
  }
}

async function readKeyText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw fsError(e, 'read public key', path);
  }
}

type Fail = (why: string) => LadingError;

function requirements(value: unknown, where: string, baseDir: string, fail: Fail): PolicyRequirement[] {
  if (!Array.isArray(value)) throw fail(`${where} must be a list of requirements`);
  if (value.length === 0) throw fail(`${where} is an empty list (containers/image refuses it; use [{"type":"reject"}] or a requirement)`);
  return value.map((v, i) => requirement(v, `${where}[${i}]`, baseDir, fail));
}

function requirement(value: unknown, where: string, baseDir: string, fail: Fail): PolicyRequirement {
  const type = members(value, where, ['type'], undefined, fail, true).type;
  switch (type) {
    case 'insecureAcceptAnything':
    case 'reject':
      members(value, where, ['type'], [], fail);
      return { type };
    case 'signedBy': {
      const m = members(value, where, ['type', 'keyType'], ['keyPath', 'keyPaths', 'keyData', 'signedIdentity'], fail);
      if (m.keyType !== 'GPGKeys') throw fail(`${where}: keyType ${JSON.stringify(m.keyType)} is not supported (only "GPGKeys")`);
      return {
        type,
        keys: keySources(m, where, baseDir, fail, ['keyPath', 'keyPaths', 'keyData']),
        signedIdentity: signedIdentity(m.signedIdentity, where, fail),
      };
    }
    case 'sigstoreSigned': {
      const m = members(
        value,
        where,
        ['type'],
        ['keyPath', 'keyPaths', 'keyData', 'keyDatas', ...UNSUPPORTED_SIGSTORE_FIELDS, 'signedIdentity'],
        fail,
      );
      for (const unsupported of UNSUPPORTED_SIGSTORE_FIELDS) {
        if (m[unsupported] !== undefined)
          throw fail(`${where}: ${unsupported} is not supported (Lading verifies cosign signatures by public key only)`);
      }
      return {
        type,
        keys: keySources(m, where, baseDir, fail, ['keyPath', 'keyPaths', 'keyData', 'keyDatas']),
        signedIdentity: signedIdentity(m.signedIdentity, where, fail),
      };
    }
    default:
      throw fail(`${where}: unknown requirement type ${JSON.stringify(type)}`);
  }
}

function keySources(m: Record<string, unknown>, where: string, baseDir: string, fail: Fail, allowed: string[]): KeySource[] {
  const present = allowed.filter((k) => m[k] !== undefined);
  if (present.length !== 1)
    throw fail(`${where} needs exactly one of ${allowed.join(', ')}${present.length > 1 ? ` (has ${present.join(' and ')})` : ''}`);
  const which = present[0] as string;
  const v = m[which];
  const str = (x: unknown, what: string): string => {
    if (typeof x !== 'string' || x === '') throw fail(`${where}.${what} must be a non-empty string`);
    return x;
  };
  const list = (x: unknown): unknown[] => {
    if (!Array.isArray(x) || x.length === 0) throw fail(`${where}.${which} must be a non-empty list`);
    return x;
  };
  const data = (x: unknown, what: string): KeySource => {
    const s = str(x, what);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw fail(`${where}.${what} must be base64`);
    return { data: Buffer.from(s, 'base64') };
  };
  switch (which) {
    case 'keyPath':
      return [{ path: resolve(baseDir, str(v, which)) }];
    case 'keyPaths':
      return list(v).map((p, i) => ({ path: resolve(baseDir, str(p, `${which}[${i}]`)) }));
    case 'keyData':
      return [data(v, which)];
    default:
      return list(v).map((d, i) => data(d, `${which}[${i}]`));
  }
}

function signedIdentity(value: unknown, where: string, fail: Fail): SignedIdentity {
  if (value === undefined) return DEFAULT_SIGNED_IDENTITY;
  const w = `${where}.signedIdentity`;
  const type = members(value, w, ['type'], undefined, fail, true).type;
  const str = (m: Record<string, unknown>, k: string): string => {
    if (typeof m[k] !== 'string' || m[k] === '') throw fail(`${w}.${k} must be a non-empty string`);
    return m[k];
  };
  switch (type) {
    case 'matchExact':
    case 'matchRepoDigestOrExact':
    case 'matchRepository':
      members(value, w, ['type'], [], fail);
      return { type };
    case 'exactReference':
      return { type, dockerReference: str(members(value, w, ['type', 'dockerReference'], [], fail), 'dockerReference') };
    case 'exactRepository':
      return { type, dockerRepository: str(members(value, w, ['type', 'dockerRepository'], [], fail), 'dockerRepository') };
    case 'remapIdentity': {
      const m = members(value, w, ['type', 'prefix', 'signedPrefix'], [], fail);
      return { type, prefix: str(m, 'prefix'), signedPrefix: str(m, 'signedPrefix') };
    }
    default:
      throw fail(`${w}: unknown type ${JSON.stringify(type)}`);
  }
}

/**
 * An object with the `required` members and at most the `optional` ones (undefined: any others).
 * `loose` skips the unknown-member check (used to read `type` before the full check).
 */
function members(
  value: unknown,
  where: string,
  required: string[],
  optional: string[] | undefined,
  fail: Fail,
  loose = false,
): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail(`${where} must be an object`);
  const obj = value as Record<string, unknown>;
  for (const r of required) if (!Object.hasOwn(obj, r)) throw fail(`${where} has no "${r}"`);
  if (!loose && optional !== undefined) {
    for (const k of Object.keys(obj)) {
      if (!required.includes(k) && !optional.includes(k)) throw fail(`${where} has an unknown member ${JSON.stringify(k)}`);
    }
  }
  return obj;
}
