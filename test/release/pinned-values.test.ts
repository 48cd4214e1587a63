/**
 * A Node/TypeScript tool locked to a release the installer's way: its markers live in string literals
 * (raw bytes, from markersModuleSource), survive `tsc`, get pinned in the built file, and the running
 * program reads them back with pinnedValue; readPinnedValues scans a file for them.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { isLadingError } from '../../src/errors.js';
import { MARKERS } from '../../src/release/markers.js';
import { pinFile } from '../../src/release/pin.js';
import { markersModuleSource, pinnedValue, readPinnedValues } from '../../src/release/pinned-values.js';
import { ladingOk, run } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { DIGEST_A } from './markers.js';

const PULLSPEC = `registry.example/tools/release@${DIGEST_A}`;

/** Compiles the generated module with the TypeScript compiler, as a tool's build would. */
function compile(source: Buffer): string {
  return ts.transpileModule(source.toString('latin1'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
}

const MAIN = `
import { RELEASE_IMAGE, RELEASE_VERSION, RELEASE_ARCHITECTURE } from './release-markers.mjs';
function read(constant) {
  if (constant.startsWith('\\0_RELEASE_')) return 'unpatched';
  return constant.slice(0, constant.indexOf('\\0'));
}
console.log(JSON.stringify([read(RELEASE_IMAGE), read(RELEASE_VERSION), read(RELEASE_ARCHITECTURE)]));
`;

describe('pinned values for Node and TypeScript tools', () => {
  it('the generated module keeps raw markers through tsc, is pinned in the built file, and the program reads its values', async () => {
    const dir = await tempDir();
    const built = compile(markersModuleSource());
    for (const k of ['image', 'version', 'arch'] as const) assert.ok(Buffer.from(built, 'latin1').includes(MARKERS[k].bytes), k);
    const markersJs = join(dir, 'release-markers.mjs');
    await writeFile(markersJs, Buffer.from(built, 'latin1'));
    await writeFile(join(dir, 'main.mjs'), MAIN);
    const before = await run(process.execPath, [join(dir, 'main.mjs')]);
    assert.deepEqual(JSON.parse(before.stdout), ['unpatched', 'unpatched', 'unpatched']);

    await ladingOk('pin', markersJs, '--release-image', PULLSPEC, '--release-version', '1.2.3', '--arch', 'linux/arm64');
    const after = await run(process.execPath, [join(dir, 'main.mjs')]);
    assert.equal(after.stderr, '');
    assert.deepEqual(JSON.parse(after.stdout), [PULLSPEC, '1.2.3', 'linux/arm64']);
    assert.equal((await readFile(markersJs)).length, Buffer.from(built, 'latin1').length);
    assert.deepEqual(await readPinnedValues(markersJs), {
      image: { state: 'pinned', value: PULLSPEC, offset: built.indexOf('\0_RELEASE_IMAGE') },
      version: { state: 'pinned', value: '1.2.3', offset: built.indexOf('\0_RELEASE_VERSION') },
      arch: { state: 'pinned', value: 'linux/arm64', offset: built.indexOf('\0_RELEASE_ARCHITECTURE') },
    });
  });

  it('lading pin --write-markers-module writes that module, which --show finds unpatched', async () => {
    const dir = await tempDir();
    const file = join(dir, 'release-markers.ts');
    await ladingOk('pin', '--write-markers-module', file);
    assert.deepEqual(await readFile(file), markersModuleSource());
    const shown = await ladingOk('pin', '--show', file);
    assert.match(shown, /^release image: +unpatched/m);
    assert.match(shown, /^release architecture: +unpatched/m);
  });

  it('pinnedValue reads a constant as the installer does', async () => {
    const dir = await tempDir();
    const file = join(dir, 'm.ts');
    await writeFile(file, markersModuleSource());
    const constant = (name: string) => {
      const text = ts.transpileModule(markersModuleSource().toString('latin1'), {}).outputText;
      const m = new RegExp(`${name} = '([^']*)'`).exec(text);
      return m![1]!;
    };
    assert.deepEqual(pinnedValue(constant('RELEASE_IMAGE'), 'image'), { state: 'unpatched' });
    await pinFile(file, { releaseImage: PULLSPEC });
    const pinned = (await readFile(file, 'latin1')).match(/RELEASE_IMAGE: string = '([^']*)'/)![1]!;
    assert.deepEqual(pinnedValue(pinned, 'image'), { state: 'pinned', value: PULLSPEC });
    assert.throws(
      () => pinnedValue('x'.repeat(327), 'image'),
      (e: unknown) => isLadingError(e, 'INVALID_PINNED_VALUE') && /without a NUL terminator within 327 bytes/.test(e.message),
    );
    assert.throws(() => pinnedValue(`\0${'X'.repeat(326)}`, 'image'), /the release image is empty/);
  });
});
