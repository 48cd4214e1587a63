/**
 * Release signatures for disconnected clusters (OTA-666), as pieces the `release` command group uses:
 *
 *   lading release info REF --signature [--store URL …] [--keyring K …]            bare signature(s) on stdout
 *   lading release info REF --signature-config-map [--store …] [--keyring …] [-o yaml|json]
 *   lading release mirror REF --to TARGET [--store …] [--keyring …] [--release-image-signature-to-dir DIR]
 *                         [--apply-release-image-signature [--kubeconfig F] [--overwrite]] [--no-images]
 *
 * Signatures come from the stores named, else from the stores the release payload declares (its
 * verification ConfigMap in release-manifests/); `mirror` verifies them against the keyrings named, else
 * the payload's, and fails before copying or writing anything when they do not verify. A digest
 * reference with --store and --keyring contacts no registry. `--no-images` carries the signatures alone.
 *
 * Reading the payload's files (release-manifests/ of the release image's top layer holding them) lives
 * here because it needs the layer readers of src/fs, which src/sign may not import.
 */
import type { Command } from 'commander';
import { type MirrorSource, mirror } from '../copy/mirror.js';
import { parseMirrorTarget } from '../copy/mirror-names.js';
import { LadingError } from '../errors.js';
import { openLayerStream } from '../fs/layer-stream.js';
import { readTar } from '../fs/tar-reader.js';
import { parseManifest } from '../oci/parse.js';
import { formatReference, parseImageReference } from '../oci/reference.js';
import type { Descriptor } from '../oci/types.js';
import { configMapJson, configMapYaml, signatureConfigMap, writeSignatureConfigMap } from '../sign/configmap.js';
import { type ImageTarget, openImageTarget, parseImageTarget, targetDigest } from '../sign/image-target.js';
import { applyConfigMap, loadKubeconfig } from '../sign/kube-apply.js';
import { type Keyring, loadKeyringFile } from '../sign/keyring.js';
import { type ReleaseSignatureResult, releaseSignatures } from '../sign/release-signatures.js';
import { type VerificationConfig, verificationConfigFromManifests } from '../sign/verification-config.js';
import type { Store } from '../store/store.js';
import { streamToBytes } from '../store/stream-bytes.js';
import { boundImageFinder } from './mirror-command.js';
import { printJson } from './output.js';
import { type RegistryFlags, addRegistryFlags, registryClient } from './registry-flags.js';
import { collect } from './option-values.js';
import { storeTls } from './sign-commands.js';

export interface ReleaseSignatureFlags extends RegistryFlags {
  signature?: boolean;
  signatureConfigMap?: boolean;
  store: string[];
  keyring: string[];
  output?: string;
}

export interface ReleaseMirrorFlags extends ReleaseSignatureFlags {
  to: string;
  releaseImageSignatureToDir?: string;
  applyReleaseImageSignature?: boolean;
  kubeconfig?: string;
  overwrite?: boolean;
  images: boolean;
  /** Copy the bound images of bootable components too (default true). */
  boundImages?: boolean;
}

/** Adds --signature, --signature-config-map, --store and --keyring (and -o and the registry flags when missing) to `release info`. */
export function addReleaseInfoSignatureOptions(info: Command): Command {
  info
    .option('--signature', "write the release's signature(s) to stdout, verified first when --keyring is given")
    .option('--signature-config-map', 'write the ConfigMap carrying the signatures (oc adm release mirror format); -o yaml or json')
    .option(
      '--store <url>',
      'signature store (OpenShift layout; directory, file://, http(s)://); default: the stores the payload names',
      collect,
      [],
    )
    .option('--keyring <file>', 'verify the signatures with this keyring; repeat: every keyring must be satisfied', collect, []);
  if (!info.options.some((o) => o.long === '--output'))
    info.option('-o, --output <format>', 'yaml or json (--signature-config-map); json (--signature)');
  if (!info.options.some((o) => o.long === '--tls-verify')) addRegistryFlags(info);
  return info;
}

/**
 * Handles `release info REF --signature | --signature-config-map`. Returns false (having done nothing)
 * when neither flag is set, so the caller goes on with its usual output.
 */
