/**
 * Bad input to `lading build`: each case gets a clear error naming the spec line or the file, and
 * nothing is written (the --to layout does not exist afterwards).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { planBuild, writeBuild } from '../../src/build/build.js';
import { isLadingError } from '../../src/errors.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { lading } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { write } from './build-helpers.js';

const cache = await mkdtemp(join(tmpdir(), 'lading-build-cache-'));
after(() => rm(cache, { recursive: true, force: true }));
process.env.XDG_CACHE_HOME = cache;
delete process.env.SOURCE_DATE_EPOCH;

/** A context with a spec whose layer lists `files` (YAML flow entries), and some input files. */
async function context(files: string[], extra = ''): Promise<{ dir: string; spec: string; out: string }> {
  const dir = await tempDir();
  await write(join(dir, 'ctx/app'), 'app\n', 0o755);
  await write(join(dir, 'ctx/conf/a.conf'), 'a\n');
  await write(join(dir, 'outside.txt'), 'outside\n');
  const spec = join(dir, 'ctx/spec.yaml');
  await writeFile(spec, `base: scratch\nlayers:\n  - files:\n${files.map((f) => `      - ${f}\n`).join('')}${extra}`);
  return { dir, spec, out: join(dir, 'out') };
}

async function refused(args: string[], out: string, code: number, pattern: RegExp): Promise<void> {
  const r = await lading(...args);
  assert.equal(r.code, code, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.equal(r.stdout, '');
  assert.equal(existsSync(out), false, `${out} must not exist after a refused build`);
}

describe('lading build refuses bad input and writes nothing', () => {
  it('an unknown key, naming it and its line', async () => {
    const c = await context(['{src: ./app, dest: /app, mdoe: "0755"}']);
    await refused(['build', c.spec, '--to', `oci:${c.out}`], c.out, 1, /spec\.yaml line 4: unknown key "mdoe" in layers\[0\]\.files\[0\]/);
  });

  it('a src outside the spec directory, unless --allow-outside-context', async () => {
    const c = await context(['{src: ../outside.txt, dest: /o}']);
    await refused(
      ['build', c.spec, '--to', `oci:${c.out}`],
      c.out,
      1,
      /line 4: layers\[0\]\.files\[0\]: src \.\.\/outside\.txt is outside the spec's directory .*: move it inside, or pass --allow-outside-context/,
    );
    // A symlink inside the context that leads out is the same escape.
    await symlink('../outside.txt', join(c.dir, 'ctx/sneaky'));
    await writeFile(c.spec, 'base: scratch\nlayers:\n  - files: [{src: ./sneaky, dest: /o}]\n');
    await refused(['build', c.spec, '--to', `oci:${c.out}`], c.out, 1, /src \.\/sneaky is outside the spec's directory/);
    const r = await lading('build', c.spec, '--to', `oci:${c.out}`, '--allow-outside-context');
    assert.equal(r.code, 0, r.stderr);
  });

  it('a missing file, naming the platform it was looked for', async () => {
    const c = await context(['{src: "./app-${arch}", dest: /app}'], 'platforms: [linux/arm64]\n');
    await refused(
      ['build', c.spec, '--to', `oci:${c.out}`],
      c.out,
      1,
      /line 4: layers\[0\]\.files\[0\]: src \.\/app-arm64 does not exist \(for linux\/arm64/,
    );
  });

  it('duplicate destinations, from two entries or from a directory copy', async () => {
    const c = await context(['{src: ./app, dest: /usr/bin/app}', '{src: ./conf/a.conf, dest: /usr/bin/app}']);
    await refused(
      ['build', c.spec, '--to', `oci:${c.out}`],
      c.out,
      1,
      /line 5: layers\[0\]\.files\[1\]: \/usr\/bin\/app is given twice in this layer: by layers\[0\]\.files\[0\] \(line 4\) and by layers\[0\]\.files\[1\] \(line 5\); keep one/,
    );
    const d = await context(['{src: ./conf/, dest: /etc/conf}', '{src: ./app, dest: /etc/conf/a.conf}']);
    await refused(['build', d.spec, '--to', `oci:${d.out}`], d.out, 1, /\/etc\/conf\/a\.conf is given twice in this layer/);
    const e = await context(['{src: ./app, dest: /etc/x}', '{dest: /etc/x, type: directory}']);
    await refused(['build', e.spec, '--to', `oci:${e.out}`], e.out, 1, /\/etc\/x is given twice/);
  });

  it('a symlink loop in a src directory, and a src that is one', async () => {
    const c = await context(['{src: ./conf/, dest: /etc/conf}']);
    await symlink('loop-b', join(c.dir, 'ctx/conf/loop-a'));
    await symlink('loop-a', join(c.dir, 'ctx/conf/loop-b'));
    await refused(['build', c.spec, '--to', `oci:${c.out}`], c.out, 1, /line 4: .*conf\/loop-a \(in src \.\/conf\/\) is a symlink loop/);
    const d = await context(['{src: ./self, dest: /x}']);
    await symlink('self', join(d.dir, 'ctx/self'));
    await refused(['build', d.spec, '--to', `oci:${d.out}`], d.out, 1, /line 4: layers\[0\]\.files\[0\]: src \.\/self is a symlink loop/);
  });

  it('a file that changes while it is read', async () => {
    // /proc files say they are empty and then read as text: what a file growing under the reader looks like.
    const c = await context(['{src: /proc/version, dest: /version}']);
    await refused(
      ['build', c.spec, '--to', `oci:${c.out}`, '--allow-outside-context', '--no-cache'],
      c.out,
      1,
      /file changed while it was read: \/proc\/version/,
    );
  });

  it('a file that changes between the scan and the write (library)', async () => {
    const c = await context(['{src: ./app, dest: /app}']);
    const plan = await planBuild(c.spec, { cacheDir: false });
    await appendFile(join(c.dir, 'ctx/app'), 'more\n');
    const store = await LayoutStore.open(c.out, 'write');
    await assert.rejects(writeBuild(plan, store, ['v1'], { cacheDir: false }), (e: unknown) => {
      assert.ok(isLadingError(e, 'FILE_CHANGED'), String(e));
      assert.match(e.message, /file changed while it was read: .*ctx\/app/);
      return true;
    });
    await store.abort();
    await plan.close();
    assert.equal(existsSync(c.out), false);
  });

  it('things a spec cannot say', async () => {
    const c = await context(['{src: ./conf/, dest: /etc/conf, mode: "0600"}']);
    await refused(['build', c.spec, '--to', `oci:${c.out}`], c.out, 1, /line 4: .*mode applies to a single file/);
    const d = await context(['{src: ./conf/a.conf/, dest: /x}']);
    await refused(['build', d.spec, '--to', `oci:${d.out}`], d.out, 1, /ends with \/ but is a file/);
    const e = await context(['{dest: /link, type: hardlink, target: /nowhere}']);
    await refused(
      ['build', e.spec, '--to', `oci:${e.out}`],
      e.out,
      1,
      /line 4: .*hardlink target \/nowhere must be a regular file this build adds/,
    );
    const f = await context(['{src: ./app, dest: /bin}', '{src: ./conf/a.conf, dest: /bin/x}']);
    await refused(['build', f.spec, '--to', `oci:${f.out}`], f.out, 1, /line 5: .*bin is not a directory/);
    const p = await context(['{src: ./app, dest: /usr/bin/app}', '{src: ./conf/a.conf, dest: /usr}']);
    await refused(
      ['build', p.spec, '--to', `oci:${p.out}`],
      p.out,
      1,
      /line 5: .*\/usr is a directory here \(it holds \/usr\/bin\) and a file/,
    );
    const g = await context(['{src: ./fifo, dest: /fifo}']);
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [join(g.dir, 'ctx/fifo')]);
    await refused(
      ['build', g.spec, '--to', `oci:${g.out}`],
      g.out,
      1,
      /src \.\/fifo is a named pipe: only files, directories and symlinks/,
    );
    const h = await context([]);
    await writeFile(h.spec, 'base: scratch\n');
    await refused(['build', h.spec, '--to', `oci:${h.out}`], h.out, 1, /an image from scratch needs at least one layer/);
  });

  it('usage errors exit 2', async () => {
    const c = await context(['{src: ./app, dest: /app}']);
    await refused(['build', c.spec], c.out, 2, /give either --to REF .* or --check/);
    await refused(['build', c.spec, '--to', `oci:${c.out}`, '--check'], c.out, 2, /give either --to REF/);
    await refused(['build', c.spec, '--to', `oci:${c.out}@sha256:${'a'.repeat(64)}`], c.out, 2, /names a digest/);
    await refused(['build', c.spec, '--to', `oci:${c.out}`, '--compression', 'xz'], c.out, 2, /--compression xz: use gzip, zstd or none/);
    await refused(
      ['build', c.spec, '--to', `oci:${c.out}`, '--source-date-epoch', '-5'],
      c.out,
      2,
      /--source-date-epoch "-5" is not a time/,
    );
    await refused(['build', c.spec, '--to', `oci:${c.out}`, '--compression-level', '12'], c.out, 2, /invalid gzip level 12/);
    await refused(
      ['build', join(c.dir, 'nope.yaml'), '--to', `oci:${c.out}`],
      c.out,
      1,
      /cannot read the build spec .*nope\.yaml: no such file/,
    );
  });

  it('an archive target is not left half-written', async () => {
    const c = await context(['{src: ./missing, dest: /x}']);
    const archive = join(c.dir, 'out.tar');
    await refused(['build', c.spec, '--to', `oci-archive:${archive}:v1`], archive, 1, /does not exist/);
  });

  it('into an existing layout, a failed build leaves it as it was', async () => {
    const c = await context(['{src: ./app, dest: /app}']);
    const ok = await lading('build', c.spec, '--to', `oci:${c.out}:v1`);
    assert.equal(ok.code, 0, ok.stderr);
    const { snapshot } = await import('../helpers/tree.js');
    const before = await snapshot(c.out);
    await mkdir(join(c.dir, 'ctx/more'), { recursive: true });
    await writeFile(c.spec, 'base: scratch\nlayers:\n  - files: [{src: ./app, dest: /app}, {src: /proc/version, dest: /v}]\n');
    const r = await lading('build', c.spec, '--to', `oci:${c.out}:v2`, '--allow-outside-context', '--no-cache');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /file changed while it was read/);
    assert.equal(await snapshot(c.out), before);
  });
});
