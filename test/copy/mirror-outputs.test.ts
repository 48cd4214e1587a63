import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { imageDigestMirrorSet, type MirrorMapping, mappingList } from '../../src/copy/mirror-outputs.js';
import { isLadingError } from '../../src/errors.js';
import { parseImageReference } from '../../src/oci/reference.js';

const D = `sha256:${'cd'.repeat(32)}`;

const MAPPINGS: MirrorMapping[] = [
  { source: parseImageReference('quay.io/ocp/test:4.15'), destination: 'registry.example:5000/ocp/test:4.15' },
  { source: parseImageReference(`quay.io/ocp/test@${D}`), destination: `registry.example:5000/ocp/test@${D}` },
  { source: parseImageReference('alpine:3.19'), destination: 'registry.example:5000/library/alpine:3.19' },
  { source: parseImageReference('alpine:3.19'), destination: 'docker://backup.example/library/alpine:3.19' },
  { source: parseImageReference('quay.io/ocp/test:4.15'), destination: 'registry.example:5000/ocp/test:4.15' },
];

describe('imageDigestMirrorSet', () => {
  it('prints sorted, deduplicated repository mirrors', () => {
    assert.equal(
      imageDigestMirrorSet(MAPPINGS, 'example'),
      [
        'apiVersion: config.openshift.io/v1',
        'kind: ImageDigestMirrorSet',
        'metadata:',
        '  name: example',
        'spec:',
        '  imageDigestMirrors:',
        '  - mirrors:',
        '    - backup.example/library/alpine',
        '    - registry.example:5000/library/alpine',
        '    source: docker.io/library/alpine',
        '  - mirrors:',
        '    - registry.example:5000/ocp/test',
        '    source: quay.io/ocp/test',
        '',
      ].join('\n'),
    );
  });

  it('parses back as the object a cluster reads', () => {
    assert.deepEqual(parse(imageDigestMirrorSet(MAPPINGS.slice(0, 2))), {
      apiVersion: 'config.openshift.io/v1',
      kind: 'ImageDigestMirrorSet',
      metadata: { name: 'lading-mirror' },
      spec: { imageDigestMirrors: [{ mirrors: ['registry.example:5000/ocp/test'], source: 'quay.io/ocp/test' }] },
    });
  });

  it('does not depend on input order', () => {
    assert.equal(imageDigestMirrorSet([...MAPPINGS].reverse()), imageDigestMirrorSet(MAPPINGS));
  });

  it('refuses layout and archive destinations', () => {
    for (const destination of ['oci:/srv/mirror:quay.io/ocp/test:4.15', 'oci-archive:/srv/m.tar']) {
      assert.throws(
        () => imageDigestMirrorSet([{ source: parseImageReference('quay.io/ocp/test:4.15'), destination }]),
        (e: unknown) => isLadingError(e, 'USAGE') && e.message.includes('can only pull from a registry'),
      );
    }
  });

  it('refuses a name Kubernetes would reject', () => {
    for (const name of ['', 'Upper', 'under_score', '-x', 'x'.repeat(254)]) {
      assert.throws(
        () => imageDigestMirrorSet(MAPPINGS, name),
        (e: unknown) => isLadingError(e, 'USAGE'),
      );
    }
    assert.match(imageDigestMirrorSet(MAPPINGS, 'site-a.mirror'), /name: site-a\.mirror\n/);
  });
});

describe('mappingList', () => {
  it('prints SOURCE=DESTINATION lines, sorted and deduplicated', () => {
    assert.equal(
      mappingList(MAPPINGS),
      [
        'docker.io/library/alpine:3.19=docker://backup.example/library/alpine:3.19',
        'docker.io/library/alpine:3.19=registry.example:5000/library/alpine:3.19',
        'quay.io/ocp/test:4.15=registry.example:5000/ocp/test:4.15',
        `quay.io/ocp/test@${D}=registry.example:5000/ocp/test@${D}`,
        '',
      ].join('\n'),
    );
  });

  it('prints layout destinations as given, and nothing for no mappings', () => {
    const layout = { source: parseImageReference('quay.io/org/app:1.2'), destination: 'oci:/path:quay.io/org/app:1.2' };
    assert.equal(mappingList([layout]), 'quay.io/org/app:1.2=oci:/path:quay.io/org/app:1.2\n');
    assert.equal(mappingList([]), '');
  });
});
