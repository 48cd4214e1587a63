/**
 * Real OpenShift release signatures (test/fixtures/sign, from library-go and oc-mirror): they verify with
 * the Red Hat and CI keyrings, including version 3 signature packets and a key that has expired since it
 * signed; altered copies (one flipped bit, another digest, another key) fail with the reason; identity
 * rules pick the right ones of four signatures of one digest; and several keyrings must all be satisfied.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { digestOf } from '../../src/oci/digest.js';
import { parseImageReference } from '../../src/oci/reference.js';
import { type Keyring, loadKeyringFile } from '../../src/sign/keyring.js';
import { verifySignedMessage } from '../../src/sign/openpgp-verify.js';
import { parsePayload } from '../../src/sign/simple-signing.js';
import { readSignatures } from '../../src/sign/signature-store.js';
import { checkSimpleSignatures, verifySimpleSignatures } from '../../src/sign/verify-image.js';

const FIX = fileURLToPath(new URL('../fixtures/sign/', import.meta.url));
const RELEASE = 'sha256:0da6316466d60a3a4535d5fed3589feb0391989982fba59d47d4c729912d6363';
const BUNDLE = 'sha256:50b9402635dd4b312a86bed05dcdbda8c00120d3789ec2e9b527045100b3bdb4';
const RHEL = 'sha256:e3f12513a4b22a2d7c0e7c9207f52128113758d9d68c7d06b11a0ac7672966f7';
const CI = 'sha256:edd9824f0404f1a139688017e7001370e2f3fbc088b94da84506653b473fe140';

const keyring = (name: string): Promise<Keyring> => loadKeyringFile(`${FIX}keyrings/${name}`);
const sig = (path: string): Promise<Buffer> => readFile(`${FIX}${path}`);

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isLadingError(e, 'SIGNATURE'), `expected a SIGNATURE error, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('real OpenShift signatures', () => {
  it('the 4.15.0 release signature verifies with Red Hat release key 2', async () => {
    const redhat = await keyring('redhat.txt');
    const r = await verifySignedMessage(await sig('release-4.15.0/signature-1'), [redhat]);
    assert.equal(r.signers[0]?.fingerprint, '567E347AD0044ADE55BA8A5F199E2F91FD431D51');
    const p = parsePayload(r.payload);
    assert.equal(p.digest, RELEASE);
    assert.equal(p.identity, 'quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64');
    const v = await verifySimpleSignatures({
      image: `quay.io/openshift-release-dev/ocp-release@${RELEASE}`,
      digest: RELEASE,
      intended: parseImageReference(`quay.io/openshift-release-dev/ocp-release@${RELEASE}`),
      identity: { type: 'matchRepoDigestOrExact' },
      keyrings: [redhat],
      signatures: [{ name: 'signature-1', bytes: await sig('release-4.15.0/signature-1') }],
    });
    assert.equal(v.accepted.length, 1);
  });

  it('version 3 signature packets verify (Red Hat 2019 and 2022 signatures)', async () => {
    const redhat = await keyring('redhat.txt');
    const rhel = await verifySignedMessage(await sig(`store/sha256=${RHEL.slice(7)}/signature-1`), [redhat]);
    assert.equal(parsePayload(rhel.payload).identity, 'registry.access.redhat.com/rhel7:7.6');
    assert.equal(rhel.signers[0]?.created.toISOString(), '2019-04-09T18:14:24.000Z');
    for (let i = 1; i <= 4; i++) {
      const r = await verifySignedMessage(await sig(`multi-identity/signature-${i}`), [redhat]);
      assert.equal(parsePayload(r.payload).digest, BUNDLE);
    }
  });

  it('the multi-identity image digest is the sha256 of its manifest', async () => {
    assert.equal(digestOf(await sig('multi-identity/manifest.json')), BUNDLE);
  });

  it('a signature by a key that has expired since (openshift-ci, expired 2021) is accepted: it signed while valid', async () => {
    const ci = await keyring('simple.txt');
    assert.ok((await ci.keys[0]?.getExpirationTime()) instanceof Date);
    const r = await verifySignedMessage(await sig(`store/sha256=${CI.slice(7)}/signature-1`), [ci]);
    assert.equal(r.signers[0]?.userID, 'openshift-ci');
    assert.equal(parsePayload(r.payload).timestamp, 1555943751);
  });

  it('reads the OpenShift store layout from a directory', async () => {
    const found = await readSignatures({ layout: 'openshift', base: `${FIX}store` }, { digest: RHEL });
    assert.equal(found.length, 1);
    assert.equal(found[0]?.index, 1);
    assert.deepEqual(await readSignatures({ layout: 'openshift', base: `${FIX}store` }, { digest: RELEASE }), []);
  });

  describe('altered copies fail', () => {
    it('one flipped bit in the signature packet', async () => {
      const b = await sig('release-4.15.0/signature-1');
      b[b.length - 20] = (b[b.length - 20] ?? 0) ^ 0x01;
      await rejects(
        verifySignedMessage(b, [await keyring('redhat.txt')]),
        /does not match the signed data|not a valid OpenPGP|cannot be read/,
      );
    });

    it('one flipped bit in a version 3 signature', async () => {
      const b = await sig('multi-identity/signature-3');
      b[b.length - 5] = (b[b.length - 5] ?? 0) ^ 0x80;
      await rejects(
        verifySignedMessage(b, [await keyring('redhat.txt')]),
        /does not match the signed data|not a valid OpenPGP|cannot be read/,
      );
    });

    it('any flipped bit in the signed JSON or in the RSA signature value is refused', async () => {
      const original = await sig(`store/sha256=${CI.slice(7)}/signature-1`);
      const ci = await keyring('simple.txt');
      // The bytes a signature covers: the literal data (the JSON) and the signature value (the last 256
      // bytes: RSA-2048). Packet framing such as the one-pass key ID or the literal's file name is not
      // covered by an OpenPGP signature, so flips there may rightly be accepted.
      const start = original.indexOf('{');
      const end = original.lastIndexOf('}') + 1;
      const positions = [];
      for (let i = start; i < end; i += 5) positions.push(i);
      for (let i = original.length - 256; i < original.length; i += 9) positions.push(i);
      for (const i of positions) {
        const b = Buffer.from(original);
        b[i] = (b[i] ?? 0) ^ 0x04;
        await assert.rejects(
          (async () => parsePayload((await verifySignedMessage(b, [ci])).payload))(),
          (e: unknown) => isLadingError(e),
          `a flipped bit at byte ${i} was accepted`,
        );
      }
      assert.ok(positions.length > 80);
    });

    it('the signature of another digest', async () => {
      const r = await checkSimpleSignatures({
        image: 'ocp-release',
        digest: BUNDLE,
        identity: { type: 'none' },
        keyrings: [await keyring('redhat.txt')],
        signatures: [{ name: 'release-4.15.0/signature-1', bytes: await sig('release-4.15.0/signature-1') }],
      });
      assert.equal(r.satisfied, false);
      assert.match(r.rejected[0]?.reason ?? '', new RegExp(`it signs ${RELEASE}, not ${BUNDLE}`));
    });

    it('another key (the CI keyring for a Red Hat signature)', async () => {
      await rejects(
        verifySignedMessage(await sig('release-4.15.0/signature-1'), [await keyring('simple.txt')]),
        /signed by key 199E2F91FD431D51, which is not in keyring simple.txt/,
      );
    });
  });

  describe('identity rules on four signatures of one digest', () => {
    const all = async () =>
      Promise.all([1, 2, 3, 4].map(async (i) => ({ name: `signature-${i}`, bytes: await sig(`multi-identity/signature-${i}`) })));

    it('by digest, the same repository is enough (matchRepoDigestOrExact)', async () => {
      const r = await checkSimpleSignatures({
        image: 'bundle',
        digest: BUNDLE,
        intended: parseImageReference(`registry.redhat.io/albo/aws-load-balancer-operator-bundle@${BUNDLE}`),
        identity: { type: 'matchRepoDigestOrExact' },
        keyrings: [await keyring('redhat.txt')],
        signatures: await all(),
      });
      assert.deepEqual(
        r.accepted.map((a) => a.name),
        ['signature-3', 'signature-4'],
      );
      assert.match(
        r.rejected[0]?.reason ?? '',
        /repository registry.access.redhat.com\/albo\/aws-load-balancer-operator-bundle, not registry.redhat.io/,
      );
    });

    it('by tag, only the exact reference', async () => {
      const r = await checkSimpleSignatures({
        image: 'bundle',
        digest: BUNDLE,
        intended: parseImageReference('registry.redhat.io/albo/aws-load-balancer-operator-bundle:0.0.1-20'),
        identity: { type: 'matchRepoDigestOrExact' },
        keyrings: [await keyring('redhat.txt')],
        signatures: await all(),
      });
      assert.deepEqual(
        r.accepted.map((a) => a.name),
        ['signature-4'],
      );
    });

    it('none (the CVO rule for mirrors) takes all four, even for a mirror name', async () => {
      const r = await checkSimpleSignatures({
        image: 'bundle',
        digest: BUNDLE,
        intended: parseImageReference(`mirror.local:5000/albo/bundle@${BUNDLE}`),
        identity: { type: 'none' },
        keyrings: [await keyring('redhat.txt')],
        signatures: await all(),
      });
      assert.equal(r.accepted.length, 4);
    });

    it('remapIdentity maps a mirror onto the signed name', async () => {
      const r = await checkSimpleSignatures({
        image: 'bundle',
        digest: BUNDLE,
        intended: parseImageReference('mirror.local:5000/albo/aws-load-balancer-operator-bundle:0.0.1'),
        identity: { type: 'remapIdentity', prefix: 'mirror.local:5000', signedPrefix: 'registry.redhat.io' },
        keyrings: [await keyring('redhat.txt')],
        signatures: await all(),
      });
      assert.deepEqual(
        r.accepted.map((a) => a.name),
        ['signature-3'],
      );
    });
  });

  describe('several keyrings: every one must be satisfied', () => {
    it('Red Hat + CI keyrings with only a Red Hat signature fails, naming the CI keyring', async () => {
      await rejects(
        verifySimpleSignatures({
          image: 'ocp-release',
          digest: RELEASE,
          identity: { type: 'none' },
          keyrings: [await keyring('redhat.txt'), await keyring('simple.txt')],
          signatures: [{ name: 'signature-1', bytes: await sig('release-4.15.0/signature-1') }],
        }),
        /cannot verify ocp-release \(sha256:0da6.*\) against keyrings: simple.txt/,
      );
    });

    it('a keyring holding both keys is satisfied by either', async () => {
      const r = await verifySignedMessage(await sig('release-4.15.0/signature-1'), [await keyring('combined.txt')]);
      assert.equal(r.signers[0]?.keyring, 'combined.txt');
    });
  });
});