export async function releaseInfoSignatures(ref: string, flags: ReleaseSignatureFlags): Promise<boolean> {
  if (!flags.signature && !flags.signatureConfigMap) return false;
  if (flags.signature && flags.signatureConfigMap)
    throw new LadingError('USAGE', '--signature and --signature-config-map exclude each other');
  const target = parseImageTarget(ref);
  const found = await gatherSignatures(target, flags, { requireVerification: false });
  const bytes = found.result.signatures.map((s) => s.bytes);
  if (!found.result.verified)
    process.stderr.write(`warning: ${bytes.length} signature(s) of ${found.result.digest} NOT verified: pass --keyring to verify them\n`);
  if (flags.signatureConfigMap) {
    const cm = signatureConfigMap(found.result.digest, bytes);
    process.stdout.write(flags.output === 'json' ? configMapJson(cm) : configMapYaml(cm));
    return true;
  }
  if (flags.output === 'json') {
    printJson({
      digest: found.result.digest,
      verified: found.result.verified,
      keyrings: found.result.keyrings,
      signatures: found.result.signatures.map((s) => ({
        location: s.location,
        identity: s.identity,
        signature: Buffer.from(s.bytes).toString('base64'),
      })),
    });
    return true;
  }
  if (bytes.length > 1) process.stderr.write(`note: ${bytes.length} signatures written back to back; -o json keeps them apart\n`);
  for (const b of bytes) process.stdout.write(b);
  return true;
}

/** Adds `mirror` to the `release` command group. */
export function registerReleaseMirror(release: Command): Command {
  const cmd = release
    .command('mirror')
    .description("mirror a release's images and carry its verified signatures: to a directory (ConfigMap file) or a cluster")
    .argument('<ref>', 'the release image: docker://HOST/REPO[:TAG|@DIGEST] (with --no-images also a bare sha256:<hex>)')
    .requiredOption('--to <target>', 'where the images go: docker://HOST[/PREFIX], oci:DIR or oci-archive:FILE')
    .option('--store <url>', 'signature store (OpenShift layout); default: the stores the payload names', collect, [])
    .option('--keyring <file>', "verify with this keyring (default: the payload's); repeat: every keyring must be satisfied", collect, [])
    .option('--release-image-signature-to-dir <dir>', 'write signature-sha256-<16 hex>.json (the signature ConfigMap) here')
    .option('--apply-release-image-signature', 'create the signature ConfigMap in the cluster of the kubeconfig')
    .option('--kubeconfig <file>', 'the cluster for --apply-release-image-signature (default: $KUBECONFIG, ~/.kube/config)')
    .option('--overwrite', 'with --apply-release-image-signature: replace an existing ConfigMap')
    .option('--no-images', 'carry the signatures only: copy no image')
    .option('--no-bound-images', 'leave the bound images of bootable components behind')
    .option('-o, --output <format>', 'text or json', 'text');
  return addRegistryFlags(cmd).action(async (ref: string, flags: ReleaseMirrorFlags) => {
    const { lines, ...report } = await releaseMirror(ref, flags);
    if (flags.output === 'json') printJson(report);
    else process.stdout.write(`${lines.join('\n')}\n`);
  });
}

export interface ReleaseMirrorReport {
  digest: string;
  keyrings: string[];
  signatures: string[];
  images: { copied: number; failed: number; errors: string[]; boundImages: number } | 'skipped';
  configMapFile?: string;
  applied?: 'created' | 'configured';
  lines: string[];
}

