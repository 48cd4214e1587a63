import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { DigestVerifier, digestOf, parseDigest } from '../../src/oci/digest.js';

const HELLO = 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';

function sink(): Writable {
  return new Writable({ write: (_c, _e, cb) => cb() });
}

describe('digest', () => {
  it('parses sha256 and sha512', () => {
    assert.equal(parseDigest(HELLO).algorithm, 'sha256');
    assert.equal(parseDigest(`sha512:${'a'.repeat(128)}`).encoded.length, 128);
  });

  for (const bad of [
    'sha256:abc',
    `sha256:${'A'.repeat(64)}`,
    `sha512:${'a'.repeat(64)}`,
    `md5:${'a'.repeat(32)}`,
    `sha256${'a'.repeat(64)}`,
    '',
    `sha256:${'g'.repeat(64)}`,
  ]) {
    it(`rejects ${JSON.stringify(bad.slice(0, 20))}`, () => {
      assert.throws(
        () => parseDigest(bad),
        (e) => isLadingError(e, 'INVALID_DIGEST'),
      );
    });
  }

  it('digests bytes', () => assert.equal(digestOf('hello'), HELLO));

  it('passes matching content through', async () => {
    const out: Buffer[] = [];
    await pipeline(
      Readable.from([Buffer.from('hel'), Buffer.from('lo')]),
      new DigestVerifier(HELLO, 5),
      new Writable({
        write: (c, _e, cb) => {
          out.push(c);
          cb();
        },
      }),
    );
    assert.equal(Buffer.concat(out).toString(), 'hello');
  });

  it('fails on the wrong digest', async () => {
    await assert.rejects(pipeline(Readable.from([Buffer.from('hellO')]), new DigestVerifier(HELLO, 5), sink()), (e) =>
      isLadingError(e, 'DIGEST_MISMATCH'),
    );
  });

  it('fails on a short stream', async () => {
    await assert.rejects(pipeline(Readable.from([Buffer.from('hell')]), new DigestVerifier(HELLO, 5), sink()), (e) =>
      isLadingError(e, 'SIZE_MISMATCH'),
    );
  });

  it('fails early on a long stream, before hashing the excess', async () => {
    let pulled = 0;
    const endless = new Readable({
      read() {
        pulled++;
        this.push(Buffer.alloc(1024));
      },
    });
    await assert.rejects(pipeline(endless, new DigestVerifier(HELLO, 5), sink()), (e) => isLadingError(e, 'SIZE_MISMATCH'));
    assert.ok(pulled < 64, `read ${pulled} chunks of an endless stream`);
  });
});
