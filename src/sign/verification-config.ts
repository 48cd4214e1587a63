/**
 * The verification ConfigMap a release payload declares in `release-manifests/` (library-go
 * `pkg/verify` NewFromManifests): the first ConfigMap annotated `release.openshift.io/verification-config-map`
 * names the keyrings (`verifier-public-key-*`, every one of which must be satisfied) and the signature
 * stores (`store-*`, http, https or file URLs) of the release. Later annotated ConfigMaps are ignored, as
 * the cluster-version-operator ignores them; other data keys are reported and ignored. A ConfigMap with
 * no data, no keyring or no store is an error, as upstream.
 */
import { parseAllDocuments } from 'yaml';
import { LadingError } from '../errors.js';
import { type Keyring, parseKeyring } from './keyring.js';

export const VERIFICATION_CONFIGMAP_ANNOTATION = 'release.openshift.io/verification-config-map';

export interface VerificationConfig {
  /** `namespace/name` of the ConfigMap and the file it came from. */
  source: string;
  keyrings: Keyring[];
  stores: string[];
  /** Data keys that are neither keyrings nor stores. */
  ignored: string[];
}

/**
 * Finds the verification ConfigMap among manifest files (taken in name order, as the payload's
 * directory is read) and loads it. Undefined when no file holds one.
 */
export async function verificationConfigFromManifests(
  files: readonly { name: string; text: string }[],
): Promise<VerificationConfig | undefined> {
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const file of sorted) {
    let docs: unknown[];
    try {
      docs = parseAllDocuments(file.text).map((d) => d.toJS() as unknown);
    } catch {
      continue; // a manifest that is not YAML is not this one (upstream skips what it cannot decode)
    }
    for (const doc of docs) {
      const cm = doc as {
        kind?: unknown;
        metadata?: { name?: unknown; namespace?: unknown; annotations?: Record<string, unknown> };
        data?: unknown;
      };
      if (cm?.kind !== 'ConfigMap') continue;
      const annotations = cm.metadata?.annotations;
      if (annotations === null || typeof annotations !== 'object' || !Object.hasOwn(annotations, VERIFICATION_CONFIGMAP_ANNOTATION))
        continue;
      return loadVerificationConfigMap(cm, `${String(cm.metadata?.namespace ?? '')}/${String(cm.metadata?.name ?? '')} in ${file.name}`);
    }
  }
  return undefined;
}

/** Loads the keyrings and stores of one verification ConfigMap object. */
export async function loadVerificationConfigMap(cm: { data?: unknown }, source: string): Promise<VerificationConfig> {
  const fail = (why: string) => new LadingError('SIGNATURE', `release verification ConfigMap ${source}: ${why}`, { source });
  const data = cm.data;
  if (data === undefined || data === null || typeof data !== 'object' || Object.keys(data).length === 0) throw fail('has no data');
  const keyrings: Keyring[] = [];
  const stores: string[] = [];
  const ignored: string[] = [];
  for (const [key, value] of Object.entries(data as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (key.startsWith('verifier-public-key-')) {
      if (typeof value !== 'string') throw fail(`${key} is not a string`);
      keyrings.push(await parseKeyring(Buffer.from(value, 'utf8'), key));
    } else if (key.startsWith('store-')) {
      if (typeof value !== 'string' || !/^(https?|file):\/\//.test(value)) throw fail(`${key} must be an http://, https:// or file:// URL`);
      stores.push(value);
    } else {
      ignored.push(key);
    }
  }
  if (keyrings.length === 0) throw fail('names no verifier-public-key-* keyring');
  if (stores.length === 0) throw fail('names no store-* signature store');
  return { source, keyrings, stores, ignored };
}
