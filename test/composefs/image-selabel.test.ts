/**
 * SELinux labels in the bootable composefs tree, from the image's own policy as composefs-rs applies
 * it: the last matching rule wins (file_contexts, then .local, then .homedirs), file-type rules, <<none>>,
 * exact-path aliases from .subs/.subs_dist, hardlinks split when their names get different labels, and
 * every label stripped when there is no policy.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeDump } from '../../src/composefs/dump.js';
import { imageComposefs } from '../../src/composefs/image-digest.js';
import { isLadingError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { BASE, bytes, dumpLines, tree, withLayout, writeImage } from './image-helpers.js';

const FILES = 'etc/selinux/targeted/contexts/files';
const ctx = (t: string) => `system_u:object_r:${t}:s0`;

const FILE_CONTEXTS = [
  '# the base policy',
  `/\t\t${ctx('root_t')}`,
  `/usr\t\t${ctx('usr_t')}`,
  `/usr/bin(/.*)?\t\t${ctx('bin_t')}`,
  `/etc(/.*)?\t\t${ctx('etc_t')}`,
  `/etc/shadow\t--\t${ctx('shadow_t')}`,
  `/usr/lib/none(/.*)?\t<<none>>`,
  `/usr/lib/link\t-l\t${ctx('link_t')}`,
  `/opt/[[:alpha:]]+\t-d\t${ctx('opt_t')}`,
  '',
].join('\n');

function labelOf(lines: Map<string, string[]>, path: string): string | undefined {
  const x = lines
    .get(path)!
    .slice(11)
    .find((f) => f.startsWith('security.selinux='));
  return x?.slice('security.selinux='.length);
}

async function bootable(layout: string, tag: string) {
  return withLayout(layout, tag, (store, desc) => imageComposefs(store, desc, { algorithm: 'sha256', formatVersion: 1, bootable: true }));
}

describe('SELinux labels of a bootable composefs tree', () => {
  it('labels every file from the image policy, as composefs-rs does', async () => {
    const dir = await tempDir();
    const layout = join(dir, 'layout');
    const t = tree({
      ...BASE,
      'etc/selinux/config': '# config\nSELINUX=enforcing\n SELINUXTYPE = targeted \n',
      [`${FILES}/file_contexts`]: FILE_CONTEXTS,
      [`${FILES}/file_contexts.local`]: `/usr/bin/special\t${ctx('special_t')}\n`,
      [`${FILES}/file_contexts.subs_dist`]: '/usr/sbin /usr/bin\n# comment\n',
      'usr/bin/tool': bytes(200, 1),
      'usr/bin/special': 'x',
      'usr/sbin/daemon': bytes(300, 2),
      'usr/lib/none/x': 'n',
      'usr/lib/link': { type: 'symlink', linkTarget: 'none/x' },
      'usr/lib/plain': 'p',
      'etc/shadow': 'secret',
      'etc/passwd': 'root:x:0:0',
      'opt/abc': { type: 'directory' },
      'opt/a1': { type: 'directory' },
      'boot/vmlinuz': bytes(100, 3),
    });
    t.set({ ...t.get('usr/bin/tool')!, path: 'etc/tool-link', type: 'hardlink', linkTarget: 'usr/bin/tool' });
    t.set({ ...t.get('usr/lib/plain')!, path: 'usr/lib/plain-link', type: 'hardlink', linkTarget: 'usr/lib/plain' });
    // A host label in the layer: replaced by the policy's.
    t.get('usr/bin/special')!.xattrs.set('security.selinux', Buffer.from(ctx('container_t')));
    await writeImage(layout, 'os', [t]);
    const r = await bootable(layout, 'os');
    const lines = dumpLines(writeDump(r.tree));
    const expect: Record<string, string | undefined> = {
      '/': ctx('root_t'),
      '/usr': ctx('usr_t'),
      '/usr/bin': ctx('bin_t'),
      '/usr/bin/tool': ctx('bin_t'),
      '/usr/bin/special': ctx('special_t'), // .local comes after file_contexts
      '/usr/sbin': ctx('bin_t'), // aliased to /usr/bin
      '/usr/sbin/daemon': ctx('bin_t'),
      '/usr/lib': undefined,
      '/usr/lib/none/x': undefined, // <<none>>
      '/usr/lib/link': ctx('link_t'),
      '/etc/shadow': ctx('shadow_t'),
      '/etc/passwd': ctx('etc_t'),
      '/opt/abc': ctx('opt_t'),
      '/opt/a1': undefined, // [[:alpha:]]+ does not match a digit
      '/boot': undefined,
    };
    for (const [path, label] of Object.entries(expect)) assert.equal(labelOf(lines, path), label, path);
    // /usr/bin/tool and /etc/tool-link got different labels: two inodes now. /usr/lib/plain{,-link} stay one.
    assert.equal(lines.get('/usr/bin/tool')![3], '1');
    assert.deepEqual(
      [lines.get('/etc/tool-link')![2], lines.get('/etc/tool-link')![3], labelOf(lines, '/etc/tool-link')],
      ['100644', '1', ctx('etc_t')],
    );
    assert.equal(lines.get('/usr/lib/plain')![3], '2');
    assert.ok(lines.get('/usr/lib/plain-link')![2]!.startsWith('@'));
    assert.ok(!lines.has('/boot/vmlinuz'));

    // Without --bootable no labels at all (the xattr allowlist), and without a policy none either.
    const plain = await withLayout(layout, 'os', (store, desc) =>
      imageComposefs(store, desc, { algorithm: 'sha256', formatVersion: 1, bootable: false }),
    );
    assert.ok(!writeDump(plain.tree).includes('security.selinux'));
    await writeImage(layout, 'nopolicy', [
      tree({ ...BASE, 'usr/bin/x': { data: 'x', xattrs: new Map([['security.selinux', Buffer.from(ctx('x_t'))]]) } }),
    ]);
    assert.ok(!writeDump((await bootable(layout, 'nopolicy')).tree).includes('security.selinux'));
  });

  it('refuses a policy it cannot read, naming the file', async () => {
    const dir = await tempDir();
    const layout = join(dir, 'layout');
    const config = { 'etc/selinux/config': 'SELINUXTYPE=targeted\n' };
    await writeImage(layout, 'missing', [tree({ ...BASE, ...config, 'etc/selinux/targeted/contexts/files/other': 'x' })]);
    await writeImage(layout, 'badtype', [tree({ ...BASE, ...config, [`${FILES}/file_contexts`]: '/x\t-z\tctx\n' })]);
    await writeImage(layout, 'badre', [tree({ ...BASE, ...config, [`${FILES}/file_contexts`]: '/x(\tctx\n' })]);
    const fails = async (tag: string, pattern: RegExp) =>
      assert.rejects(bootable(layout, tag), (e: unknown) => isLadingError(e, 'UNSUPPORTED_TREE') && pattern.test(e.message));
    await fails('missing', /file_contexts is missing/);
    await fails('badtype', /file_contexts line 1: invalid file type -z/);
    await fails('badre', /pattern \/x\( is not a regular expression/);
  });
});
