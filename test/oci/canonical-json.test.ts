import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalJson, canonicalJsonBytes } from '../../src/oci/canonical-json.js';

describe('canonicalJson', () => {
  it('sorts keys at every depth and writes no whitespace', () => {
    const value = { z: 1, a: { y: [3, { d: 1, c: 2 }], b: true }, m: null };
    assert.equal(canonicalJson(value), '{"a":{"b":true,"y":[3,{"c":2,"d":1}]},"m":null,"z":1}');
  });

  it('orders keys by UTF-16 code units, not by code point or locale', () => {
    // By code point U+FF61 sorts before U+1F600; in UTF-16 the emoji's surrogate 0xd83d comes first.
    const obj = Object.fromEntries(['a', 'é', 'B', '\uff61', '😀', '10', '9'].map((k) => [k, 0]));
    assert.equal(canonicalJson(obj), '{"10":0,"9":0,"B":0,"a":0,"é":0,"😀":0,"\uff61":0}');
  });

  it('keeps array order, including nested arrays', () => {
    assert.equal(canonicalJson([[3, 1], [], [[2]], 'x']), '[[3,1],[],[[2]],"x"]');
  });

  it('omits undefined properties but refuses undefined array elements', () => {
    assert.equal(canonicalJson({ a: undefined, b: 1 }), '{"b":1}');
    assert.throws(() => canonicalJson([1, undefined]), TypeError);
    assert.throws(() => canonicalJson(undefined), TypeError);
  });

  it('escapes <, > and & as Go does, plus U+2028/U+2029', () => {
    assert.equal(canonicalJson('a<b>&c'), '"a\\u003cb\\u003e\\u0026c"');
    assert.equal(canonicalJson('\u2028\u2029'), '"\\u2028\\u2029"');
    assert.equal(canonicalJson({ '<k>': '&' }), '{"\\u003ck\\u003e":"\\u0026"}');
  });

  it('escapes quotes, backslashes and control characters like Go 1.22+', () => {
    assert.equal(canonicalJson('"\\'), '"\\"\\\\"');
    assert.equal(canonicalJson('\b\f\n\r\t'), '"\\b\\f\\n\\r\\t"');
    assert.equal(canonicalJson('\u0000\u0001\u001f\u007f'), '"\\u0000\\u0001\\u001f\u007f"');
    assert.equal(canonicalJson('/'), '"/"');
  });

  it('writes non-ASCII unicode literally and round-trips', () => {
    const s = 'héllo ✓ 日本 😀';
    assert.equal(canonicalJson(s), `"${s}"`);
    assert.equal(JSON.parse(canonicalJson({ s })).s, s);
    assert.deepEqual([...canonicalJsonBytes('é')], [0x22, 0xc3, 0xa9, 0x22]);
  });

  it('refuses lone surrogates, which have no UTF-8 encoding', () => {
    assert.throws(() => canonicalJson('\ud800'), TypeError);
    assert.throws(() => canonicalJson({ '\udc00': 1 }), TypeError);
  });

  it('writes numbers as JSON does and refuses non-finite or imprecise ones', () => {
    assert.equal(canonicalJson([0, -0, 1.5, -2, 1e-7, 2 ** 53 - 1]), '[0,0,1.5,-2,1e-7,9007199254740991]');
    assert.equal(canonicalJson(2n ** 63n - 1n), '9223372036854775807');
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 60]) {
      assert.throws(() => canonicalJson({ n: bad }), TypeError, String(bad));
    }
  });

  it('refuses non-plain objects, functions, symbols and cycles', () => {
    for (const bad of [new Map(), new Set(), new Date(0), Buffer.from('x'), new Uint8Array(1), new (class X {})(), () => 1, Symbol('s')]) {
      assert.throws(() => canonicalJson({ v: bad }), TypeError);
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => canonicalJson(cyclic), /cycle/);
    const shared = { x: 1 };
    assert.equal(canonicalJson([shared, shared]), '[{"x":1},{"x":1}]');
    assert.equal(canonicalJson(Object.assign(Object.create(null) as object, { b: 1, a: 2 })), '{"a":2,"b":1}');
  });

  it('encodes to UTF-8 bytes equal to the string', () => {
    const v = { mediaType: 'application/vnd.oci.image.manifest.v1+json', schemaVersion: 2 };
    assert.equal(new TextDecoder().decode(canonicalJsonBytes(v)), canonicalJson(v));
  });
});
