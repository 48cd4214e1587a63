/**
 * The release-signature ConfigMap: the exact bytes oc writes, its YAML form, the file oc names and its
 * modes; and applying it to a cluster (create; --overwrite replaces with the resourceVersion read; an
 * existing one without --overwrite is an error), against a stand-in for the ConfigMap endpoints, with the
 * requests compared to what kubectl sends to the same stand-in for the same file (`kubectl create -f`,
 * `kubectl replace -f`, `kubectl apply -f`), when kubectl is on the machine.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { isLadingError } from '../../src/errors.js';
import {
  configMapJson,
  configMapYaml,
  signatureConfigMap,
  signatureConfigMapFileName,
  writeSignatureConfigMap,
} from '../../src/sign/configmap.js';
import { applyConfigMap, loadKubeconfig } from '../../src/sign/kube-apply.js';
import { makeCa, makeServerCert } from '../helpers/pki.js';
import { tempDir } from '../helpers/tmp.js';
import { exec } from './gpg.js';
import { type Recorded, kubeconfig, startKubeStandIn } from './kube-standin.js';

const HEX = '0da6316466d60a3a4535d5fed3589feb0391989982fba59d47d4c729912d6363';
const RELEASE = `sha256:${HEX}`;
const SIG = await readFile(new URL('../fixtures/sign/release-4.15.0/signature-1', import.meta.url));
const KUBECTL = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p));

describe('release signature ConfigMap', () => {
  it('is byte for byte what oc writes', () => {
    const b64 = SIG.toString('base64');
    assert.ok(b64.startsWith('owGbwMvMwMEoOU9/'));
    const expected =
      '{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"sha256-' +
      HEX +
      '","namespace":"openshift-config-managed","creationTimestamp":null,"labels":{"release.openshift.io/verification-signatures":""}},"binaryData":{"sha256-' +
      HEX +
      '-1":"' +
      b64 +
      '"}}\n';
    assert.equal(configMapJson(signatureConfigMap(RELEASE, [SIG])), expected);
  });

  it('numbers signatures from 1 and sorts keys as Go does', () => {
    const sigs = Array.from({ length: 11 }, (_, i) => Buffer.from(`s${i + 1}`));
    const keys = Object.keys(JSON.parse(configMapJson(signatureConfigMap(RELEASE, sigs))).binaryData as object);
    assert.deepEqual(keys.slice(0, 4), [`sha256-${HEX}-1`, `sha256-${HEX}-10`, `sha256-${HEX}-11`, `sha256-${HEX}-2`]);
    assert.equal(
      Buffer.from(
        (JSON.parse(configMapJson(signatureConfigMap(RELEASE, sigs))).binaryData as Record<string, string>)[`sha256-${HEX}-10`] ?? '',
        'base64',
      ).toString(),
      's10',
    );
    assert.throws(() => signatureConfigMap(RELEASE, []), /no signatures/);
  });

  it('YAML: the same object, keys sorted, long base64 unfolded, creationTimestamp null', () => {
    const yaml = configMapYaml(signatureConfigMap(RELEASE, [SIG]));
    assert.match(
      yaml,
      /^apiVersion: v1\nbinaryData:\n {2}sha256-[0-9a-f]{64}-1: owGb\S+\nkind: ConfigMap\nmetadata:\n {2}creationTimestamp: null\n {2}labels:\n {4}release.openshift.io\/verification-signatures: ""\n {2}name: sha256-/,
    );
    assert.deepEqual(parseYaml(yaml), JSON.parse(configMapJson(signatureConfigMap(RELEASE, [SIG]))));
  });

  it('is written as signature-sha256-<16 hex>.json, mode 0640, in a 0750 directory', async () => {
    const dir = join(await tempDir(), 'release-signatures');
    const path = await writeSignatureConfigMap(dir, RELEASE, [SIG]);
    assert.equal(path, join(dir, 'signature-sha256-0da6316466d60a3a.json'));
    assert.equal(signatureConfigMapFileName(RELEASE), 'signature-sha256-0da6316466d60a3a.json');
    assert.equal((await stat(path)).mode & 0o777, 0o640);
    assert.equal((await stat(dir)).mode & 0o777, 0o750);
    assert.equal(await readFile(path, 'utf8'), configMapJson(signatureConfigMap(RELEASE, [SIG])));
    // written again: replaced whole, no temp files left
    await writeSignatureConfigMap(dir, RELEASE, [SIG, SIG]);
    assert.deepEqual(await readdir(dir), ['signature-sha256-0da6316466d60a3a.json']);
  });
});

describe('--apply-release-image-signature', () => {
  const cm = signatureConfigMap(RELEASE, [SIG]);
  const item = `/api/v1/namespaces/openshift-config-managed/configmaps/sha256-${HEX}`;
  const collection = '/api/v1/namespaces/openshift-config-managed/configmaps';

  // The stand-in speaks TLS with a CA the tests make: kubectl (like Lading) sends no token over plain http.
  let pki: { dir: string; tls: { cert: string; key: string } } | undefined;
  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lading-kube-pki-'));
    const server = await makeServerCert(dir, await makeCa(dir));
    pki = { dir, tls: { cert: await readFile(server.cert, 'utf8'), key: await readFile(server.key, 'utf8') } };
  });
  after(() => rm(pki?.dir ?? '/nonexistent-lading', { recursive: true, force: true }));
  const tls = async () => pki as NonNullable<typeof pki>;

  async function setup() {
    const { dir: caDir, tls: keys } = await tls();
    const api = await startKubeStandIn({ tls: keys });
    const dir = await tempDir();
    const config = join(dir, 'kubeconfig');
    await writeFile(config, kubeconfig(api.url, api.token, { ca: join(caDir, 'ca.crt') }));
    return { api, config, access: await loadKubeconfig(config), dir };
  }

  it('creates, refuses to replace without overwrite, replaces with it', async () => {
    const { api, access } = await setup();
    assert.equal(await applyConfigMap(access, cm), 'created');
    assert.deepEqual(
      api.configMapRequests().map((r) => `${r.method} ${r.path}`),
      [`POST ${collection}`],
    );
    const post = api.configMapRequests()[0] as Recorded;
    assert.equal(post.contentType, 'application/json');
    assert.equal(post.authorization, `Bearer ${api.token}`);
    assert.deepEqual(post.body, JSON.parse(configMapJson(cm)));

    await assert.rejects(
      applyConfigMap(access, cm),
      (e: unknown) => isLadingError(e, 'KUBERNETES') && /already exists in cluster standin: pass --overwrite/.test(e.message),
    );
    const held = JSON.stringify(api.objects.get(`openshift-config-managed/sha256-${HEX}`));

    const two = signatureConfigMap(RELEASE, [SIG, Buffer.from('second')]);
    assert.equal(await applyConfigMap(access, two, { overwrite: true }), 'configured');
    const [get, put] = api.configMapRequests().slice(-2) as [Recorded, Recorded];
    assert.deepEqual([get.method, get.path, put.method, put.path], ['GET', item, 'PUT', item]);
    assert.equal(
      (put.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion,
      JSON.parse(held).metadata.resourceVersion,
    );
    assert.equal(Object.keys((api.objects.get(`openshift-config-managed/sha256-${HEX}`) as { binaryData: object }).binaryData).length, 2);
  });

  it('with --overwrite and nothing there, creates', async () => {
    const { api, access } = await setup();
    assert.equal(await applyConfigMap(access, cm, { overwrite: true }), 'created');
    assert.deepEqual(
      api.configMapRequests().map((r) => r.method),
      ['GET', 'POST'],
    );
  });

  it('a wrong token, an unreachable server, an exec plugin: clear errors', async () => {
    const { api, dir } = await setup();
    const bad = join(dir, 'bad');
    await writeFile(bad, kubeconfig(api.url, 'wrong', { ca: join((await tls()).dir, 'ca.crt') }));
    await assert.rejects(
      applyConfigMap(await loadKubeconfig(bad), cm),
      /cannot create configmap .* the API answered 401: Unauthorized \(check the token/,
    );
    const plain = await startKubeStandIn();
    await writeFile(bad, kubeconfig(plain.url, plain.token));
    await assert.rejects(
      applyConfigMap(await loadKubeconfig(bad), cm),
      /401: Unauthorized \(credentials are not sent to a plain http:\/\/ server/,
    );
    assert.equal(plain.requests[0]?.authorization, undefined);
    await writeFile(bad, kubeconfig('http://127.0.0.1:9', 'x'));
    await assert.rejects(applyConfigMap(await loadKubeconfig(bad), cm), /cannot reach the Kubernetes API at http:\/\/127.0.0.1:9/);
    await writeFile(bad, kubeconfig(api.url, 'x').replace('    token: x', '    exec:\n      command: get-token'));
    await assert.rejects(loadKubeconfig(bad), /exec or auth-provider plugin, which Lading does not run/);
    await writeFile(bad, 'apiVersion: v1\nkind: Config\n');
    await assert.rejects(loadKubeconfig(bad), /no current-context/);
  });

  it('TLS: trusts the kubeconfig CA, fails without it', async () => {
    const dir = await tempDir();
    const ca = await makeCa(dir);
    const server = await makeServerCert(dir, ca);
    const api = await startKubeStandIn({ tls: { cert: await readFile(server.cert, 'utf8'), key: await readFile(server.key, 'utf8') } });
    const config = join(dir, 'kubeconfig');
    await writeFile(config, kubeconfig(api.url, api.token, { ca: 'ca.crt' }));
    assert.equal(await applyConfigMap(await loadKubeconfig(config), cm), 'created');
    await writeFile(config, kubeconfig(api.url, api.token));
    await assert.rejects(
      applyConfigMap(await loadKubeconfig(config), signatureConfigMap(`sha256:${'1'.repeat(64)}`, [SIG])),
      /cannot reach the Kubernetes API/,
    );
  });

  describe('matches kubectl for the same file', { skip: KUBECTL === undefined ? 'kubectl is not installed' : false }, () => {
    const kubectl = (config: string, args: string[]) =>
      exec(KUBECTL as string, ['--kubeconfig', config, ...args, '--validate=false'], { ...process.env, HOME: join(config, '..') });
    const strip = (r: Recorded) => ({ method: r.method, path: r.path, contentType: r.contentType, authorization: r.authorization });

    it('create: kubectl create -f and kubectl apply -f send the POST Lading sends', async () => {
      const ours = await setup();
      await applyConfigMap(ours.access, cm);
      const file = join(ours.dir, 'cm.json');
      await writeFile(file, configMapJson(cm));

      const theirs = await setup();
      const created = await kubectl(theirs.config, ['create', '-f', file]);
      assert.equal(created.code, 0, created.stderr);
      const kPost = theirs.api.configMapRequests().find((r) => r.method === 'POST') as Recorded;
      const lPost = ours.api.configMapRequests()[0] as Recorded;
      assert.deepEqual(strip(lPost), strip(kPost));
      assert.deepEqual(lPost.body, kPost.body);

      const applied = await setup();
      const a = await kubectl(applied.config, ['apply', '-f', file]);
      assert.equal(a.code, 0, a.stderr);
      const aPost = applied.api.configMapRequests().find((r) => r.method === 'POST') as Recorded;
      assert.deepEqual(strip(lPost), strip(aPost));
      const body = structuredClone(aPost.body) as { metadata: { annotations?: Record<string, string> } };
      // apply adds its bookkeeping annotation, holding the file's object; the rest is the same object
      const lastApplied = JSON.parse(body.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'] ?? '{}');
      delete body.metadata.annotations;
      assert.deepEqual(body, lPost.body);
      assert.deepEqual(
        { ...lastApplied, metadata: { ...lastApplied.metadata, annotations: undefined } },
        { ...(lPost.body as object), metadata: { ...(lPost.body as { metadata: object }).metadata, annotations: undefined } },
      );
    });

    it('overwrite: kubectl replace -f sends the GET and PUT (with resourceVersion) Lading sends', async () => {
      const ours = await setup();
      await applyConfigMap(ours.access, cm);
      const two = signatureConfigMap(RELEASE, [SIG, Buffer.from('second')]);
      await applyConfigMap(ours.access, two, { overwrite: true });
      const file = join(ours.dir, 'cm2.json');
      await writeFile(file, configMapJson(two));

      const theirs = await setup();
      await applyConfigMap(theirs.access, cm);
      const before = theirs.api.configMapRequests().length;
      const replaced = await kubectl(theirs.config, ['replace', '-f', file]);
      assert.equal(replaced.code, 0, replaced.stderr);
      const k = theirs.api.configMapRequests().slice(before);
      const l = ours.api.configMapRequests().slice(1);
      assert.deepEqual(l.map(strip), k.map(strip));
      assert.deepEqual(l[1]?.body, k[1]?.body);
    });
  });
});
