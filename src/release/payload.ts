/**
 * The files of a release payload, in OpenShift's formats, written as `oc adm release new` writes them and
 * read as oc and the cluster-version-operator read them:
 *
 * - `release-manifests/image-references`: an `image.openshift.io/v1` ImageStream named after the release
 *   version, one spec tag per component whose `from` is `{"kind":"DockerImage","name":"repo@sha256:…"}`;
 * - `release-manifests/release-metadata`: `{"kind":"cincinnati-metadata-v0","version","previous",…}`;
 * - `release-manifests/lading-tools` (Lading's own): which file of which component `release extract
 *   --command` extracts and pins. No `.json`/`.yaml` extension, so a CVO applying the manifests skips it.
 *
 * Reading is strict where OpenShift is: a reference not pinned by digest is refused (oc's mirror does),
 * the metadata kind and semver version are checked and must match the ImageStream's name (the CVO does).
 * image-references is read as YAML, a superset of JSON, because test payloads carry it as YAML.
 */
import { parse as parseYaml } from 'yaml';
import { LadingError } from '../errors.js';
import { goMapOrder, goMarshalIndent } from './go-json.js';
import { parsePinnedPullSpec } from './pull-spec.js';
import { parseSemver } from './semver.js';

export const MANIFESTS_DIR = 'release-manifests';
export const IMAGE_REFERENCES = `${MANIFESTS_DIR}/image-references`;
export const RELEASE_METADATA = `${MANIFESTS_DIR}/release-metadata`;
export const TOOLS_FILE = `${MANIFESTS_DIR}/lading-tools`;
export const METADATA_KIND = 'cincinnati-metadata-v0';
export const TOOLS_KIND = 'lading-tools-v0';
/** The metadata key the CVO reads for a multi-architecture release (its only accepted value is `multi`). */
export const ARCH_METADATA_KEY = 'release.openshift.io/architecture';

export interface ComponentTag {
  name: string;
  /** `repo@sha256:…`, or `oci:/dir@sha256:…` for a component in an OCI layout. */
  pullSpec: string;
  annotations?: Record<string, string>;
}

export interface ImageReferences {
  name: string;
  creationTimestamp?: string;
  annotations: Record<string, string>;
  tags: ComponentTag[];
}

export interface ReleaseMetadata {
  kind: typeof METADATA_KIND;
  version: string;
  previous: string[];
  next?: string[];
  metadata?: Record<string, unknown>;
}

export interface ToolSpec {
  /** The command name `--command` asks for. */
  name: string;
  component: string;
  /** Path of the file inside the component image, tree form (no leading slash). */
  path: string;
  /** `os/arch[/variant]` of the component image to take it from; absent: the release's platform. */
  platform?: string;
}

/** Go's `json.MarshalIndent` of the ImageStream oc builds (struct field order, maps sorted). */
export function imageReferencesBytes(refs: ImageReferences): Buffer {
  const metadata: Record<string, unknown> = { name: refs.name, creationTimestamp: refs.creationTimestamp ?? null };
  if (Object.keys(refs.annotations).length > 0) metadata.annotations = goMapOrder(refs.annotations);
  const tags = [...refs.tags]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((t) => ({
      name: t.name,
      ...(t.annotations !== undefined && Object.keys(t.annotations).length > 0 && { annotations: goMapOrder(t.annotations) }),
      from: { kind: 'DockerImage', name: t.pullSpec },
      importPolicy: {},
      referencePolicy: { type: '' },
    }));
  const doc = {
    kind: 'ImageStream',
    apiVersion: 'image.openshift.io/v1',
    metadata,
    spec: { lookupPolicy: { local: false }, ...(tags.length > 0 && { tags }) },
    status: { dockerImageRepository: '' },
  };
  return Buffer.from(goMarshalIndent(doc));
}

/** Go's `json.MarshalIndent` of oc's CincinnatiMetadata: `previous` always present, `next` and `metadata` only when not empty. */
export function releaseMetadataBytes(m: ReleaseMetadata): Buffer {
  const doc = {
    kind: m.kind,
    version: m.version,
    previous: [...m.previous].sort(),
    ...(m.next !== undefined && m.next.length > 0 && { next: [...m.next].sort() }),
    ...(m.metadata !== undefined && Object.keys(m.metadata).length > 0 && { metadata: goMapOrder(m.metadata) }),
  };
  return Buffer.from(goMarshalIndent(doc));
}

export function toolsBytes(tools: readonly ToolSpec[]): Buffer {
  return Buffer.from(`${goMarshalIndent({ kind: TOOLS_KIND, tools: tools.map((t) => ({ ...t })) })}\n`);
}

function invalid(where: string, why: string): LadingError {
  return new LadingError('INVALID_RELEASE', `${where}: ${why}`, { file: where });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function stringMap(v: unknown, where: string, field: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isRecord(v) || !Object.values(v).every((x) => typeof x === 'string')) throw invalid(where, `${field} must map strings to strings`);
  return v as Record<string, string>;
}

/**
 * Parses image-references. `pinned: true` (reading a payload) refuses a component not pinned by digest;
 * `pinned: false` (a `--from-references` input to compose from) accepts tags, which are resolved later.
 */
