/**
 * Semantic versions (semver.org 2.0.0) as OpenShift's release tools take them: `--name` and every
 * `--previous` must parse (oc uses blang/semver's strict Parse), and the cluster-version-operator refuses
 * a release-metadata version that does not. Hand-written: a regular expression and a comparison, smaller
 * than any dependency, and the strictness (no `v` prefix, no leading zeros) must match upstream's.
 */
import { LadingError } from '../errors.js';

const NUMERIC = '0|[1-9]\\d*';
const PRE_ID = `(?:${NUMERIC}|\\d*[a-zA-Z-][0-9a-zA-Z-]*)`;
const SEMVER = new RegExp(
  `^(${NUMERIC})\\.(${NUMERIC})\\.(${NUMERIC})(?:-(${PRE_ID}(?:\\.${PRE_ID})*))?(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$`,
);

export interface SemVer {
  major: number;
  minor: number;
  patch: number;
  pre: string[];
  build: string[];
}

export function parseSemver(input: string): SemVer | undefined {
  const m = SEMVER.exec(input);
  if (!m) return undefined;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (![major, minor, patch].every(Number.isSafeInteger)) return undefined;
  return { major, minor, patch, pre: m[4] === undefined ? [] : m[4].split('.'), build: m[5] === undefined ? [] : m[5].split('.') };
}

/** Parses or throws USAGE naming `what` (e.g. "--name"). */
export function requireSemver(input: string, what: string): SemVer {
  const v = parseSemver(input);
  if (v === undefined) {
    throw new LadingError(
      'USAGE',
      `${what} "${input}" is not a semantic version: expected MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], e.g. 4.15.0`,
    );
  }
  return v;
}

/** semver precedence (build metadata ignored); -1, 0, 1. */
export function compareSemver(a: SemVer, b: SemVer): number {
  for (const k of ['major', 'minor', 'patch'] as const) if (a[k] !== b[k]) return a[k] < b[k] ? -1 : 1;
  if (a.pre.length === 0 || b.pre.length === 0) return a.pre.length === b.pre.length ? 0 : a.pre.length === 0 ? 1 : -1;
  for (let i = 0; i < Math.max(a.pre.length, b.pre.length); i++) {
    const x = a.pre[i];
    const y = b.pre[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    const xn = /^\d+$/.test(x);
    const yn = /^\d+$/.test(y);
    if (xn && yn) return Number(x) < Number(y) ? -1 : 1;
    if (xn !== yn) return xn ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

/** Sorts version strings by semver precedence; strings that do not parse go last, in string order. */
export function sortVersions(versions: readonly string[]): string[] {
  return [...versions].sort((a, b) => {
    const x = parseSemver(a);
    const y = parseSemver(b);
    if (x && y) return compareSemver(x, y) || (a < b ? -1 : a > b ? 1 : 0);
    if (x || y) return x ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  });
}
