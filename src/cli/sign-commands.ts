/**
 * `lading sign` and `lading verify`: simple signatures (OpenPGP; written to a file, a lookaside
 * directory or an OpenShift signature store) and cosign key signatures (in the image's registry or
 * layout), checked against keyrings, a cosign public key, or a containers-policy.json.
 */
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { LadingError, fsError } from '../errors.js';
import { formatReference, type ImageReference, parseImageReference, repositoryOf } from '../oci/reference.js';
import { cosignSign, cosignVerify, loadCosignPrivateKey, loadCosignPublicKey } from '../sign/cosign/index.js';
import { DEFAULT_SIGNED_IDENTITY, type SignedIdentity, identityMatches } from '../sign/identity.js';
import { type ImageTarget, openImageTarget, parseImageTarget, targetDigest } from '../sign/image-target.js';
import { type Keyring, loadKeyringFile } from '../sign/keyring.js';
import { createSimpleSignature, loadSigningKeyFile } from '../sign/openpgp-sign.js';
import { enforcePolicy, loadPolicyFile } from '../sign/policy.js';
import { type StoreReadOptions, readSignatureFile, readSignatures, storeTlsOptions, writeSignature } from '../sign/signature-store.js';
import { type SignatureInput, type SimpleVerifyResult, verifySimpleSignatures } from '../sign/verify-image.js';
import { cosignPassword } from './keygen-command.js';
import { collect } from './option-values.js';
import { type OutputFormat, printJson } from './output.js';
import { type RegistryFlags, addRegistryFlags, registryClient } from './registry-flags.js';

interface SignFlags extends RegistryFlags {
  key?: string;
  passphraseFile?: string;
  cosignKey?: string;
  identity?: string;
  signTo?: string;
  lookaside?: string;
  store?: string;
  registry?: boolean;
  referrer?: boolean;
  output: OutputFormat;
}

interface VerifyFlags extends RegistryFlags {
  keyring: string[];
  cosignPub?: string;
  policy?: string;
  signature: string[];
  lookaside: string[];
  store: string[];
  registry?: boolean;
  identity?: string;
  identityCheck?: string;
  output: OutputFormat;
}

export function registerSignCommands(program: Command): void {
  addRegistryFlags(
    program
      .command('sign')
      .description(
        'sign an image: a simple signature (OpenPGP) to a file or signature store, or a cosign signature in its registry or layout',
      )
      .argument('<ref>', 'the image: docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG|@DIGEST], or a bare sha256:<hex> with --identity')
      .option('--key <file>', 'OpenPGP secret key (armored or binary, as gpg --export-secret-keys writes)')
      .option('--passphrase-file <file>', "the key's passphrase (default: $LADING_PASSPHRASE)")
      .option('--cosign-key <file>', 'cosign private key (password from $COSIGN_PASSWORD or a prompt)')
      .option('--identity <ref>', 'the reference to sign for (default: REF itself, or its repository for cosign)')
      .option('--sign-to <file>', 'write the simple signature to FILE (- for stdout)')
      .option('--lookaside <dir>', 'add it to a containers lookaside directory (<dir>/<repo>@sha256=<hex>/signature-N)')
      .option('--store <dir>', 'add it to an OpenShift signature store (<dir>/sha256=<hex>/signature-N)')
      .option('--registry', "cosign: push the signature to the image's sha256-<hex>.sig tag (the default for --cosign-key)")
      .option('--referrer', 'cosign: also push the signature as an OCI 1.1 referrer')
      .option('-o, --output <format>', 'text or json', 'text'),
  ).action(async (ref: string, flags: SignFlags) => {
    if ((flags.key === undefined) === (flags.cosignKey === undefined))
      throw new LadingError('USAGE', 'give exactly one of --key KEY.asc and --cosign-key P.key');
    const target = parseImageTarget(ref);
    const result = flags.cosignKey !== undefined ? await signCosign(target, flags) : await signSimple(target, flags);
    if (flags.output === 'json') printJson(result);
    else process.stderr.write(`Signed ${result.digest} as ${result.identity}: ${result.written}\n`);
  });

  addRegistryFlags(
    program
      .command('verify')
      .description(
        "verify an image's signatures: simple signatures against keyrings, cosign signatures against a public key, or a policy.json",
      )
      .argument('<ref>', 'the image: docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG|@DIGEST], or a bare sha256:<hex>')
      .option('--keyring <file>', 'OpenPGP public keys (armored or binary); repeat: every keyring must vouch for a signature', collect, [])
      .option('--cosign-pub <file>', 'cosign public key (PEM)')
      .option('--policy <policy.json>', 'containers-policy.json(5) requirements instead of --keyring/--cosign-pub')
      .option('--signature <file>', 'a simple signature file; repeat for several', collect, [])
      .option('--lookaside <url>', 'a containers lookaside store (directory, file://, http(s)://)', collect, [])
      .option('--store <url>', 'an OpenShift signature store (directory, file://, http(s)://)', collect, [])
      .option('--registry', "cosign signatures from the image's registry or layout (the default for --cosign-pub)")
      .option('--identity <ref>', 'the reference signatures must name (default: REF)')
      .option('--identity-check <rule>', 'repo-digest-or-exact (default), exact, repository, or none (as the cluster-version-operator)')
      .option('-o, --output <format>', 'text or json', 'text'),
  ).action(async (ref: string, flags: VerifyFlags) => {
    const { lines, ...report } = await verifyCommand(parseImageTarget(ref), flags);
    if (flags.output === 'json') printJson(report);
    else process.stdout.write(`${lines.join('\n')}\n`);
  });
}

