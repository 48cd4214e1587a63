/**
 * containers-policy.json(5): strict parsing (each mistake an error naming where), scope lookup from the
 * most specific scope to `default`, every signedIdentity rule, and enforcing signedBy, reject and
 * insecureAcceptAnything on the real OpenShift signatures.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { parseImageReference } from '../../src/oci/reference.js';
import { type SignedIdentity, identityMatches } from '../../src/sign/identity.js';
import { dockerScopes, enforcePolicy, parsePolicy, requirementsFor } from '../../src/sign/policy.js';

const FIX = fileURLToPath(new URL('../fixtures/sign/', import.meta.url));
const RELEASE = 'sha256:0da6316466d60a3a4535d5fed3589feb0391989982fba59d47d4c729912d6363';
const where = { name: 'policy.json', baseDir: FIX };
const parse = (doc: unknown) => parsePolicy(JSON.stringify(doc), where);
const ref = parseImageReference;

function invalid(doc: unknown, pattern: RegExp): void {
  assert.throws(
    () => parse(doc),
    (e: unknown) => isLadingError(e, 'INVALID_POLICY') && pattern.test(e.message),
    String(pattern),
  );
}

describe('policy.json parsing', () => {
  it('reads every supported requirement', () => {
    const p = parse({
      default: [{ type: 'reject' }],
      transports: {
        docker: {
          'quay.io/openshift-release-dev': [
            { type: 'signedBy', keyType: 'GPGKeys', keyPath: 'keyrings/redhat.txt', signedIdentity: { type: 'matchRepository' } },
          ],
          'example.com': [{ type: 'sigstoreSigned', keyData: Buffer.from('PEM').toString('base64') }],
          '': [{ type: 'insecureAcceptAnything' }],
        },
      },
    });
    const signed = p.transports.docker?.['quay.io/openshift-release-dev']?.[0];
    assert.deepEqual(signed, {
      type: 'signedBy',
      keys: [{ path: `${FIX}keyrings/redhat.txt` }],
      signedIdentity: { type: 'matchRepository' },
    });
    assert.deepEqual(p.transports.docker?.['example.com']?.[0], {
      type: 'sigstoreSigned',
      keys: [{ data: Buffer.from('PEM') }],
      signedIdentity: { type: 'matchRepoDigestOrExact' },
    });
  });

  it('refuses what containers/image refuses', () => {
    invalid({}, /has no "default"/);
    invalid({ default: [] }, /default is an empty list/);
    invalid({ default: [{ type: 'reject' }], extra: 1 }, /unknown member "extra"/);
    invalid({ default: [{ type: 'rejectt' }] }, /unknown requirement type "rejectt"/);
    invalid({ default: [{ type: 'reject', keyPath: '/x' }] }, /default\[0\] has an unknown member "keyPath"/);
    invalid({ default: [{ type: 'signedBy', keyType: 'GPGKeys' }] }, /needs exactly one of keyPath, keyPaths, keyData/);
    invalid({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/a', keyData: 'QQ==' }] }, /has keyPath and keyData/);
    invalid({ default: [{ type: 'signedBy', keyType: 'X509Certificates', keyPath: '/a' }] }, /keyType "X509Certificates" is not supported/);
    invalid(
      { default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/a', signedIdentity: { type: 'exactReference' } }] },
      /has no "dockerReference"/,
    );
    invalid(
      { default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/a', signedIdentity: { type: 'matchExact', x: 1 } }] },
      /unknown member "x"/,
    );
    invalid({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPaths: [] }] }, /keyPaths must be a non-empty list/);
    invalid({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyData: 'not base64!' }] }, /keyData must be base64/);
    invalid({ default: [{ type: 'sigstoreSigned', fulcio: {} }] }, /fulcio is not supported/);
    invalid({ default: [{ type: 'sigstoreSigned', keyPath: '/k', rekorPublicKeyPath: '/r' }] }, /rekorPublicKeyPath is not supported/);
    invalid({ default: [{ type: 'reject' }], transports: { docker: { 'a.b': [] } } }, /transports.docker\["a.b"\] is an empty list/);
    assert.throws(() => parsePolicy('{', where), /not valid JSON/);
  });
});

describe('scope lookup', () => {
  const p = parse({
    default: [{ type: 'reject' }],
    transports: {
      docker: {
        'quay.io/ns/app:1': [{ type: 'insecureAcceptAnything' }],
        'quay.io/ns': [{ type: 'reject' }],
        '*.example.com': [{ type: 'insecureAcceptAnything' }],
        '': [{ type: 'reject' }],
      },
    },
  });
  it('takes the most specific scope', () => {
    assert.deepEqual(dockerScopes(ref('reg.sub.example.com:5000/a/b:1')), [
      'reg.sub.example.com:5000/a/b:1',
      'reg.sub.example.com:5000/a/b',
      'reg.sub.example.com:5000/a',
      'reg.sub.example.com:5000',
      '*.sub.example.com',
      '*.example.com',
      '*.com',
    ]);
    assert.equal(requirementsFor(p, ref('quay.io/ns/app:1')).scope, 'docker:quay.io/ns/app:1');
    assert.equal(requirementsFor(p, ref('quay.io/ns/app:2')).scope, 'docker:quay.io/ns');
    assert.equal(requirementsFor(p, ref('r.example.com/x:1')).scope, 'docker:*.example.com');
    assert.equal(requirementsFor(p, ref('other.io/x:1')).scope, 'docker (transport default)');
    assert.equal(requirementsFor(p, undefined).scope, 'default');
  });
});

describe('signedIdentity rules', () => {
  const D = `sha256:${'ab'.repeat(32)}`;
  const cases: [SignedIdentity, string | undefined, string, boolean][] = [
    [{ type: 'matchExact' }, 'quay.io/a/b:1', 'quay.io/a/b:1', true],
    [{ type: 'matchExact' }, 'quay.io/a/b:1', 'quay.io/a/b:2', false],
    [{ type: 'matchExact' }, 'quay.io/a/b:1', 'quay.io/a/b', false],
    [{ type: 'matchExact' }, 'busybox:latest', 'docker.io/library/busybox:latest', true],
    [{ type: 'matchRepoDigestOrExact' }, `quay.io/a/b@${D}`, 'quay.io/a/b:anything', true],
    [{ type: 'matchRepoDigestOrExact' }, `quay.io/a/b@${D}`, 'quay.io/a/c:1', false],
    [{ type: 'matchRepoDigestOrExact' }, 'quay.io/a/b:1', 'quay.io/a/b:1', true],
    [{ type: 'matchRepoDigestOrExact' }, 'quay.io/a/b:1', 'quay.io/a/b:2', false],
    [{ type: 'matchRepoDigestOrExact' }, undefined, 'quay.io/a/b:2', false],
    [{ type: 'matchRepository' }, 'quay.io/a/b:1', 'quay.io/a/b:2', true],
    [{ type: 'matchRepository' }, 'quay.io/a/b:1', 'quay.io/a/bb:1', false],
    [{ type: 'exactReference', dockerReference: 'quay.io/a/b:1' }, 'mirror.local/x:9', 'quay.io/a/b:1', true],
    [{ type: 'exactReference', dockerReference: 'quay.io/a/b:1' }, 'mirror.local/x:9', 'quay.io/a/b:2', false],
    [{ type: 'exactRepository', dockerRepository: 'quay.io/a/b' }, undefined, 'quay.io/a/b:7', true],
    [{ type: 'exactRepository', dockerRepository: 'quay.io/a/b' }, undefined, 'quay.io/a/c:7', false],
    [{ type: 'remapIdentity', prefix: 'mirror.local', signedPrefix: 'quay.io' }, 'mirror.local/a/b:1', 'quay.io/a/b:1', true],
    [{ type: 'remapIdentity', prefix: 'mirror.local', signedPrefix: 'quay.io' }, 'mirror.local:5000/a/b:1', 'quay.io/a/b:1', false],
    [{ type: 'remapIdentity', prefix: 'mirror.local/a', signedPrefix: 'quay.io/z' }, 'mirror.local/a/b:1', 'quay.io/z/b:1', true],
    [{ type: 'remapIdentity', prefix: 'mirror.local/a', signedPrefix: 'quay.io/z' }, 'mirror.local/ab/c:1', 'quay.io/z/b/c:1', false],
    [{ type: 'none' }, undefined, 'anything at all', true],
    [{ type: 'matchExact' }, 'quay.io/a/b:1', 'Not A Reference', false],
  ];
  for (const [rule, intended, signed, want] of cases) {
    it(`${rule.type} ${intended ?? '(digest only)'} vs ${signed}: ${want}`, () => {
      const v = identityMatches(rule, intended === undefined ? undefined : ref(intended), signed);
      assert.equal(v.ok, want, v.ok ? '' : v.reason);
    });
  }
});

describe('enforcing a policy', () => {
  const signatures = async () => [{ name: 'signature-1', bytes: await readFile(`${FIX}release-4.15.0/signature-1`) }];
  const ctx = (image: string) => ({ image, digest: RELEASE, intended: ref(image), simpleSignatures: signatures });
  const policy = parse({
    default: [{ type: 'reject' }],
    transports: {
      docker: {
        'quay.io/openshift-release-dev/ocp-release': [
          { type: 'signedBy', keyType: 'GPGKeys', keyPaths: ['keyrings/simple.txt', 'keyrings/redhat.txt'] },
        ],
        'quay.io/openshift-release-dev/ci': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: 'keyrings/simple.txt' }],
        'quay.io/open': [{ type: 'insecureAcceptAnything' }],
      },
    },
  });

  it('signedBy: a signature by any key of the keyPaths, with the identity rule', async () => {
    const v = await enforcePolicy(policy, ctx(`quay.io/openshift-release-dev/ocp-release@${RELEASE}`));
    assert.equal(v.scope, 'docker:quay.io/openshift-release-dev/ocp-release');
    assert.match(v.outcomes[0]?.detail ?? '', /Red Hat, Inc. \(release key 2\)/);
  });

  it('signedBy with the wrong key is rejected, with the reason', async () => {
    await assert.rejects(
      enforcePolicy(policy, ctx(`quay.io/openshift-release-dev/ci@${RELEASE}`)),
      /policy rejects .* \(scope docker:quay.io\/openshift-release-dev\/ci\): signedBy: signature signature-1: it was signed by key 199E2F91FD431D51/,
    );
  });

  it('signedBy by tag checks the identity exactly', async () => {
    await enforcePolicy(policy, { ...ctx('quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64') });
    await assert.rejects(
      enforcePolicy(policy, ctx('quay.io/openshift-release-dev/ocp-release:4.15.1-x86_64')),
      /not quay.io\/openshift-release-dev\/ocp-release:4.15.1-x86_64/,
    );
  });

  it('insecureAcceptAnything and reject', async () => {
    assert.equal((await enforcePolicy(policy, ctx('quay.io/open/x:1'))).outcomes[0]?.type, 'insecureAcceptAnything');
    await assert.rejects(enforcePolicy(policy, ctx('elsewhere.io/x:1')), /scope default\): reject: the policy rejects this image outright/);
  });

  it('sigstoreSigned without cosign signatures looked up is not satisfied', async () => {
    const p = parse({ default: [{ type: 'sigstoreSigned', keyData: Buffer.from('x').toString('base64') }] });
    await assert.rejects(enforcePolicy(p, ctx('a.io/b:1')), /cosign signatures were not looked up/);
  });
});
