/**
 * Reading bound-image declarations. bootc's own unit tests (boundimage.rs: test_parse_image_file,
 * test_parse_container_file, test_parse_spec_dir) come first, then the cases bootc leaves out. Every case
 * runs against a directory on disk and against a FileTree, and both must agree.
 */
import assert from 'node:assert/strict';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type BoundImage, readBoundImages, scanBoundImages } from '../../src/boot/bound-images/bound-images.js';
import type { RootView } from '../../src/boot/bound-images/root-view.js';
import { isLadingError } from '../../src/errors.js';
import { bothRoots, hostRoot, type RootSpec, treeRoot } from './root-builder.js';

const DIR = 'usr/lib/bootc/bound-images.d';
const SYS = 'usr/share/containers/systemd';
const ETC = 'etc/containers/systemd';
const D = `sha256:${'ab'.repeat(32)}`;

/** A root with one unit file at usr/share/containers/systemd/NAME, linked from bound-images.d. */
function oneUnit(name: string, text: string, extra: RootSpec = {}): RootSpec {
  return { [`${SYS}/${name}`]: text, [`${DIR}/${name}`]: { link: `/${SYS}/${name}` }, ...extra };
}

/** Runs `check` against both views of `spec`, with an empty host root unless one is given. */
async function each(spec: RootSpec, check: (view: RootView, label: string) => Promise<void>): Promise<void> {
  for (const [label, view] of await bothRoots(spec)) await check(view, label);
}

async function images(view: RootView, host: RootView = treeRoot({})): Promise<string[]> {
  return (await readBoundImages(view, { hostRoot: host })).map((b) => b.image);
}

