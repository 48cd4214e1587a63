/**
 * The OCI data model as plain TypeScript types (image-spec v1.1). Docker v2 schema 2 manifests and lists
 * share these shapes; their media types differ. Parsed values come from `parse.ts`, which validates them.
 */
import type { Digest } from './digest.js';

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  features?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: string;
  artifactType?: string;
  platform?: Platform;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  config?: {
    User?: string;
    ExposedPorts?: Record<string, object>;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Volumes?: Record<string, object>;
    WorkingDir?: string;
    Labels?: Record<string, string>;
    StopSignal?: string;
    ArgsEscaped?: boolean;
  };
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: { created?: string; author?: string; created_by?: string; comment?: string; empty_layer?: boolean }[];
}

/** A manifest or index read from a store, with its raw bytes (the bytes are what the digest names). */
export type Manifest =
  | { kind: 'manifest'; descriptor: Descriptor; bytes: Uint8Array; manifest: ImageManifest }
  | { kind: 'index'; descriptor: Descriptor; bytes: Uint8Array; index: ImageIndex };

/** Annotation keys Lading reads or writes. */
export const Annotation = {
  refName: 'org.opencontainers.image.ref.name',
  created: 'org.opencontainers.image.created',
  baseName: 'org.opencontainers.image.base.name',
  baseDigest: 'org.opencontainers.image.base.digest',
  title: 'org.opencontainers.image.title',
} as const;

/** Registries should accept manifests of at least 4 MiB; Lading refuses to read larger ones. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
