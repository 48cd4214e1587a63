/**
 * The build spec parser: every mistake names its line (and the key, for an unknown key); values YAML
 * would silently retype are refused or read from their source text; the accepted shape parses to what
 * the build uses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSpec, substitute } from '../../src/build/spec.js';
import { isLadingError } from '../../src/errors.js';

const PATH = '/work/ctx/spec.yaml';

function fails(text: string, pattern: RegExp): void {
  assert.throws(
    () => parseSpec(text, PATH),
    (e: unknown) => {
      assert.ok(isLadingError(e, 'INVALID_SPEC'), `expected INVALID_SPEC, got ${String(e)}`);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

describe('build spec', () => {
  it('parses the example of the issue', () => {
    const spec = parseSpec(
      `base: scratch
platforms: [linux/amd64, linux/arm64]
layers:
  - files:
      - {src: "./bin/app-linux-\${arch}", dest: /usr/bin/app, mode: "0755"}
      - {src: ./config/, dest: /etc/app/}
  - files:
      - {dest: /var/lib/app, type: directory, uid: 65532, gid: 65532}
      - {dest: /usr/bin/app2, type: symlink, target: app}
      - {dest: /usr/bin/app3, type: hardlink, target: /usr/bin/app}
config:
  entrypoint: ["/usr/bin/app"]
  env: {PATH: /usr/bin}
  user: "65532"
  workdir: /
  labels: {org.opencontainers.image.source: https://example.com/app}
  exposedPorts: [8080, 53/udp]
  volumes: [/data]
  stopSignal: SIGTERM
annotations: {org.opencontainers.image.version: "1.0.0"}
`,
      PATH,
    );
    assert.equal(spec.dir, '/work/ctx');
    assert.deepEqual(spec.base, { kind: 'scratch' });
    assert.deepEqual(spec.platforms, [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ]);
    assert.equal(spec.layers.length, 2);
    assert.deepEqual(spec.layers[0]!.files[0], {
      line: 5,
      at: 'layers[0].files[0]',
      kind: 'copy',
      src: './bin/app-linux-${arch}',
      dest: 'usr/bin/app',
      destIsDir: false,
      mode: 0o755,
    });
    assert.deepEqual(spec.layers[0]!.files[1], {
      line: 6,
      at: 'layers[0].files[1]',
      kind: 'copy',
      src: './config/',
      dest: 'etc/app',
      destIsDir: true,
    });
    assert.deepEqual(
      spec.layers[1]!.files.map((f) => f.kind),
      ['directory', 'symlink', 'hardlink'],
    );
    assert.deepEqual(spec.layers[1]!.files[0], {
      line: 8,
      at: 'layers[1].files[0]',
      kind: 'directory',
      dest: 'var/lib/app',
      uid: 65532,
      gid: 65532,
    });
    assert.deepEqual(spec.layers[1]!.files[2], {
      line: 10,
      at: 'layers[1].files[2]',
      kind: 'hardlink',
      dest: 'usr/bin/app3',
      target: 'usr/bin/app',
    });
    assert.deepEqual(spec.config, {
      entrypoint: ['/usr/bin/app'],
      env: [['PATH', '/usr/bin']],
      user: '65532',
      workdir: '/',
      labels: { 'org.opencontainers.image.source': 'https://example.com/app' },
      exposedPorts: ['8080/tcp', '53/udp'],
      volumes: ['/data'],
      stopSignal: 'SIGTERM',
    });
    assert.deepEqual(spec.annotations, { 'org.opencontainers.image.version': '1.0.0' });
  });

  it('names an unknown key and its line, at every level', () => {
    fails(
      'base: scratch\nplatfroms: [linux/amd64]\n',
      /spec\.yaml line 2: unknown key "platfroms" in the spec: allowed keys are base, platforms/,
    );
    fails('base: scratch\nlayers:\n  - files: []\n    comment: x\n', /line 4: unknown key "comment" in layers\[0\]/);
    fails(
      'base: scratch\nlayers:\n  - files:\n      - src: a\n        dest: /a\n        owner: root\n',
      /line 6: unknown key "owner" in layers\[0\]\.files\[0\]/,
    );
    fails('base: scratch\nconfig:\n  Entrypoint: [a]\n', /line 3: unknown key "Entrypoint" in config/);
  });

  it('reads mode as octal whether or not it is quoted (YAML 1.2 would read 0755 as decimal)', () => {
    const modes = ['0755', '"0755"', '755', "'0644'", '0o750', '4755'].map(
      (m) =>
        (
          parseSpec(`base: scratch\nlayers:\n  - files:\n      - {src: a, dest: /a, mode: ${m}}\n`, PATH).layers[0]!.files[0] as {
            mode: number;
          }
        ).mode,
    );
    assert.deepEqual(modes, [0o755, 0o755, 0o755, 0o644, 0o750, 0o4755]);
    fails(
      'base: scratch\nlayers:\n  - files:\n      - {src: a, dest: /a, mode: 0789}\n',
      /line 4: layers\[0\]\.files\[0\]\.mode: "0789" is not an octal mode/,
    );
    fails('base: scratch\nlayers:\n  - files:\n      - {src: a, dest: /a, mode: rwx}\n', /not an octal mode/);
  });

  it('refuses values YAML would retype, and wrong shapes, with their line', () => {
    fails('base: scratch\nconfig:\n  env: {VERSION: 1.10}\n', /line 3: config\.env\.VERSION must be a string, not 1\.10: quote it/);
    fails('base: scratch\nannotations:\n  a: true\n', /line 3: annotations\.a must be a string/);
    fails('base: scratch\nconfig:\n  entrypoint: /usr/bin/app\n', /line 3: config\.entrypoint must be a list of strings/);
    fails(
      'base: scratch\nlayers:\n  - files:\n      - {src: a, dest: /a, uid: -1}\n',
      /line 4: layers\[0\]\.files\[0\]\.uid must be a numeric id/,
    );
    fails('base: scratch\nlayers: {files: []}\n', /line 2: layers must be a list/);
    fails('base: scratch\nconfig:\n  exposedPorts: [http]\n', /"http" is not a port/);
    fails('base: [a]\n', /line 1: base must be a string/);
    fails('layers: []\n', /missing "base"/);
    fails('', /must be a mapping/);
    fails('base: scratch\nbase: scratch\n', /line 2: key "base" is given twice in the spec \(first on line 1\)/);
    fails('base: scratch\nconfig:\n  env:\n    A: "1"\n    A: "2"\n', /line 5: key "A" is given twice in config\.env \(first on line 4\)/);
    fails('base: scratch\nlayers: [\n', /spec\.yaml line \d+: not valid YAML: /);
  });

  it('checks each file entry for its type', () => {
    const entry = (body: string) => `base: scratch\nlayers:\n  - files:\n      - ${body}\n`;
    fails(entry('{dest: /a}'), /line 4: layers\[0\]\.files\[0\]: missing "src"/);
    fails(entry('{src: a}'), /missing "dest"/);
    fails(entry('{src: a, dest: relative/path}'), /"relative\/path" must be an absolute path in the image/);
    fails(entry('{src: a, dest: /../etc/x}'), /escapes the root/);
    fails(entry('{src: a, dest: /a, type: fifo}'), /"fifo" is not a type: use file, directory, symlink, hardlink/);
    fails(entry('{dest: /a, type: symlink}'), /missing "target"/);
    fails(entry('{dest: /a, type: symlink, target: b, mode: "0777"}'), /symlinks have no mode/);
    fails(entry('{dest: /a, type: hardlink, target: b}'), /"b" must be an absolute path/);
    fails(entry('{dest: /a, type: hardlink, target: /b, uid: 1}'), /a hardlink shares its target/);
    fails(entry('{dest: /a, type: directory, src: x}'), /a directory entry has no src/);
    fails(entry('{src: a, dest: /a, target: b}'), /only symlinks and hardlinks have a target/);
    fails(entry('{src: "app-${cpu}", dest: /a}'), /line 4: .*unknown variable \$\{cpu\}/);
    fails(entry('{src: a, dest: /}'), /name a path below \//);
  });

  it('knows scratch, pinned and floating bases', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    assert.deepEqual(parseSpec('base: scratch\n', PATH).base, { kind: 'scratch' });
    const pinned = parseSpec(`base: docker://reg.example/app@${digest}\n`, PATH).base;
    assert.equal(pinned.kind === 'image' && pinned.pinned, digest);
    const layout = parseSpec(`base: oci:../base@${digest}\n`, PATH).base;
    assert.ok(layout.kind === 'image' && layout.pinned === digest && layout.transport.transport === 'oci');
    const floating = parseSpec('base: docker://reg.example/app:1.0\n', PATH).base;
    assert.ok(floating.kind === 'image' && floating.pinned === undefined);
    fails('base: "docker://Bad Ref"\n', /line 1: base: invalid reference/);
  });

  it('refuses duplicate and malformed platforms', () => {
    fails('base: scratch\nplatforms: [linux/amd64, linux/x86_64]\n', /line 2: platforms\[1\]: linux\/x86_64 is listed twice/);
    fails('base: scratch\nplatforms: [amd64]\n', /invalid platform "amd64"/);
    fails('base: scratch\nplatforms: []\n', /list at least one/);
  });

  it('substitutes ${arch}, ${os} and ${variant}', () => {
    assert.equal(substitute('bin/${os}-${arch}${variant}', { os: 'linux', architecture: 'arm', variant: 'v7' }), 'bin/linux-armv7');
    assert.equal(substitute('bin/${os}-${arch}${variant}', { os: 'linux', architecture: 'amd64' }), 'bin/linux-amd64');
  });
});