interface SignResult {
  digest: string;
  identity: string;
  kind: 'simple' | 'cosign';
  written: string;
}

async function signSimple(target: ImageTarget, flags: SignFlags): Promise<SignResult> {
  const destinations = [flags.signTo, flags.lookaside, flags.store].filter((d) => d !== undefined);
  if (flags.registry || flags.referrer) {
    throw new LadingError(
      'USAGE',
      'simple signatures are not stored in registries: use --sign-to, --lookaside or --store (or --cosign-key for registry signatures)',
    );
  }
  if (destinations.length !== 1) throw new LadingError('USAGE', 'give exactly one of --sign-to FILE, --lookaside DIR and --store DIR');
  const identityRef = signingIdentity(target, flags.identity, false);
  const passphrase = flags.passphraseFile !== undefined ? await readPassphrase(flags.passphraseFile) : process.env.LADING_PASSPHRASE;
  const key = await loadSigningKeyFile(flags.key as string, passphrase);
  const digest = await withClient(flags, target, (client) => targetDigest(target, { registry: client }));
  const identity = formatReference(identityRef);
  const bytes = await createSimpleSignature({ digest, identity, key });
  let written: string;
  if (flags.signTo !== undefined) written = await writeSignatureFile(flags.signTo, bytes);
  else if (flags.lookaside !== undefined) {
    written = (await writeSignature({ layout: 'lookaside', base: flags.lookaside }, { repository: identityRef.path, digest }, bytes))
      .location;
  } else written = (await writeSignature({ layout: 'openshift', base: flags.store as string }, { digest }, bytes)).location;
  return { digest, identity, kind: 'simple', written };
}

async function signCosign(target: ImageTarget, flags: SignFlags): Promise<SignResult> {
  if (flags.signTo !== undefined || flags.lookaside !== undefined || flags.store !== undefined) {
    throw new LadingError(
      'USAGE',
      "cosign signatures go to the image's registry or layout (--registry); --sign-to, --lookaside and --store are for --key",
    );
  }
  const identityRef = signingIdentity(target, flags.identity, true);
  const identity = flags.identity !== undefined ? flags.identity : repositoryOf(identityRef);
  const pem = await readText(flags.cosignKey as string, 'read cosign key');
  const key = await loadCosignPrivateKey(pem, await cosignPassword({ confirm: false }));
  return withClient(flags, target, async (client) => {
    const { store, descriptor } = await openImageTarget(target, 'write', { registry: client });
    try {
      const r = await cosignSign({ store, image: descriptor, identity, key, referrer: flags.referrer ?? false });
      await store.close();
      return {
        digest: descriptor.digest,
        identity,
        kind: 'cosign' as const,
        written: `${store.name}:${r.tag}${r.appended ? '' : ' (already signed)'}`,
      };
    } catch (e) {
      await store.abort();
      throw e;
    }
  });
}

/** The reference to sign for: --identity, else REF's registry reference. */
function signingIdentity(target: ImageTarget, identity: string | undefined, repositoryOnly: boolean): ImageReference {
  if (identity !== undefined) return parseImageReference(identity);
  if (target.docker === undefined) {
    throw new LadingError(
      'USAGE',
      `${target.input} names no registry reference: pass --identity HOST/REPO${repositoryOnly ? '' : ':TAG'} to say what the signature is for`,
    );
  }
  return target.docker;
}