async function fails(view: RootView, message: string | RegExp, host: RootView = treeRoot({})): Promise<void> {
  await assert.rejects(readBoundImages(view, { hostRoot: host }), (e: unknown) => {
    assert.ok(isLadingError(e, 'INVALID_BOUND_IMAGE'), String(e));
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

describe("bootc's unit tests", () => {
  it('test_parse_image_file: Image= is read; a missing one is an error', async () => {
    await each(oneUnit('foo.image', '[Image]\nImage=quay.io/foo/foo:latest'), async (v) => {
      const [b] = await readBoundImages(v, { hostRoot: treeRoot({}) });
      assert.equal(b?.image, 'quay.io/foo/foo:latest');
      assert.equal(b?.authFile, undefined);
    });
    await each(oneUnit('foo.image', '[Image]\n'), (v) =>
      fails(v, `bound image /${DIR}/foo.image: /${SYS}/foo.image has no Image= in its [Image] section`),
    );
  });

  it('test_parse_image_file: AuthFile=/etc/containers/auth.json with no such file is an error (bootc refuses any AuthFile)', async () => {
    await each(oneUnit('foo.image', '[Image]\nImage=quay.io/foo/foo:latest\nAuthFile=/etc/containers/auth.json'), (v) =>
      fails(
        v,
        new RegExp(
          `^bound image /${DIR}/foo.image: /${SYS}/foo.image: AuthFile=/etc/containers/auth.json is in neither the image \\(/etc/containers/auth.json in .+\\) nor the host \\(/etc/containers/auth.json in test image\\)$`,
        ),
      ),
    );
  });

  it('test_parse_container_file', async () => {
    await each(oneUnit('foo.container', '[Container]\nImage=quay.io/foo/foo:latest'), async (v) => {
      assert.deepEqual(await images(v), ['quay.io/foo/foo:latest']);
    });
    await each(oneUnit('foo.container', '[Container]\n'), (v) =>
      fails(v, `bound image /${DIR}/foo.container: /${SYS}/foo.container has no Image= in its [Container] section`),
    );
  });

  it('test_parse_spec_dir', async () => {
    await each({}, async (v) => assert.deepEqual(await images(v), []));
    await each({ [DIR]: { dir: true }, [SYS]: { dir: true } }, async (v) => assert.deepEqual(await images(v), []));
    const two: RootSpec = {
      [`${SYS}/foo.image`]: '[Image]\nImage=quay.io/foo/foo:latest',
      [`${SYS}/bar.image`]: '[Image]\nImage=quay.io/bar/bar:latest',
      [`${DIR}/foo.image`]: { link: `/${SYS}/foo.image` },
      [`${DIR}/bar.image`]: { link: `/${SYS}/bar.image` },
    };
    await each(two, async (v) => assert.deepEqual(await images(v), ['quay.io/bar/bar:latest', 'quay.io/foo/foo:latest']));
    await each({ ...two, [`${DIR}/blah.image`]: { link: '/blah' } }, (v) =>
      fails(v, `bound image /${DIR}/blah.image: dangling link to /blah: /blah does not exist`),
    );
    await each({ ...two, 'error.image': '[Image]\n', [`${DIR}/error.image`]: { link: '/error.image' } }, (v) =>
      fails(v, `bound image /${DIR}/error.image: /error.image has no Image= in its [Image] section`),
    );
  });
});

describe('entries in bound-images.d', () => {
  it('must be symlinks', async () => {
    await each({ [`${DIR}/plain.image`]: '[Image]\nImage=quay.io/a:1\n' }, (v) =>
      fails(v, `bound image /${DIR}/plain.image: not a symlink: bound images are declared by symlinks to .image or .container files`),
    );
  });

  it('must be named .image or .container, and point at a file of that kind', async () => {
    await each(oneUnit('a.image', '[Image]\nImage=quay.io/a:1\n', { [`${DIR}/a.conf`]: { link: `/${SYS}/a.image` } }), (v) =>
      fails(v, `bound image /${DIR}/a.conf: invalid file extension: the link must be named NAME.image or NAME.container`),
    );
    await each({ [`${SYS}/a.container`]: '[Container]\nImage=quay.io/a:1\n', [`${DIR}/a.image`]: { link: `/${SYS}/a.container` } }, (v) =>
      fails(v, `bound image /${DIR}/a.image: the link points at /${SYS}/a.container, which is not a .image file`),
    );
  });

  it('may not point at a directory or dangle in the middle of the path', async () => {
    await each({ [`${SYS}/d.image`]: { dir: true }, [`${DIR}/d.image`]: { link: `/${SYS}/d.image` } }, (v) =>
      fails(v, `bound image /${DIR}/d.image: the link points at /${SYS}/d.image, which is not a regular file`),
    );
    await each({ [`${DIR}/m.image`]: { link: '../../../../missing/dir/m.image' } }, (v) =>
      fails(v, `bound image /${DIR}/m.image: dangling link to ../../../../missing/dir/m.image: /missing does not exist`),
    );
    await each({ [`${DIR}/l.image`]: { link: 'l.image' } }, (v) =>
      fails(
        v,
        `bound image /${DIR}/l.image: dangling link to l.image: too many levels of symbolic links at /${DIR}/l.image (more than 40)`,
      ),
    );
  });

  it('resolve relative and absolute links, and links along the way, inside the root', async () => {
    const spec: RootSpec = {
      'opt/units/a.image': '[Image]\nImage=quay.io/a:1\n',
      'usr/share/containers/systemd': { link: '../../../opt/units' },
      [`${DIR}/a.image`]: { link: '../../../../../../../usr/share/containers/systemd/a.image' },
      [`${DIR}/b.image`]: { link: `/${SYS}/a.image` },
    };
    await each(spec, async (v) => {
      const found = await readBoundImages(v, { hostRoot: treeRoot({}) });
      assert.deepEqual(
        found.map((b) => [b.source, b.file, b.image]),
        [
          [`/${DIR}/a.image`, '/opt/units/a.image', 'quay.io/a:1'],
          [`/${DIR}/b.image`, '/opt/units/a.image', 'quay.io/a:1'],
        ],
      );
    });
  });

  it('reports every broken entry, keeps the good ones, and sorts by name', async () => {
    const spec = oneUnit('good.image', '[Image]\nImage=quay.io/good:1\n', {
      [`${DIR}/z.image`]: { link: '/none' },
      [`${DIR}/a.image`]: { link: '/none' },
      [`${DIR}/m.txt`]: { link: '/none' },
    });
    await each(spec, async (v) => {
      const { images: found, problems } = await scanBoundImages(v, { hostRoot: treeRoot({}) });
      assert.deepEqual(
        found.map((b) => b.image),
        ['quay.io/good:1'],
      );
      assert.deepEqual(
        problems.map((p) => p.source),
        [`/${DIR}/a.image`, `/${DIR}/m.txt`, `/${DIR}/z.image`],
      );
      await fails(v, `bound image /${DIR}/a.image: dangling link to /none: /none does not exist (and 2 more problems in /${DIR})`);
    });
  });

  it('a bound-images.d that is not a directory is an error; one reached by a link is read', async () => {
    await each({ [DIR]: 'oops' }, async (v) => {
      await assert.rejects(readBoundImages(v, { hostRoot: treeRoot({}) }), /bound-images.d in .* is not a directory/);
    });
    await each(
      { 'srv/bound/a.image': { link: '/x.image' }, 'x.image': '[Image]\nImage=quay.io/x:1\n', [DIR]: { link: '/srv/bound' } },
      async (v) => assert.deepEqual(await images(v), ['quay.io/x:1']),
    );
  });

  it('a file name that is not UTF-8 is an error naming it (host directories only)', async () => {
    const { dir, view } = await hostRoot({ [`${SYS}/a.image`]: '[Image]\nImage=quay.io/a:1\n' });
    await mkdir(join(dir, DIR), { recursive: true });
    await symlink(`/${SYS}/a.image`, Buffer.concat([Buffer.from(join(dir, DIR, 'bad')), Buffer.from([0xff]), Buffer.from('.image')]));
    await fails(view, new RegExp(`^bound image /${DIR}/bad\uFFFD.image: invalid non-UTF-8 file name "bad\uFFFD.image" in /${DIR}$`));
  });
});

describe('.container files naming an .image unit', () => {
  const container = (image: string) => `[Unit]\nDescription=app\n[Container]\nImage=${image}\nExec=/bin/app\n`;

  it('finds the .image unit beside the .container file first', async () => {
    const spec: RootSpec = {
      'opt/app/app.container': container('db.image'),
      'opt/app/db.image': '[Image]\nImage=quay.io/beside/db:1\n',
      [`${ETC}/db.image`]: '[Image]\nImage=quay.io/etc/db:1\n',
      [`${DIR}/app.container`]: { link: '/opt/app/app.container' },
    };
    await each(spec, async (v) => {
      const [b] = await readBoundImages(v, { hostRoot: treeRoot({}) });
      assert.deepEqual([b?.image, b?.file, b?.container], ['quay.io/beside/db:1', '/opt/app/db.image', '/opt/app/app.container']);
    });
  });

  it('then in /etc/containers/systemd, then /usr/share/containers/systemd', async () => {
    const base: RootSpec = { 'opt/app/app.container': container('db.image'), [`${DIR}/app.container`]: { link: '/opt/app/app.container' } };
    await each(
      { ...base, [`${ETC}/db.image`]: '[Image]\nImage=quay.io/etc/db:1\n', [`${SYS}/db.image`]: '[Image]\nImage=quay.io/usr/db:1\n' },
      async (v) => assert.deepEqual(await images(v), ['quay.io/etc/db:1']),
    );
    await each({ ...base, [`${SYS}/db.image`]: '[Image]\nImage=quay.io/usr/db:1\n' }, async (v) =>
      assert.deepEqual(await images(v), ['quay.io/usr/db:1']),
    );
    await each(base, (v) =>
      fails(
        v,
        `bound image /${DIR}/app.container: /opt/app/app.container: Image=db.image names an image unit that is in none of /opt/app, /${ETC}, /${SYS}`,
      ),
    );
  });

  it('takes the AuthFile of the .image unit, and refuses build units and paths', async () => {
    const spec: RootSpec = {
      [`${SYS}/app.container`]: container('db.image'),
      [`${SYS}/db.image`]: '[Image]\nImage=quay.io/db:1\nAuthFile=/etc/db-auth.json\n',
      'etc/db-auth.json': '{"auths":{}}',
      [`${DIR}/app.container`]: { link: `/${SYS}/app.container` },
    };
    await each(spec, async (v) => {
      const [b] = await readBoundImages(v, { hostRoot: treeRoot({}) });
      assert.deepEqual(b?.authFile, { path: '/etc/db-auth.json', foundIn: 'image', resolved: '/etc/db-auth.json' });
      assert.equal(Buffer.from(b?.authFile?.content ?? []).toString(), '{"auths":{}}');
    });
    await each(oneUnit('b.container', container('app.build')), (v) =>
      fails(
        v,
        `bound image /${DIR}/b.container: /${SYS}/b.container: Image=app.build names a quadlet build unit; a bound image must be pulled, not built`,
      ),
    );
    await each(oneUnit('p.container', container('../x/db.image')), (v) =>
      fails(v, `bound image /${DIR}/p.container: /${SYS}/p.container: Image=../x/db.image must name an .image unit by its file name alone`),
    );
  });
});

describe('values', () => {
  it('unescapes %% and refuses other specifiers, naming the entry', async () => {
    await each(oneUnit('s.image', '[Image]\nImage=quay.io/app:%i\n'), (v) =>
      fails(
        v,
        `bound image /${DIR}/s.image: /${SYS}/s.image: Image=: Systemd specifiers are not supported by bound images: quay.io/app:%i`,
      ),
    );
    await each(oneUnit('s.image', '[Image]\nImage=quay.io/app:1%\n'), (v) =>
      fails(v, `bound image /${DIR}/s.image: /${SYS}/s.image: Image=: Unterminated % in quay.io/app:1%`),
    );
  });

  it('an invalid reference after unescaping is an error showing the unescaped value', async () => {
    await each(oneUnit('s.image', '[Image]\nImage=quay.io/foo/%%foo:latest\n'), (v) =>
      fails(v, `bound image /${DIR}/s.image: /${SYS}/s.image: invalid reference "quay.io/foo/%foo:latest": invalid reference format`),
    );
    await each(oneUnit('s.image', '[Image]\nImage=quay.io/foo\\\n/bar:1\n'), (v) =>
      fails(
        v,
        `bound image /${DIR}/s.image: /${SYS}/s.image: invalid reference "quay.io/foo /bar:1": invalid reference format (it contains whitespace)`,
      ),
    );
    await each(oneUnit('s.image', '[Image]\nImage=\n'), (v) => fails(v, `bound image /${DIR}/s.image: /${SYS}/s.image: Image= is empty`));
    await each(oneUnit('s.image', "[Image]\nImage='quay.io/a:1'\n"), (v) => fails(v, /invalid reference "'quay.io\/a:1'"/));
  });

  it('reads quoted values, continuations, comments and the last of repeated keys', async () => {
    const text = '# app\n[Image]\nImage=quay.io/old:1\n; Image=quay.io/commented:1\n  Image = "quay.io/new:2"  \n';
    await each(oneUnit('q.image', text), async (v) => assert.deepEqual(await images(v), ['quay.io/new:2']));
  });

  it('warns about floating references and short names, not about digests', async () => {
    const spec: RootSpec = {};
    const units: [string, string][] = [
      ['a.image', 'quay.io/a'],
      ['b.image', 'quay.io/b:latest'],
      ['c.image', 'quay.io/c:1.2'],
      ['d.image', `quay.io/d@${D}`],
      ['e.image', `quay.io/e:1@${D}`],
      ['f.image', `alpine@${D}`],
    ];
    for (const [name, image] of units) Object.assign(spec, oneUnit(name, `[Image]\nImage=${image}\n`));
    await each(spec, async (v) => {
      const found = await readBoundImages(v, { hostRoot: treeRoot({}) });
      const warnings = Object.fromEntries(found.map((b: BoundImage) => [b.image, b.warnings]));
      assert.match(warnings['quay.io/a']?.[0] ?? '', /^floating reference: quay.io\/a follows :latest/);
      assert.match(warnings['quay.io/b:latest']?.[0] ?? '', /^floating reference: quay.io\/b:latest follows :latest/);
      assert.match(warnings['quay.io/c:1.2']?.[0] ?? '', /^floating reference: quay.io\/c:1.2 has no digest, so tag 1.2 can move/);
      assert.deepEqual(warnings[`quay.io/d@${D}`], []);
      assert.deepEqual(warnings[`quay.io/e:1@${D}`], []);
      assert.deepEqual(warnings[`alpine@${D}`], [
        `short name: alpine@${D} names no registry, so podman resolves it through registries.conf; write docker.io/library/alpine`,
      ]);
    });
  });

  it('passes on the lines systemd would ignore as warnings', async () => {
    await each(oneUnit('w.image', `[Image]\nImage=quay.io/w@${D}\nnonsense\n`), async (v) => {
      const [b] = await readBoundImages(v, { hostRoot: treeRoot({}) });
      assert.deepEqual(b?.warnings, [`systemd ignores /${SYS}/w.image:3: missing '=', line ignored`]);
    });
  });
});

describe('AuthFile=', () => {
  const unit = (path: string) => `[Image]\nImage=quay.io/private/app:1\nAuthFile=${path}\n`;

  it("is looked up in the image's root first", async () => {
    const host = treeRoot({ 'etc/auth.json': '{"from":"host"}' });
    await each(oneUnit('a.image', unit('/etc/auth.json'), { 'etc/auth.json': '{"from":"image"}' }), async (v) => {
      const [b] = await readBoundImages(v, { hostRoot: host });
      assert.equal(b?.authFile?.foundIn, 'image');
      assert.equal(Buffer.from(b?.authFile?.content ?? []).toString(), '{"from":"image"}');
      assert.ok(!JSON.stringify(b).includes('from'), 'the content never shows in JSON');
    });
  });

  it("then in the host's, resolving links inside each root", async () => {
    const { view: host } = await hostRoot({
      'run/secrets/auth.json': '{"from":"host"}',
      'etc/ostree/auth.json': { link: '/run/secrets/auth.json' },
    });
    await each(oneUnit('a.image', unit('/etc/ostree/auth.json')), async (v) => {
      const [b] = await readBoundImages(v, { hostRoot: host });
      assert.deepEqual(b?.authFile, { path: '/etc/ostree/auth.json', foundIn: 'host', resolved: '/run/secrets/auth.json' });
      assert.equal(Buffer.from(b?.authFile?.content ?? []).toString(), '{"from":"host"}');
    });
  });

  it('missing from both is an error naming both places; specifiers are refused here too', async () => {
    const host = treeRoot({});
    await each(oneUnit('a.image', unit('/etc/none.json')), (v) =>
      fails(
        v,
        `bound image /${DIR}/a.image: /${SYS}/a.image: AuthFile=/etc/none.json is in neither the image (/etc/none.json in ${v.description}) nor the host (/etc/none.json in test image)`,
        host,
      ),
    );
    await each(oneUnit('a.image', unit('%E/auth.json')), (v) =>
      fails(
        v,
        `bound image /${DIR}/a.image: /${SYS}/a.image: AuthFile=: Systemd specifiers are not supported by bound images: %E/auth.json`,
        host,
      ),
    );
  });
});