/** `release mirror`: verify the signatures, then copy the images, then write and apply the ConfigMap. */
export async function releaseMirror(ref: string, flags: ReleaseMirrorFlags): Promise<ReleaseMirrorReport> {
  if (flags.overwrite && !flags.applyReleaseImageSignature)
    throw new LadingError('USAGE', '--overwrite applies only with --apply-release-image-signature');
  const target = parseImageTarget(ref);
  if (flags.images && target.transport?.transport !== 'docker') {
    throw new LadingError(
      'USAGE',
      `${ref} is not a registry reference: release mirror copies from a registry (or pass --no-images to carry the signatures alone)`,
    );
  }
  const to = flags.images ? parseMirrorTarget(flags.to) : undefined;
  // Everything that can fail on input is checked before any signature is fetched or image copied.
  const kube = flags.applyReleaseImageSignature ? await loadKubeconfig(flags.kubeconfig) : undefined;
  const found = await gatherSignatures(target, flags, { requireVerification: true, needImageReferences: flags.images });
  const { result } = found;
  const lines = [`Verified ${result.signatures.length} signature(s) of ${result.digest} against keyrings ${result.keyrings.join(', ')}`];
  for (const r of result.rejected) lines.push(`  ignored ${r.location}: ${r.reason}`);

  let images: ReleaseMirrorReport['images'] = 'skipped';
  if (to !== undefined && target.transport?.transport === 'docker') {
    const release = { ...target.transport.image, digest: result.digest as never };
    const sources = [release, ...found.components.map((c) => parseImageReference(c))];
    const unique = [...new Map(sources.map((s) => [formatReference(s), s])).values()];
    const from: MirrorSource = { kind: 'set', images: unique.map((source) => ({ source, platforms: 'all' as const })) };
    const client = registryClient(flags, { src: target.transport.image.domain, ...(to.kind === 'registry' && { dest: to.domain }) });
    try {
      const boundImages = flags.boundImages === false ? undefined : await boundImageFinder();
      const mirrored = await mirror(from, to, client, boundImages === undefined ? {} : { boundImages });
      images = {
        copied: mirrored.images.length - mirrored.failed,
        failed: mirrored.failed,
        errors: mirrored.images.flatMap((i) => (i.error === undefined ? [] : [`${i.source}: ${i.error}`])),
        boundImages: mirrored.images.filter((i) => i.boundOf !== undefined && i.error === undefined).length,
      };
      if (mirrored.failed > 0)
        throw new LadingError('REGISTRY', `release mirror: ${mirrored.failed} image(s) failed: ${images.errors.slice(0, 3).join('; ')}`);
    } finally {
      await client.close();
    }
    const bound = images.boundImages > 0 ? ` (${images.boundImages} of them bound images of bootable components)` : '';
    lines.push(`Mirrored ${images.copied} image(s) to ${flags.to}${bound}`);
  }

  const report: ReleaseMirrorReport = {
    digest: result.digest,
    keyrings: result.keyrings,
    signatures: result.signatures.map((s) => s.location),
    images,
    lines,
  };
  const bytes = result.signatures.map((s) => s.bytes);
  if (flags.releaseImageSignatureToDir !== undefined) {
    report.configMapFile = await writeSignatureConfigMap(flags.releaseImageSignatureToDir, result.digest, bytes);
    lines.push(`Configmap signature file ${report.configMapFile} created`);
  }
  if (kube !== undefined) {
    const cm = signatureConfigMap(result.digest, bytes);
    report.applied = await applyConfigMap(kube, cm, { overwrite: flags.overwrite ?? false });
    lines.push(`configmap/${cm.metadata.name} ${report.applied} in cluster ${kube.context}`);
  }
  if (flags.releaseImageSignatureToDir === undefined && kube === undefined && images === 'skipped') {
    lines.push('note: signatures verified, nothing written: pass --release-image-signature-to-dir DIR or --apply-release-image-signature');
  }
  return report;
}

interface Gathered {
  result: ReleaseSignatureResult;
  /** Component images the payload's image-references names (when asked for). */
  components: string[];
}