interface VerifyReport {
  image: string;
  digest: string;
  identityCheck: string;
  verified: true;
  signatures?: SimpleVerifyResult['accepted'];
  ignored?: SimpleVerifyResult['rejected'];
  cosign?: { identity: string; source: string }[];
  policy?: { scope: string; outcomes: { type: string; ok: boolean; detail: string }[] };
  lines: string[];
}

async function verifyCommand(target: ImageTarget, flags: VerifyFlags): Promise<VerifyReport> {
  const modes = [flags.keyring.length > 0, flags.cosignPub !== undefined, flags.policy !== undefined].filter(Boolean).length;
  if (modes !== 1)
    throw new LadingError('USAGE', 'give exactly one of --keyring K.asc (repeatable), --cosign-pub P.pub and --policy policy.json');
  const intended = flags.identity !== undefined ? parseImageReference(flags.identity) : target.docker;
  const rule = identityRule(flags.identityCheck, target, intended, flags.cosignPub !== undefined);
  const storeOptions = await storeTls(flags);
  const simpleSources = flags.signature.length + flags.lookaside.length + flags.store.length;
  const digest = await withClient(flags, target, (client) => targetDigest(target, { registry: client }));
  const image = target.input;
  const base = { image, digest, identityCheck: ruleName(rule), verified: true as const };

  if (flags.cosignPub !== undefined) {
    if (simpleSources > 0)
      throw new LadingError(
        'USAGE',
        '--cosign-pub verifies cosign signatures in the registry or layout; --signature, --lookaside and --store hold simple signatures',
      );
    const publicKey = loadCosignPublicKey(await readText(flags.cosignPub, 'read cosign public key'));
    const found = await cosignIdentities(target, flags, publicKey);
    const accepted = found.filter((f) => identityMatches(rule, intended, f.identity).ok);
    if (accepted.length === 0) {
      throw new LadingError(
        'SIGNATURE',
        `cannot verify ${describe(image, digest)}: the cosign signatures name ${found.map((f) => f.identity).join(', ')}, which ${ruleName(rule)} does not accept for ${intended === undefined ? 'this digest' : formatReference(intended)}`,
      );
    }
    const lines = [
      `Verified ${describe(image, digest)}: ${accepted.length} cosign signature(s)`,
      ...accepted.map((a) => `  ${a.source}: signed for ${a.identity}`),
    ];
    return { ...base, cosign: accepted.map((a) => ({ identity: a.identity, source: a.source })), lines };
  }

  const loadSignatures = () => collectSignatures(flags, target, intended, digest, storeOptions);
  const from = describeSources(flags);

  if (flags.policy !== undefined) {
    const policy = await loadPolicyFile(flags.policy);
    const verdict = await enforcePolicy(policy, {
      image,
      digest,
      intended,
      from,
      simpleSignatures: loadSignatures,
      cosignIdentities: async (pem) => (await cosignIdentities(target, flags, loadCosignPublicKey(pem))).map((c) => c.identity),
    });
    const lines = [
      `Verified ${describe(image, digest)} by policy ${flags.policy}, scope ${verdict.scope}`,
      ...verdict.outcomes.map((o) => `  ${o.type}: ${o.detail}`),
    ];
    return { ...base, identityCheck: 'policy', policy: verdict, lines };
  }

  if (flags.registry)
    throw new LadingError('USAGE', '--registry holds cosign signatures: verify them with --cosign-pub or a policy with sigstoreSigned');
  if (simpleSources === 0) throw new LadingError('USAGE', 'say where the signatures are: --signature FILE, --lookaside URL or --store URL');
  const keyrings: Keyring[] = [];
  for (const k of flags.keyring) keyrings.push(await loadKeyringFile(k));
  const result = await verifySimpleSignatures({
    image,
    digest,
    intended,
    identity: rule,
    keyrings,
    keyringRule: 'all',
    signatures: await loadSignatures(),
    from,
  });
  const lines = [`Verified ${describe(image, digest)}: ${result.accepted.length} signature(s) accepted, identity check ${ruleName(rule)}`];
  for (const a of result.accepted) {
    for (const s of a.signers) {
      lines.push(
        `  ${a.name}: signed for ${a.payload.identity} by ${s.userID ?? s.fingerprint} (${s.fingerprint}) on ${s.created.toISOString()} [keyring ${s.keyring}]`,
      );
    }
  }
  for (const r of result.rejected) lines.push(`  ignored ${r.name}: ${r.reason}`);
  return { ...base, signatures: result.accepted, ignored: result.rejected, lines };
}

