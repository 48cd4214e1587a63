/**
 * The simple-signing payload: what Lading writes (byte for byte what containers/image writes for the
 * same fields) and how strictly it reads: every way a payload can be tampered with is refused with the
 * reason.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { ATOMIC_SIGNATURE_TYPE, buildPayload, parsePayload } from '../../src/sign/simple-signing.js';
import { parseJsonNoDuplicates } from '../../src/sign/strict-json.js';

const D = `sha256:${'ab'.repeat(32)}`;
const enc = (s: string) => new TextEncoder().encode(s);

function refuses(text: string, pattern: RegExp): void {
  assert.throws(
    () => parsePayload(enc(text)),
    (e: unknown) => isLadingError(e, 'SIGNATURE') && pattern.test(e.message),
    `expected ${pattern} for ${text}`,
  );
}

const valid = (critical: string, optional = '{}') => `{"critical":${critical},"optional":${optional}}`;
const crit = (extra = '', type = `"${ATOMIC_SIGNATURE_TYPE}"`, digest = `"${D}"`) =>
  `{"type":${type},"image":{"docker-manifest-digest":${digest}},"identity":{"docker-reference":"quay.io/a/b:1"}${extra}}`;

describe('simple-signing payload', () => {
  it('is written with sorted keys and no whitespace, as containers/image writes it', () => {
    const bytes = buildPayload({ digest: D, identity: 'quay.io/a/b:1', creator: 'lading 0.1.0', timestamp: 1700000000 });
    assert.equal(
      Buffer.from(bytes).toString(),
      `{"critical":{"identity":{"docker-reference":"quay.io/a/b:1"},"image":{"docker-manifest-digest":"${D}"},"type":"atomic container signature"},"optional":{"creator":"lading 0.1.0","timestamp":1700000000}}`,
    );
    assert.deepEqual(parsePayload(bytes), {
      type: ATOMIC_SIGNATURE_TYPE,
      digest: D,
      identity: 'quay.io/a/b:1',
      creator: 'lading 0.1.0',
      timestamp: 1700000000,
    });
  });

  it('escapes like Go (so the bytes match a Go signer for odd identities too)', () => {
    const bytes = buildPayload({ digest: D, identity: 'a<b', creator: 'x&y' });
    assert.match(Buffer.from(bytes).toString(), /"a\\u003cb".*"x\\u0026y"/);
  });

  it('reads the pretty-printed, differently ordered payloads other signers write', () => {
    const text = `{\n "critical": {\n  "image": {"docker-manifest-digest": "${D}"},\n  "type": "atomic container signature",\n  "identity": {"docker-reference": "r/x:1"}\n },\n "optional": {"creator": "c", "unknown-optional": [1,2]}\n}`;
    const p = parsePayload(enc(text));
    assert.equal(p.digest, D);
    assert.equal(p.creator, 'c');
    assert.equal(p.timestamp, undefined);
  });

  it('refuses an extra member in critical', () => refuses(valid(crit(',"evil":1')), /critical has an unknown member "evil"/));
  it('refuses a wrong type', () =>
    refuses(valid(crit('', '"cosign container image signature"')), /critical.type is "cosign container image signature"/));
  it('refuses a type that is not a string', () => refuses(valid(crit('', '7')), /critical.type is not a string/));
  it('refuses a malformed digest', () =>
    refuses(valid(crit('', undefined, '"sha256:xyz"')), /docker-manifest-digest "sha256:xyz" is not a valid digest/));
  it('refuses a digest that is not a string', () => refuses(valid(crit('', undefined, '12')), /docker-manifest-digest is not a string/));
  it('refuses a missing member', () =>
    refuses(valid(`{"type":"${ATOMIC_SIGNATURE_TYPE}","image":{"docker-manifest-digest":"${D}"}}`), /critical has no "identity" member/));
  it('refuses an extra member in image', () =>
    refuses(
      valid(`{"type":"${ATOMIC_SIGNATURE_TYPE}","image":{"docker-manifest-digest":"${D}","x":1},"identity":{"docker-reference":"a/b:1"}}`),
      /critical.image has an unknown member "x"/,
    ));
  it('refuses an empty identity', () =>
    refuses(
      valid(`{"type":"${ATOMIC_SIGNATURE_TYPE}","image":{"docker-manifest-digest":"${D}"},"identity":{"docker-reference":""}}`),
      /docker-reference is empty/,
    ));
  it('refuses an extra top-level member', () =>
    refuses(`{"critical":${crit()},"optional":{},"more":1}`, /the payload has an unknown member "more"/));
  it('refuses a missing optional', () => refuses(`{"critical":${crit()}}`, /the payload has no "optional" member/));
  it('refuses a creator that is not a string', () => refuses(valid(crit(), '{"creator":1}'), /optional.creator is not a string/));
  it('refuses a timestamp that is not an integer', () =>
    refuses(valid(crit(), '{"timestamp":1.5}'), /optional.timestamp is not an integer/));
  it('refuses a repeated key (two digests)', () =>
    refuses(
      valid(
        `{"type":"${ATOMIC_SIGNATURE_TYPE}","image":{"docker-manifest-digest":"${D}","docker-manifest-digest":"sha256:${'cd'.repeat(32)}"},"identity":{"docker-reference":"a/b:1"}}`,
      ),
      /duplicate key "docker-manifest-digest"/,
    ));
  it('refuses JSON that is not an object, and non-JSON', () => {
    refuses('[1]', /the payload is not an object/);
    refuses('{"critical":', /not valid JSON/);
    assert.throws(() => parsePayload(new Uint8Array([0xff, 0xfe])), /not UTF-8/);
  });
  it('accepts the cosign type when asked for it', () => {
    const text = valid(crit('', '"cosign container image signature"'));
    assert.equal(parsePayload(enc(text), 'cosign container image signature').type, 'cosign container image signature');
  });
  it('will not build a payload for a bad digest or an empty identity', () => {
    assert.throws(() => buildPayload({ digest: 'sha256:1', identity: 'a/b:1' }), /not a valid digest/);
    assert.throws(() => buildPayload({ digest: D, identity: '' }), /identity is empty/);
  });
});

describe('duplicate-key JSON check', () => {
  it('finds repeats at any depth, not across objects or inside strings', () => {
    assert.deepEqual(parseJsonNoDuplicates('{"a":{"b":1},"c":{"b":2},"d":"\\"a\\":1,"}'), { a: { b: 1 }, c: { b: 2 }, d: '"a":1,' });
    assert.deepEqual(parseJsonNoDuplicates('[{"a":1},{"a":2}]'), [{ a: 1 }, { a: 2 }]);
    assert.throws(() => parseJsonNoDuplicates('{"x":[{"a":1,"a":2}]}'), /duplicate key "a"/);
    assert.throws(() => parseJsonNoDuplicates('{"\\u0061":1,"a":2}'), /duplicate key "a"/);
  });
});
