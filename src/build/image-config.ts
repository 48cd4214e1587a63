/**
 * The image config a build writes: the base's config (when there is one) with the spec's settings laid
 * over it, the layer diff_ids, and history, every time being the build's epoch.
 *
 * Merging follows what a Dockerfile does with the same settings, so images behave as people expect:
 * env and labels merge by key (a spec value replaces the base's in place, new ones follow in spec order),
 * exposed ports and volumes are added, user, workdir and stop signal replace, and setting an entrypoint
 * drops the base's cmd unless the spec gives one too (Docker's ENTRYPOINT rule).
 */
import type { Digest } from '../oci/digest.js';
import type { ImageConfig, Platform } from '../oci/types.js';
import type { BaseImage } from './base.js';
import type { ConfigSpec } from './spec.js';

type RunConfig = NonNullable<ImageConfig['config']>;

/** `1970-01-01T00:00:00Z`: RFC 3339 in UTC without fractional seconds, as Go tools write it. */
export function rfc3339(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The largest epoch whose year still has four digits (9999-12-31T23:59:59Z). */
export const MAX_EPOCH = 253402300799;

export function runConfig(spec: ConfigSpec, base: RunConfig | undefined): RunConfig {
  const out: RunConfig = { ...(base ?? {}) };
  if (spec.entrypoint !== undefined) {
    out.Entrypoint = spec.entrypoint;
    if (spec.cmd === undefined) delete out.Cmd;
  }
  if (spec.cmd !== undefined) out.Cmd = spec.cmd;
  if (spec.env !== undefined) {
    const env = [...(out.Env ?? [])];
    for (const [key, value] of spec.env) {
      const at = env.findIndex((e) => e === key || e.startsWith(`${key}=`));
      if (at >= 0) env[at] = `${key}=${value}`;
      else env.push(`${key}=${value}`);
    }
    out.Env = env;
  }
  if (spec.user !== undefined) out.User = spec.user;
  if (spec.workdir !== undefined) out.WorkingDir = spec.workdir;
  if (spec.labels !== undefined) out.Labels = { ...(out.Labels ?? {}), ...spec.labels };
  if (spec.exposedPorts !== undefined) {
    out.ExposedPorts = { ...(out.ExposedPorts ?? {}), ...Object.fromEntries(spec.exposedPorts.map((p) => [p, {}])) };
  }
  if (spec.volumes !== undefined) out.Volumes = { ...(out.Volumes ?? {}), ...Object.fromEntries(spec.volumes.map((v) => [v, {}])) };
  if (spec.stopSignal !== undefined) out.StopSignal = spec.stopSignal;
  return out;
}

export function imageConfig(args: {
  spec: ConfigSpec;
  platform: Platform;
  base: BaseImage | undefined;
  /** The diff_ids of the layers this build adds, in order. */
  added: Digest[];
  epoch: number;
}): ImageConfig {
  const created = rfc3339(args.epoch);
  const base = args.base?.config;
  const history = [...(base?.history ?? [])];
  args.added.forEach((_d, i) => history.push({ created, created_by: `lading build: layer ${i + 1}` }));
  const config: ImageConfig = {
    created,
    architecture: args.platform.architecture,
    os: args.platform.os,
    ...(args.platform.variant !== undefined && { variant: args.platform.variant }),
    ...(base?.['os.version'] !== undefined && { 'os.version': base['os.version'] }),
    ...(base?.['os.features'] !== undefined && { 'os.features': base['os.features'] }),
    config: runConfig(args.spec, base?.config),
    rootfs: { type: 'layers', diff_ids: [...(base?.rootfs.diff_ids ?? []), ...args.added] },
  };
  if (history.length > 0) config.history = history;
  return config;
}
