/**
 * The release-signature ConfigMap a cluster-version-operator reads from `openshift-config-managed`,
 * exactly as `oc adm release mirror` writes it (library-go `verify.GetSignaturesAsConfigmap`, serialized
 * by the Kubernetes legacy JSON codec): name `sha256-<hex>`, label
 * `release.openshift.io/verification-signatures: ""`, `metadata.creationTimestamp: null`, and one
 * `binaryData` entry per signature, `sha256-<hex>-1`, `-2`, … (base64 of the raw signature).
 *
 * The JSON is byte for byte the codec's: Go struct field order (kind, apiVersion, metadata{name,
 * namespace, creationTimestamp, labels}, binaryData), map keys sorted as Go sorts them, compact, one
 * trailing newline. The YAML is what `oc get -o yaml` prints for the same object (sigs.k8s.io/yaml: keys
 * sorted). The file is `signature-sha256-<first 16 hex>.json`, mode 0640, in a directory made 0750,
 * written by temp file and rename so that a reader never sees half of it.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { LadingError, fsError } from '../errors.js';
import { parseDigest } from '../oci/digest.js';

export const SIGNATURE_CONFIGMAP_NAMESPACE = 'openshift-config-managed';
export const SIGNATURE_CONFIGMAP_LABEL = 'release.openshift.io/verification-signatures';

export interface SignatureConfigMap {
  kind: 'ConfigMap';
  apiVersion: 'v1';
  metadata: { name: string; namespace: string; creationTimestamp: null; labels: Record<string, string> };
  binaryData: Record<string, string>;
}

/** The ConfigMap carrying `signatures` (raw bytes, in order) of release `digest`. */
export function signatureConfigMap(digest: string, signatures: readonly Uint8Array[]): SignatureConfigMap {
  const { algorithm, encoded } = parseDigest(digest);
  if (signatures.length === 0) throw new LadingError('SIGNATURE', `no signatures of ${digest} to put in a ConfigMap`);
  const name = `${algorithm}-${encoded}`;
  const entries = signatures.map((s, i) => [`${name}-${i + 1}`, Buffer.from(s).toString('base64')] as const);
  // Go's encoding/json writes map keys sorted by their bytes: "-1" < "-10" < "-2".
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    kind: 'ConfigMap',
    apiVersion: 'v1',
    metadata: { name, namespace: SIGNATURE_CONFIGMAP_NAMESPACE, creationTimestamp: null, labels: { [SIGNATURE_CONFIGMAP_LABEL]: '' } },
    binaryData: Object.fromEntries(entries),
  };
}

/** The bytes oc writes: compact JSON in Go struct order, with a trailing newline. */
export function configMapJson(cm: SignatureConfigMap): string {
  // Insertion order is the Go struct order; JSON.stringify keeps it. Values are base64 and label/name
  // strings, which JSON.stringify escapes exactly as Go does (no <, >, & can appear).
  const ordered = {
    kind: cm.kind,
    apiVersion: cm.apiVersion,
    metadata: {
      name: cm.metadata.name,
      namespace: cm.metadata.namespace,
      creationTimestamp: null,
      labels: cm.metadata.labels,
    },
    binaryData: cm.binaryData,
  };
  return `${JSON.stringify(ordered)}\n`;
}

/** YAML as `oc get configmap -o yaml` prints it: keys sorted, no line folding. */
export function configMapYaml(cm: SignatureConfigMap): string {
  const sorted = {
    apiVersion: cm.apiVersion,
    binaryData: cm.binaryData,
    kind: cm.kind,
    metadata: {
      creationTimestamp: null,
      labels: cm.metadata.labels,
      name: cm.metadata.name,
      namespace: cm.metadata.namespace,
    },
  };
  return stringify(sorted, { lineWidth: 0, nullStr: 'null' });
}

/** `signature-sha256-<first 16 hex>.json`, oc's file name. */
export function signatureConfigMapFileName(digest: string): string {
  const { algorithm, encoded } = parseDigest(digest);
  return `signature-${algorithm}-${encoded.slice(0, 16)}.json`;
}

/** Writes the ConfigMap file into `dir` (made 0750 when missing), mode 0640; returns its path. Replaces an existing file, as oc does. */
export async function writeSignatureConfigMap(dir: string, digest: string, signatures: readonly Uint8Array[]): Promise<string> {
  const body = configMapJson(signatureConfigMap(digest, signatures));
  const path = join(dir, signatureConfigMapFileName(digest));
  const tmp = join(dir, `.${signatureConfigMapFileName(digest)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o750 });
    await writeFile(tmp, body, { mode: 0o640, flag: 'wx' });
    await chmod(tmp, 0o640); // the umask must not loosen or tighten what oc writes
    await rename(tmp, path);
    return path;
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw fsError(e, 'write signature ConfigMap in', dir);
  }
}
