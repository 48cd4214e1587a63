import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { formatPlatform, hostPlatform, parsePlatform, platformMatches } from '../../src/oci/platform.js';
import type { Platform } from '../../src/oci/types.js';

describe('parsePlatform', () => {
  const rows: [string, string][] = [
    ['linux/amd64', 'linux/amd64'],
    ['linux/x86_64', 'linux/amd64'],
    ['linux/x86-64', 'linux/amd64'],
    ['linux/amd64/v1', 'linux/amd64'],
    ['linux/amd64/v3', 'linux/amd64/v3'],
    ['linux/arm64', 'linux/arm64'],
    ['linux/aarch64', 'linux/arm64'],
    ['linux/arm64/v8', 'linux/arm64/v8'],
    ['linux/arm64/8', 'linux/arm64/v8'],
    ['linux/arm64/v9.0', 'linux/arm64/v9'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/arm/7', 'linux/arm/v7'],
    ['linux/arm/v6', 'linux/arm/v6'],
    ['linux/arm/5', 'linux/arm/v5'],
    ['linux/armhf', 'linux/arm/v7'],
    ['linux/armel', 'linux/arm/v6'],
    ['linux/i386', 'linux/386'],
    ['LINUX/AMD64', 'linux/amd64'],
    ['macos/arm64', 'darwin/arm64'],
    ['windows/amd64', 'windows/amd64'],
    ['linux/ppc64le', 'linux/ppc64le'],
    ['linux/s390x', 'linux/s390x'],
    ['linux/riscv64', 'linux/riscv64'],
  ];
  for (const [input, want] of rows) {
    it(`${input} -> ${want}`, () => assert.equal(formatPlatform(parsePlatform(input)), want));
  }

  for (const bad of ['', 'linux', 'linux/', '/amd64', 'linux/amd64/v8/x', 'linux/amd 64', 'linux//v7', 'linux/amd64/']) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => parsePlatform(bad),
        (e) => isLadingError(e, 'USAGE') && e.message.includes('OS/ARCH'),
      );
    });
  }
});

describe('platformMatches', () => {
  const p = (os: string, architecture: string, variant?: string): Platform => ({ os, architecture, ...(variant && { variant }) });
  const rows: [string, Platform, boolean][] = [
    ['linux/amd64', p('linux', 'amd64'), true],
    ['linux/amd64', p('linux', 'arm64'), false],
    ['linux/amd64', p('windows', 'amd64'), false],
    ['linux/x86_64', p('linux', 'amd64'), true],
    ['linux/arm64', p('linux', 'arm64', 'v8'), true],
    ['linux/arm64/v8', p('linux', 'arm64'), true],
    ['linux/aarch64', p('linux', 'arm64', 'v8'), true],
    ['linux/arm64', p('linux', 'arm64', 'v9'), false],
    ['linux/arm', p('linux', 'arm', 'v7'), true],
    ['linux/arm/v7', p('linux', 'arm'), true],
    ['linux/armhf', p('linux', 'arm'), true],
    ['linux/arm/v6', p('linux', 'arm'), false],
    ['linux/armel', p('linux', 'arm', 'v6'), true],
    ['linux/arm/v7', p('linux', 'arm', 'v6'), false],
    ['linux/amd64', p('linux', 'amd64', 'v1'), true],
    ['linux/amd64', p('linux', 'amd64', 'v3'), false],
    ['linux/386', p('linux', 'i386'), true],
    ['linux/amd64', p('Linux', 'AMD64'), true],
  ];
  for (const [want, have, expected] of rows) {
    it(`${want} ${expected ? 'matches' : 'does not match'} ${formatPlatform(have)}`, () => {
      assert.equal(platformMatches(parsePlatform(want), have), expected);
      assert.equal(platformMatches(have, parsePlatform(want)), expected, 'symmetric');
    });
  }
});

describe('hostPlatform', () => {
  it('names this machine in Go terms', () => {
    const host = hostPlatform();
    const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386' };
    if (arch[process.arch] !== undefined) assert.equal(host.architecture, arch[process.arch]);
    if (process.platform === 'linux' || process.platform === 'darwin') assert.equal(host.os, 'linux');
    assert.equal(host.architecture === 'arm64' ? host.variant : undefined, undefined);
    assert.ok(platformMatches(host, parsePlatform(formatPlatform(host))));
  });
});
