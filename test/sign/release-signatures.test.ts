/**
 * Release signatures (OTA-666) end to end, with a release payload in a real docker-registry whose
 * release-manifests/ declare a verification ConfigMap (a gpg key, a file:// store) and a component image:
 * - the payload's verification ConfigMap is read as library-go reads it (the fixtures' valid and
 *   failing ConfigMaps);
 * - `release info --signature` / `--signature-config-map` (through a stand-in `release` group made of
 *   the exported pieces), from the payload's store or --store, with no registry needed for a digest;
 * - `release mirror`: signatures verified first, images copied, the ConfigMap written and applied to a
 *   stand-in cluster; `--no-images` copies nothing; a signature that does not verify, or a store answering
 *   500, fails before anything is copied or written.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { writeImage } from '../../src/build/image-writer.js';
import { readReleasePayload } from '../../src/cli/release-signature-commands.js';
import { configMapJson, signatureConfigMap } from '../../src/sign/configmap.js';
import { loadSigningKeyFile, createSimpleSignature } from '../../src/sign/openpgp-sign.js';
import { releaseSignatures } from '../../src/sign/release-signatures.js';
import { writeSignature } from '../../src/sign/signature-store.js';
import { verificationConfigFromManifests } from '../../src/sign/verification-config.js';
import { RegistryClient } from '../../src/store/registry/client.js';
import { RegistryStore } from '../../src/store/registry/registry-store.js';
import { makeCa, makeServerCert } from '../helpers/pki.js';
import { type RegistryInstance, startRegistry } from '../helpers/registry.js';
import { type RunResult, run } from '../helpers/run.js';
import { snapshot } from '../helpers/tree.js';
import { tempDir } from '../helpers/tmp.js';
import { type Gpg, newGpg } from './gpg.js';
import { kubeconfig, startKubeStandIn } from './kube-standin.js';

const FIX = fileURLToPath(new URL('../fixtures/sign/', import.meta.url));
const DRIVER = fileURLToPath(new URL('./release-cli.ts', import.meta.url));

function release(...args: string[]): Promise<RunResult> {
  return run(process.execPath, ['--import', 'tsx', DRIVER, 'release', ...args]);
}

describe('the payload verification ConfigMap (library-go rules)', () => {
  const files = async (...names: string[]) =>
    Promise.all(names.map(async (name) => ({ name, text: await readFile(`${FIX}manifests/${name}`, 'utf8') })));
  it('loads the valid one: a keyring and a store', async () => {
    const c = await verificationConfigFromManifests(await files('loads-valid.yaml'));
    assert.deepEqual(
      c?.keyrings.map((k) => k.name),
      ['verifier-public-key-redhat'],
    );
    assert.equal(c?.keyrings[0]?.keys[0]?.getFingerprint().toUpperCase(), '567E347AD0044ADE55BA8A5F199E2F91FD431D51');
    assert.deepEqual(c?.stores, ['file://../verify/testdata/signatures']);
  });
  it('uses only the first annotated ConfigMap', async () => {
    const c = await verificationConfigFromManifests(await files('only-first-used.yaml'));
    assert.equal(c?.keyrings.length, 1);
    assert.match(c?.source ?? '', /release-verification in only-first-used.yaml/);
  });
  for (const [name, why] of [
    ['requires-data.yaml', /has no data/],
    ['requires-stores.yaml', /has no data/],
    ['requires-verifiers.yaml', /has no data/],
  ] as const) {
    it(`refuses ${name}`, async () => assert.rejects(verificationConfigFromManifests(await files(name)), why));
  }
  it('refuses data without stores or without keyrings', async () => {
    const cm = (data: string) => [
      {
        name: 'x.yaml',
        text: `kind: ConfigMap\nmetadata:\n  name: v\n  annotations:\n    release.openshift.io/verification-config-map: ""\ndata:\n${data}`,
      },
    ];
    await assert.rejects(verificationConfigFromManifests(cm('  store-a: https://example.com/s\n')), /names no verifier-public-key/);
    await assert.rejects(
      verificationConfigFromManifests(
        cm(`  verifier-public-key-a: |\n${(await readFile(`${FIX}keyrings/simple.txt`, 'utf8')).replace(/^/gm, '    ')}\n`),
      ),
      /names no store-\* signature store/,
    );
    await assert.rejects(verificationConfigFromManifests(cm('  store-a: ftp://x\n')), /must be an http:\/\/, https:\/\/ or file:\/\/ URL/);
    assert.equal(await verificationConfigFromManifests([{ name: 'a.yaml', text: 'kind: ConfigMap\nmetadata: {name: x}\n' }]), undefined);
  });
});

describe('release signatures with a payload in a registry', () => {
  let registry: RegistryInstance;
  let work: string;
  let gpg: Gpg | undefined;
  let env: {
    keyring: string;
    stranger: string;
    store: string;
    releaseRef: string;
    digest: string;
    componentRef: string;
    signature: Buffer;
  };

  before(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'lading-release-sig-'));
    const gpgHome = join(work, 'gnupg');
    await mkdir(gpgHome, { mode: 0o700 });
    gpg = await newGpg(gpgHome);
    const fpr = await gpg.genKey('Release Signing <release@example.com>');
    const strangerFpr = await gpg.genKey('Stranger <stranger@example.com>');
    const keyring = await gpg.exportPublic(fpr);
    const keyText = await readFile(keyring, 'utf8');
    const store = join(work, 'store');
    const client = new RegistryClient({ tlsVerify: false });
    const push = (repo: string) => new RegistryStore(client, registry.host, repo, 'push');
    const component = await writeImage(push('ocp/component'), { layers: [{ files: { 'bin/tool': 'tool\n' } }] }, ['c1']);
    const componentRef = `${registry.host}/ocp/component@${component.digest}`;
    const cm = [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: release-verification',
      '  namespace: openshift-config-managed',
      '  annotations:',
      '    release.openshift.io/verification-config-map: ""',
      'data:',
      '  verifier-public-key-test: |',
      ...keyText
        .trimEnd()
        .split('\n')
        .map((l) => `    ${l}`),
      `  store-local: file://${store}`,
      '',
    ].join('\n');
    const imageReferences = JSON.stringify({
      kind: 'ImageStream',
      apiVersion: 'image.openshift.io/v1',
      spec: { tags: [{ name: 'component', from: { kind: 'DockerImage', name: componentRef } }] },
    });
    const rel = await writeImage(
      push('ocp/release'),
      {
        layers: [
          { files: { 'usr/share/base.txt': 'base layer\n'.repeat(1000) } },
          {
            files: {
              'release-manifests/0000_90_cluster-update-keys_configmap.yaml': cm,
              'release-manifests/image-references': imageReferences,
              'release-manifests/release-metadata': '{}',
            },
          },
        ],
      },
      ['4.0'],
    );
    await client.close();
    const key = await loadSigningKeyFile(await gpg.exportSecret(fpr));
    const signature = Buffer.from(
      await createSimpleSignature({ digest: rel.digest, identity: `quay.io/openshift-release-dev/ocp-release:4.0`, key }),
    );
    await writeSignature({ layout: 'openshift', base: store }, { digest: rel.digest }, signature);
    env = {
      keyring,
      stranger: await gpg.exportPublic(strangerFpr),
      store,
      releaseRef: `docker://${registry.host}/ocp/release:4.0`,
      digest: rel.digest,
      componentRef,
      signature,
    };
  });
  after(async () => {
    await gpg?.stopAgent();
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('reads the payload: verification ConfigMap and image-references', async () => {
    const client = new RegistryClient({ tlsVerify: false });
    const store = new RegistryStore(client, registry.host, 'ocp/release', 'pull');
    const p = await readReleasePayload(store, await store.resolve('4.0'));
    await client.close();
    assert.deepEqual(p.verification?.stores, [`file://${env.store}`]);
    assert.equal(p.verification?.keyrings[0]?.name, 'verifier-public-key-test');
    assert.deepEqual(p.components, [env.componentRef]);
  });

  it('library: fetches and verifies from the store; the wrong keyring fails naming it', async () => {
    const { loadKeyringFile } = await import('../../src/sign/keyring.js');
    const r = await releaseSignatures({
      image: 'rel',
      digest: env.digest,
      stores: [env.store],
      keyrings: [await loadKeyringFile(env.keyring)],
    });
    assert.equal(r.verified, true);
    assert.equal(r.signatures[0]?.identity, 'quay.io/openshift-release-dev/ocp-release:4.0');
    await assert.rejects(
      releaseSignatures({
        image: 'rel',
        digest: env.digest,
        stores: [env.store],
        keyrings: [await loadKeyringFile(env.stranger, 'stranger')],
      }),
      /cannot verify rel .*signature .*signature-1: it was signed by key .*not in keyring stranger/,
    );
    const unverified = await releaseSignatures({ image: 'rel', digest: env.digest, stores: [env.store] });
    assert.equal(unverified.verified, false);
    await assert.rejects(
      releaseSignatures({ image: 'rel', digest: `sha256:${'0'.repeat(64)}`, stores: [env.store] }),
      /no usable signature of rel .*no signatures found/,
    );
  });

  it("release info --signature: bare bytes, from the payload's store or --store; a digest needs no registry", async () => {
    // no --store: the store the payload's verification ConfigMap names
    assert.deepEqual(
      await runBinary(['info', env.releaseRef, '--signature', '--tls-verify=false', '--keyring', env.keyring]),
      env.signature,
    );
    const raw = await runBinary([
      'info',
      `docker://127.0.0.1:9/ocp/release@${env.digest}`,
      '--signature',
      '--store',
      env.store,
      '--keyring',
      env.keyring,
    ]);
    assert.deepEqual(raw, env.signature);
    const unverified = await release('info', env.digest, '--signature', '--store', env.store, '-o', 'json');
    assert.equal(unverified.code, 0, unverified.stderr);
    assert.match(unverified.stderr, /NOT verified: pass --keyring/);
    assert.equal(
      (JSON.parse(unverified.stdout) as { signatures: { signature: string }[] }).signatures[0]?.signature,
      env.signature.toString('base64'),
    );
    const wrong = await release('info', env.digest, '--signature', '--store', env.store, '--keyring', env.stranger);
    assert.equal(wrong.code, 1);
    assert.equal(wrong.stdout, '');
    assert.match(wrong.stderr, /cannot verify sha256:.*: signature .*signature-1: it was signed by key/);
  });

  it('release info --signature-config-map: YAML by default, JSON with -o json', async () => {
    const json = await release('info', env.digest, '--signature-config-map', '--store', env.store, '--keyring', env.keyring, '-o', 'json');
    assert.equal(json.code, 0, json.stderr);
    assert.equal(json.stdout, configMapJson(signatureConfigMap(env.digest, [env.signature])));
    const yaml = await release('info', env.digest, '--signature-config-map', '--store', env.store, '--keyring', env.keyring);
    assert.match(yaml.stdout, /^apiVersion: v1\nbinaryData:\n/);
    const none = await release('info', env.digest);
    assert.equal(none.stdout, '(release info without signature flags)\n');
  });

  it('release mirror: verifies with the payload keyring, copies the release and its components, writes the ConfigMap', async () => {
    const dir = await tempDir();
    const r = await release(
      'mirror',
      env.releaseRef,
      '--to',
      `oci:${join(dir, 'mirror')}`,
      '--release-image-signature-to-dir',
      join(dir, 'sigs'),
      '--tls-verify=false',
      '-o',
      'json',
    );
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { images: { copied: number }; configMapFile: string; keyrings: string[] };
    assert.equal(report.images.copied, 2);
    assert.deepEqual(report.keyrings, ['verifier-public-key-test']);
    assert.equal(await readFile(report.configMapFile, 'utf8'), configMapJson(signatureConfigMap(env.digest, [env.signature])));
    const index = JSON.parse(await readFile(join(dir, 'mirror', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.ok(index.manifests.some((m) => m.digest === env.digest));
  });

  it('release mirror --no-images: signatures only, from a digest, nothing copied', async () => {
    const dir = await tempDir();
    const r = await release(
      'mirror',
      `docker://127.0.0.1:9/ocp/release@${env.digest}`,
      '--no-images',
      '--to',
      `oci:${join(dir, 'never')}`,
      '--store',
      env.store,
      '--keyring',
      env.keyring,
      '--release-image-signature-to-dir',
      join(dir, 'sigs'),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await readdir(dir), ['sigs']);
    assert.deepEqual(await readdir(join(dir, 'sigs')), [`signature-sha256-${env.digest.slice(7, 23)}.json`]);
  });

  it('a run that cannot verify fails before copying or writing anything', async () => {
    const dir = await tempDir();
    const before = await snapshot(dir);
    const r = await release(
      'mirror',
      env.releaseRef,
      '--to',
      `oci:${join(dir, 'mirror')}`,
      '--keyring',
      env.stranger,
      '--release-image-signature-to-dir',
      join(dir, 'sigs'),
      '--tls-verify=false',
    );
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /cannot verify docker:\/\/.*\/ocp\/release:4.0 \(sha256:[0-9a-f]{64}\): signature .*signature-1: it was signed by key [0-9A-F]{16}, which is not in keyring/,
    );
    assert.equal(await snapshot(dir), before);
    // a tampered copy of the signature in another store: refused the same way
    const bad = join(dir, 'bad-store');
    const flipped = Buffer.from(env.signature);
    flipped[flipped.length - 3] = (flipped[flipped.length - 3] ?? 0) ^ 1;
    await writeSignature({ layout: 'openshift', base: bad }, { digest: env.digest }, flipped);
    const t = await release(
      'mirror',
      env.releaseRef,
      '--to',
      `oci:${join(dir, 'mirror')}`,
      '--store',
      bad,
      '--keyring',
      env.keyring,
      '--release-image-signature-to-dir',
      join(dir, 'sigs'),
      '--tls-verify=false',
    );
    assert.equal(t.code, 1);
    assert.match(t.stderr, /does not match the signed data/);
    assert.deepEqual(await readdir(dir), ['bad-store']);
  });

  it('a store answering 500 fails before anything is written', async () => {
    const dir = await tempDir();
    const server = createServer((_req, res) => res.writeHead(500).end('down'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    after(() => new Promise<void>((r) => server.close(() => r())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sigs`;
    const r = await release(
      'mirror',
      env.digest,
      '--no-images',
      '--to',
      'oci:x',
      '--store',
      url,
      '--keyring',
      env.keyring,
      '--release-image-signature-to-dir',
      join(dir, 'sigs'),
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /signature store http:.* answered 500 for .*\/sha256=[0-9a-f]{64}\/signature-1/);
    assert.deepEqual(await readdir(dir), []);
  });

  it('--apply-release-image-signature: created, refused without --overwrite, configured with it', async () => {
    const dir = await tempDir();
    const server = await makeServerCert(dir, await makeCa(dir));
    const api = await startKubeStandIn({ tls: { cert: await readFile(server.cert, 'utf8'), key: await readFile(server.key, 'utf8') } });
    const config = join(dir, 'kubeconfig');
    await writeFile(config, kubeconfig(api.url, api.token, { ca: join(dir, 'ca.crt') }));
    const apply = (...extra: string[]) =>
      release(
        'mirror',
        env.digest,
        '--no-images',
        '--to',
        'oci:x',
        '--store',
        env.store,
        '--keyring',
        env.keyring,
        '--apply-release-image-signature',
        '--kubeconfig',
        config,
        ...extra,
      );
    const first = await apply();
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /configmap\/sha256-[0-9a-f]{64} created in cluster standin/);
    const again = await apply();
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists in cluster standin: pass --overwrite/);
    const over = await apply('--overwrite');
    assert.equal(over.code, 0, over.stderr);
    assert.match(over.stdout, /configured/);
    assert.deepEqual(
      api.configMapRequests().map((q) => q.method),
      ['POST', 'POST', 'GET', 'PUT'],
    );
    const usage = await release(
      'mirror',
      env.digest,
      '--no-images',
      '--to',
      'oci:x',
      '--store',
      env.store,
      '--keyring',
      env.keyring,
      '--overwrite',
    );
    assert.equal(usage.code, 2);
    assert.ok(!existsSync(join(dir, 'x')));
  });
});

/** Runs the stand-in release group and returns stdout as bytes (signatures are binary). */
async function runBinary(args: string[]): Promise<Buffer> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', DRIVER, 'release', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`exit ${code}: ${err}`))));
  });
}