function identityRule(
  flag: string | undefined,
  target: ImageTarget,
  intended: ImageReference | undefined,
  cosign: boolean,
): SignedIdentity {
  switch (flag) {
    case undefined:
      // A bare digest has no repository to compare with: like the cluster-version-operator, check nothing.
      if (intended === undefined && target.transport === undefined) return { type: 'none' };
      // Cosign signatures name a repository, never a tag.
      return cosign ? { type: 'matchRepository' } : DEFAULT_SIGNED_IDENTITY;
    case 'repo-digest-or-exact':
      return DEFAULT_SIGNED_IDENTITY;
    case 'exact':
      return { type: 'matchExact' };
    case 'repository':
      return { type: 'matchRepository' };
    case 'none':
      return { type: 'none' };
    default:
      throw new LadingError('USAGE', `--identity-check takes repo-digest-or-exact, exact, repository or none, not ${JSON.stringify(flag)}`);
  }
}

function ruleName(rule: SignedIdentity): string {
  return (
    { matchExact: 'exact', matchRepoDigestOrExact: 'repo-digest-or-exact', matchRepository: 'repository', none: 'none' }[
      rule.type as string
    ] ?? rule.type
  );
}

async function cosignIdentities(target: ImageTarget, flags: VerifyFlags, publicKey: ReturnType<typeof loadCosignPublicKey>) {
  return withClient(flags, target, async (client) => {
    const { store, descriptor } = await openImageTarget(target, 'read', { registry: client });
    try {
      return await cosignVerify({ store, image: descriptor, publicKey });
    } finally {
      await store.close();
    }
  });
}

/** Reads the simple signatures from every source named, in the order given. */
async function collectSignatures(
  flags: VerifyFlags,
  target: ImageTarget,
  intended: ImageReference | undefined,
  digest: string,
  storeOptions: StoreReadOptions,
): Promise<SignatureInput[]> {
  const out: SignatureInput[] = [];
  for (const file of flags.signature) out.push({ name: file, bytes: await readSignatureFile(file) });
  for (const base of flags.lookaside) {
    if (intended === undefined) {
      throw new LadingError(
        'USAGE',
        `--lookaside needs the image's repository: name it as HOST/REPO@DIGEST or pass --identity (${target.input} has none)`,
      );
    }
    for (const s of await readSignatures({ layout: 'lookaside', base }, { repository: intended.path, digest }, storeOptions))
      out.push({ name: s.location, bytes: s.bytes });
  }
  for (const base of flags.store) {
    for (const s of await readSignatures({ layout: 'openshift', base }, { digest }, storeOptions))
      out.push({ name: s.location, bytes: s.bytes });
  }
  return out;
}

/** `IMAGE (DIGEST)`, or the digest alone when that is what was given. */
function describe(image: string, digest: string): string {
  return image.includes(digest) ? image : `${image} (${digest})`;
}

function describeSources(flags: VerifyFlags): string {
  return [...flags.signature, ...flags.lookaside, ...flags.store].join(', ');
}

/** Runs `fn` with a registry client built from the flags, closed afterwards. */
export async function withClient<T>(
  flags: RegistryFlags,
  target: ImageTarget,
  fn: (client: ReturnType<typeof registryClient>) => Promise<T>,
): Promise<T> {
  const host = target.transport?.transport === 'docker' ? target.transport.image.domain : undefined;
  const client = registryClient(flags, { src: host, dest: host });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** TLS settings for http(s) signature stores, from the registry flags. */
export function storeTls(flags: RegistryFlags): Promise<StoreReadOptions> {
  return storeTlsOptions({ tlsVerify: flags.tlsVerify !== 'false', ...(flags.certDir !== undefined && { certDir: flags.certDir }) });
}

async function readPassphrase(path: string): Promise<string> {
  // One trailing newline is the file's, not the passphrase's (as gpg --passphrase-file reads it).
  return (await readText(path, 'read passphrase file')).replace(/\r?\n$/, '');
}

async function readText(path: string, action: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw fsError(e, action, path);
  }
}

/** Writes a signature file by temp file and rename (or to stdout for "-"). */
async function writeSignatureFile(path: string, bytes: Uint8Array): Promise<string> {
  if (path === '-') {
    process.stdout.write(bytes);
    return '(stdout)';
  }
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, bytes, { mode: 0o644 });
    await rename(tmp, path);
    return path;
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw fsError(e, 'write signature', path);
  }
}
