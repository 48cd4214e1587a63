/**
 * The OCI schema validators the build compiles ahead of time (dist/oci/schema-validators.js, what the
 * CLI uses) must answer exactly as the ones compiled at run time from the same schemas (what the
 * library does from its sources): same verdict, same first error.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createOciAjv, type SchemaKind } from '../../src/oci/schema.js';

const GENERATED = new URL('../../dist/oci/schema-validators.js', import.meta.url);
const D = `sha256:${'a'.repeat(64)}`;
const desc = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: D, size: 1 };
const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D, size: 2 };

const cases: [SchemaKind, unknown][] = [
  ['manifest', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [desc] }],
  ['manifest', { schemaVersion: 2, config, layers: [{ ...desc, digest: 'sha256:xyz' }] }],
  ['manifest', { schemaVersion: 3, config, layers: [] }],
  ['manifest', { schemaVersion: 2, layers: [] }],
  ['manifest', { schemaVersion: 2, config, layers: [{ ...desc, urls: ['not a uri'] }] }],
  ['manifest', { schemaVersion: 2, config, layers: [{ ...desc, urls: ['https://example.com/x'] }] }],
  ['manifest', { schemaVersion: 2, config, layers: [], annotations: { a: 1 } }],
  ['index', { schemaVersion: 2, manifests: [{ ...desc, platform: { architecture: 'amd64', os: 'linux' } }] }],
  ['index', { schemaVersion: 2, manifests: [{ ...desc, platform: { architecture: 'amd64' } }] }],
  ['index', { schemaVersion: 2, manifests: 'none' }],
  ['config', { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [D] }, created: '2024-02-30T00:00:00Z' }],
  ['config', { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [D] }, created: '2024-02-29T23:59:60.5+01:00' }],
  ['config', { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [D] }, created: 'yesterday' }],
  ['config', { architecture: 'amd64', os: 'linux', rootfs: { type: 'tar', diff_ids: [] } }],
  ['layout', { imageLayoutVersion: '1.0.0' }],
  ['layout', { imageLayoutVersion: 1 }],
  ['descriptor', { ...desc, size: -1 }],
  ['descriptor', { ...desc, size: 'big' }],
  ['descriptor', desc],
];

describe('precompiled OCI schema validators', () => {
  it('answer every case as the validators compiled at run time do', async () => {
    assert.ok(existsSync(GENERATED), `${fileURLToPath(GENERATED)} is missing: run npm run build`);
    const built = (await import(GENERATED.href)) as Record<SchemaKind, (v: unknown) => boolean & { errors?: unknown }>;
    const { ajv, keys } = createOciAjv();
    let refused = 0;
    for (const [kind, doc] of cases) {
      const runtime = ajv.getSchema(keys[kind])!;
      const want = runtime(doc);
      const validate = built[kind] as unknown as ((v: unknown) => boolean) & {
        errors?: { instancePath: string; keyword: string; message?: string }[] | null;
      };
      const got = validate(doc);
      assert.equal(got, want, `${kind} ${JSON.stringify(doc)}`);
      if (!want) {
        refused++;
        const first = (e: typeof validate.errors) => e?.[0] && [e[0].instancePath, e[0].keyword, e[0].message];
        assert.deepEqual(first(validate.errors), first(runtime.errors as typeof validate.errors), `${kind} ${JSON.stringify(doc)}`);
      }
    }
    assert.ok(refused >= 10 && refused < cases.length, `the cases include both verdicts (${refused} refused)`);
  });
});
