/** The composefs test vectors in test/fixtures/composefs (see the README there). */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export const ASSETS = fileURLToPath(new URL('../fixtures/composefs/assets/', import.meta.url));
export const RS_SPECIAL_V1 = fileURLToPath(new URL('../fixtures/composefs/rs-special_v1.dump', import.meta.url));

/** Upstream parses these leniently (no CFS_PARSE_STRICT); every other plain dump strictly. */
export const LENIENT = new Set(['no-newline.dump', 'longlink.dump', 'honggfuzz-longlink-unterminated.dump']);

export interface Vector {
  name: string;
  bytes: Buffer;
  sha256: string;
  /** From `X.version`; undefined means mkcomposefs's defaults (0, raised to 1 for whiteouts). */
  version: 0 | 1 | undefined;
  strict: boolean;
}

export function readVectorBytes(name: string): Buffer {
  const raw = readFileSync(ASSETS + name);
  return name.endsWith('.gz') ? gunzipSync(raw) : raw;
}

export function goodVectors(): Vector[] {
  const names = readdirSync(ASSETS).filter((f) => /\.dump(\.gz)?$/.test(f) && !f.startsWith('should-fail-'));
  return names.sort().map((name) => {
    let version: 0 | 1 | undefined;
    try {
      version = Number(readFileSync(`${ASSETS}${name}.version`, 'utf8').trim()) as 0 | 1;
    } catch {
      version = undefined;
    }
    return {
      name,
      bytes: readVectorBytes(name),
      sha256: readFileSync(`${ASSETS}${name}.sha256`, 'utf8').trim(),
      version,
      strict: !LENIENT.has(name) && !name.endsWith('.gz'),
    };
  });
}

export function shouldFailVectors(): string[] {
  return readdirSync(ASSETS)
    .filter((f) => f.startsWith('should-fail-'))
    .sort();
}