/** The release digest, its stores and keyrings (named, or the payload's), and its signatures. */
async function gatherSignatures(
  target: ImageTarget,
  flags: ReleaseSignatureFlags,
  need: { requireVerification: boolean; needImageReferences?: boolean },
): Promise<Gathered> {
  const keyrings: Keyring[] = [];
  for (const k of flags.keyring) keyrings.push(await loadKeyringFile(k));
  const wantPayload = flags.store.length === 0 || (need.requireVerification && keyrings.length === 0) || need.needImageReferences === true;
  const host = target.transport?.transport === 'docker' ? target.transport.image.domain : undefined;
  const client = registryClient(flags, { src: host });
  let digest: string;
  let payload: ReleasePayload | undefined;
  try {
    if (wantPayload) {
      const { store, descriptor } = await openImageTarget(target, 'read', { registry: client });
      try {
        digest = descriptor.digest;
        payload = await readReleasePayload(store, descriptor);
      } finally {
        await store.close();
      }
    } else {
      digest = await targetDigest(target, { registry: client });
    }
  } finally {
    await client.close();
  }
  const stores = flags.store.length > 0 ? flags.store : (payload?.verification?.stores ?? []);
  if (stores.length === 0)
    throw new LadingError('USAGE', `no signature store for ${target.input}: the payload names none; pass --store URL`);
  const useKeyrings = keyrings.length > 0 ? keyrings : need.requireVerification ? (payload?.verification?.keyrings ?? []) : [];
  if (need.requireVerification && useKeyrings.length === 0) {
    throw new LadingError('USAGE', `no keyring to verify ${target.input} with: the payload names none; pass --keyring FILE`);
  }
  const result = await releaseSignatures({
    image: target.input,
    digest,
    stores,
    keyrings: useKeyrings,
    storeOptions: await storeTls(flags),
  });
  return { result, components: payload?.components ?? [] };
}

export interface ReleasePayload {
  /** The payload's verification ConfigMap, when it has one. */
  verification?: VerificationConfig;
  /** Images named by release-manifests/image-references. */
  components: string[];
}

/** Manifest files past this size are not read (a release's are a few KiB to a few hundred). */
const MAX_MANIFEST_FILE = 8 * 1024 * 1024;
const MANIFESTS_DIR = 'release-manifests/';

/**
 * Reads release-manifests/ from the release image: the layers are scanned from the top down and the
 * first layer holding that directory is the one read (release payloads add it in their last layer), so
 * the large base layers below it are not decompressed.
 */
export async function readReleasePayload(store: Store, desc: Descriptor): Promise<ReleasePayload> {
  const manifest = await imageManifest(store, desc);
  let files: { name: string; text: string }[] = [];
  for (const layer of [...manifest.layers].reverse()) {
    const found: { name: string; text: string }[] = [];
    await readTar(await openLayerStream(store, layer), async (header, content) => {
      if (header.type !== 'file' || !header.path.startsWith(MANIFESTS_DIR)) return;
      const name = header.path.slice(MANIFESTS_DIR.length);
      if (name.includes('/') || name.startsWith('.wh.') || header.size > MAX_MANIFEST_FILE) return;
      found.push({
        name,
        text: Buffer.from(await streamToBytes(content, MAX_MANIFEST_FILE, `${header.path} in ${store.name}`)).toString('utf8'),
      });
    });
    if (found.length > 0) {
      files = found;
      break;
    }
  }
  if (files.length === 0)
    throw new LadingError(
      'INVALID_MANIFEST',
      `${store.name}@${desc.digest} is not a release payload: it has no release-manifests/ directory`,
    );
  const verification = await verificationConfigFromManifests(files.filter((f) => /\.(ya?ml|json)$/.test(f.name)));
  const refs = files.find((f) => f.name === 'image-references');
  return { ...(verification !== undefined && { verification }), components: refs === undefined ? [] : imageReferences(refs.text) };
}

async function imageManifest(store: Store, desc: Descriptor) {
  const parsed = parseManifest(await store.fetchManifest(desc), desc, `release image ${desc.digest} in ${store.name}`);
  if (parsed.kind === 'manifest') return parsed.manifest;
  // A multi-arch release: every image carries the same release-manifests; read the first.
  const first = parsed.index.manifests[0];
  if (first === undefined) throw new LadingError('INVALID_MANIFEST', `release index ${desc.digest} in ${store.name} lists no images`);
  return imageManifest(store, first);
}

/** The `from.name` of every tag of the image-references ImageStream. */
function imageReferences(text: string): string[] {
  let doc: { spec?: { tags?: { from?: { name?: unknown } }[] } };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch (e) {
    throw new LadingError('INVALID_MANIFEST', `release-manifests/image-references is not JSON (${(e as Error).message})`);
  }
  return (doc.spec?.tags ?? []).flatMap((t) => (typeof t.from?.name === 'string' ? [t.from.name] : []));
}