export function parseImageReferences(bytes: Uint8Array, where: string, options: { pinned: boolean }): ImageReferences {
  let doc: unknown;
  try {
    doc = parseYaml(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw invalid(where, `not valid JSON or YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (!isRecord(doc)) throw invalid(where, 'expected an ImageStream object');
  if (doc.kind !== undefined && doc.kind !== 'ImageStream') throw invalid(where, `kind is "${String(doc.kind)}", expected ImageStream`);
  if (doc.apiVersion !== undefined && doc.apiVersion !== 'image.openshift.io/v1') {
    throw invalid(where, `apiVersion is "${String(doc.apiVersion)}", expected image.openshift.io/v1`);
  }
  const metadata = isRecord(doc.metadata) ? doc.metadata : {};
  const name = metadata.name;
  if (typeof name !== 'string' || name === '') throw invalid(where, 'metadata.name (the release version) is missing');
  const spec = isRecord(doc.spec) ? doc.spec : {};
  const rawTags = spec.tags ?? [];
  if (!Array.isArray(rawTags)) throw invalid(where, 'spec.tags must be a list');
  const seen = new Set<string>();
  const tags: ComponentTag[] = [];
  for (const [i, t] of rawTags.entries()) {
    if (!isRecord(t) || typeof t.name !== 'string' || t.name === '') throw invalid(where, `spec.tags[${i}] has no name`);
    if (seen.has(t.name)) throw invalid(where, `the component ${t.name} is listed twice`);
    seen.add(t.name);
    const from = t.from;
    if (!isRecord(from) || from.kind !== 'DockerImage' || typeof from.name !== 'string' || from.name === '') {
      throw invalid(where, `component ${t.name} has no from: {kind: DockerImage, name: …} reference`);
    }
    if (options.pinned) {
      try {
        parsePinnedPullSpec(from.name);
      } catch (e) {
        throw invalid(
          where,
          `image-references should only contain pointers to images by digest: ${t.name} is ${from.name} (${(e as Error).message})`,
        );
      }
    }
    const annotations = stringMap(t.annotations, where, `spec.tags[${i}].annotations`);
    tags.push({ name: t.name, pullSpec: from.name, ...(Object.keys(annotations).length > 0 && { annotations }) });
  }
  const created = metadata.creationTimestamp;
  return {
    name,
    ...(typeof created === 'string' && { creationTimestamp: created }),
    annotations: stringMap(metadata.annotations, where, 'metadata.annotations'),
    tags,
  };
}

/** Parses release-metadata as the CVO does: the kind must be cincinnati-metadata-v0 and the version semver. */
export function parseReleaseMetadata(bytes: Uint8Array, where: string): ReleaseMetadata {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw invalid(where, `not valid JSON (${(e as Error).message})`);
  }
  if (!isRecord(doc)) throw invalid(where, 'expected a JSON object');
  if (doc.kind !== METADATA_KIND) throw invalid(where, `kind is ${JSON.stringify(doc.kind ?? null)}, expected "${METADATA_KIND}"`);
  if (typeof doc.version !== 'string' || doc.version === '') throw invalid(where, 'version is missing');
  if (parseSemver(doc.version) === undefined) throw invalid(where, `version "${doc.version}" is not a semantic version`);
  const list = (v: unknown, field: string): string[] => {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw invalid(where, `${field} must be a list of versions`);
    return v as string[];
  };
  const next = list(doc.next, 'next');
  if (doc.metadata !== undefined && doc.metadata !== null && !isRecord(doc.metadata)) throw invalid(where, 'metadata must be an object');
  return {
    kind: METADATA_KIND,
    version: doc.version,
    previous: list(doc.previous, 'previous'),
    ...(next.length > 0 && { next }),
    ...(isRecord(doc.metadata) && { metadata: doc.metadata }),
  };
}

/** The CVO's check: the ImageStream is named after the version release-metadata declares. */
export function checkNamesAgree(refs: ImageReferences, metadata: ReleaseMetadata, where: string): void {
  if (refs.name !== metadata.version) {
    throw new LadingError(
      'INVALID_RELEASE',
      `${where}: version from image-references "${refs.name}" differs from release-metadata "${metadata.version}"`,
      { imageReferences: refs.name, releaseMetadata: metadata.version },
    );
  }
}

export function parseTools(bytes: Uint8Array, where: string): ToolSpec[] {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw invalid(where, `not valid JSON (${(e as Error).message})`);
  }
  if (!isRecord(doc) || doc.kind !== TOOLS_KIND || !Array.isArray(doc.tools))
    throw invalid(where, `expected {"kind":"${TOOLS_KIND}","tools":[…]}`);
  return doc.tools.map((t, i) => {
    if (!isRecord(t) || typeof t.name !== 'string' || typeof t.component !== 'string' || typeof t.path !== 'string') {
      throw invalid(where, `tools[${i}] needs name, component and path`);
    }
    if (t.platform !== undefined && typeof t.platform !== 'string') throw invalid(where, `tools[${i}].platform must be os/arch`);
    return { name: t.name, component: t.component, path: t.path, ...(typeof t.platform === 'string' && { platform: t.platform }) };
  });
}
