/** Credential lookup: --creds, auth files in containers/image + docker order, namespaced keys, helpers. */
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { type CredentialOptions, credentialSource, lookupCredential } from '../../src/store/registry/credentials.js';
import { tempDir } from '../helpers/tmp.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const auth = (user: string, pass: string) => ({ auth: b64(`${user}:${pass}`) });

async function writeJson(path: string, value: unknown): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return path;
}

/** A sandbox: HOME, XDG dirs and a bin directory of fake credential helpers, with an env that points at them. */
async function sandbox() {
  const root = await tempDir('lading-creds-');
  const home = join(root, 'home');
  const bin = join(root, 'bin');
  const log = join(root, 'helper.log');
  await mkdir(home, { recursive: true });
  await mkdir(bin, { recursive: true });
  const helper = async (name: string, body: string): Promise<void> => {
    const path = join(bin, `docker-credential-${name}`);
    await writeFile(path, `#!/bin/sh\n${body}\n`);
    await chmod(path, 0o755);
  };
  // Answers for two servers, logs every call, and says "not found" the way docker-credential-helpers does.
  await helper(
    'fake',
    [
      'url=$(cat)',
      'echo "fake $1 $url" >> "$FAKE_LOG"',
      'case "$url" in',
      '  helper.example) echo \'{"ServerURL":"helper.example","Username":"helper-user","Secret":"helper-pass"}\' ;;',
      '  https://index.docker.io/v1/) echo \'{"ServerURL":"https://index.docker.io/v1/","Username":"hub-user","Secret":"hub-pass"}\' ;;',
      '  token.example) echo \'{"ServerURL":"token.example","Username":"<token>","Secret":"refresh-123"}\' ;;',
      '  *) echo "credentials not found in native keychain"; exit 1 ;;',
      'esac',
    ].join('\n'),
  );
  await helper(
    'podmanlike',
    [
      'url=$(cat)',
      'echo "podmanlike $1 $url" >> "$FAKE_LOG"',
      'if [ "$url" = docker.io ]; then echo \'{"ServerURL":"docker.io","Username":"podman-hub","Secret":"x"}\'; exit 0; fi',
      'echo "credentials not found in native keychain"; exit 1',
    ].join('\n'),
  );
  await helper('broken', 'cat >/dev/null\necho "error: the keychain is locked" >&2\nexit 3');
  await helper('garbage', 'cat >/dev/null\necho "this is not json"');
  await helper('slow', 'exec sleep 10');
  await helper('stderrnotfound', 'cat >/dev/null\necho "credentials not found" >&2\nexit 1');
  const env: NodeJS.ProcessEnv = { HOME: home, PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, FAKE_LOG: log };
  const calls = async (): Promise<string[]> => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
  return { root, home, bin, env, calls };
}

const credentialsError = (pattern: RegExp) => (e: unknown) => isLadingError(e, 'CREDENTIALS') && pattern.test(e.message);

describe('lookupCredential: --creds', () => {
  it('wins over every file and splits at the first ":"', async () => {
    const { env, home } = await sandbox();
    await writeJson(join(home, '.docker', 'config.json'), { auths: { 'reg.example': auth('file', 'file') } });
    assert.deepEqual(await lookupCredential('reg.example', 'ns/app', { creds: 'me:p:a:ss', env }), { username: 'me', password: 'p:a:ss' });
    assert.deepEqual(await lookupCredential('reg.example', undefined, { creds: 'me:', env }), { username: 'me', password: '' });
    assert.deepEqual(await lookupCredential('reg.example', undefined, { creds: 'me:x', authfile: join(home, 'nope.json'), env }), {
      username: 'me',
      password: 'x',
    });
  });

  it('refuses a missing ":" or an empty user without echoing the value', async () => {
    await assert.rejects(lookupCredential('reg.example', undefined, { creds: 'secretvalue' }), (e) => {
      return isLadingError(e, 'USAGE') && /USER:PASSWORD/.test(e.message) && !e.message.includes('secretvalue');
    });
    await assert.rejects(lookupCredential('reg.example', undefined, { creds: ':secretvalue' }), (e) => {
      return isLadingError(e, 'USAGE') && /empty user/.test(e.message) && !e.message.includes('secretvalue');
    });
    assert.throws(
      () => credentialSource({ creds: 'nocolon' }),
      (e) => isLadingError(e, 'USAGE'),
    );
  });
});

describe('lookupCredential: auth files', () => {
  async function allFiles() {
    const s = await sandbox();
    const host = 'reg.example';
    const files = {
      authfile: await writeJson(join(s.root, 'explicit.json'), { auths: { [host]: auth('authfile', 'x') } }),
      registryAuthFile: await writeJson(join(s.root, 'env-auth.json'), { auths: { [host]: auth('registry-auth-file', 'x') } }),
      runtime: await writeJson(join(s.root, 'run', 'containers', 'auth.json'), { auths: { [host]: auth('xdg-runtime', 'x') } }),
      xdgConfig: await writeJson(join(s.root, 'xdgconfig', 'containers', 'auth.json'), { auths: { [host]: auth('xdg-config', 'x') } }),
      homeConfig: await writeJson(join(s.home, '.config', 'containers', 'auth.json'), { auths: { [host]: auth('home-config', 'x') } }),
      dockerConfig: await writeJson(join(s.root, 'dockercfgdir', 'config.json'), { auths: { [host]: auth('docker-config-env', 'x') } }),
      homeDocker: await writeJson(join(s.home, '.docker', 'config.json'), { auths: { [host]: auth('home-docker', 'x') } }),
      legacy: await writeJson(join(s.home, '.dockercfg'), { [`https://${host}/v1/`]: { ...auth('legacy', 'x'), email: 'a@b.c' } }),
    };
    return { ...s, host, files };
  }

  it('follows creds > authfile > REGISTRY_AUTH_FILE > XDG runtime > XDG config > docker config > .dockercfg', async () => {
    const { root, env: base, host, files } = await allFiles();
    const env: NodeJS.ProcessEnv = {
      ...base,
      REGISTRY_AUTH_FILE: files.registryAuthFile,
      XDG_RUNTIME_DIR: join(root, 'run'),
      XDG_CONFIG_HOME: join(root, 'xdgconfig'),
      DOCKER_CONFIG: join(root, 'dockercfgdir'),
    };
    const user = async (opts: CredentialOptions) => (await lookupCredential(host, 'ns/app', opts))?.username;
    assert.equal(await user({ env, creds: 'creds:x', authfile: files.authfile }), 'creds');
    assert.equal(await user({ env, authfile: files.authfile }), 'authfile');
    assert.equal(await user({ env }), 'registry-auth-file');
    delete env.REGISTRY_AUTH_FILE;
    assert.equal(await user({ env }), 'xdg-runtime');
    delete env.XDG_RUNTIME_DIR;
    assert.equal(await user({ env }), 'xdg-config');
    delete env.XDG_CONFIG_HOME;
    assert.equal(await user({ env }), 'home-config');
    env.XDG_CONFIG_HOME = join(root, 'no-such-dir');
    assert.equal(await user({ env }), 'docker-config-env');
    delete env.DOCKER_CONFIG;
    assert.equal(await user({ env }), 'home-docker');
    env.DOCKER_CONFIG = '';
    assert.equal(await user({ env }), 'home-docker', 'an empty variable counts as unset');
    env.DOCKER_CONFIG = join(root, 'no-such-dir');
    assert.equal(await user({ env }), 'legacy');
  });

  it('moves on to the next file when a file has nothing for the host, but --authfile alone is searched', async () => {
    const { root, env: base, host, files } = await allFiles();
    const other = await writeJson(join(root, 'other.json'), { auths: { 'other.example': auth('other', 'x') } });
    const env = { ...base, REGISTRY_AUTH_FILE: other, XDG_RUNTIME_DIR: join(root, 'run') };
    assert.equal((await lookupCredential(host, undefined, { env }))?.username, 'xdg-runtime');
    assert.equal(await lookupCredential(host, undefined, { env, authfile: other }), undefined);
    assert.equal((await lookupCredential('other.example', undefined, { env, authfile: other }))?.username, 'other');
    void files;
  });

  it('skips missing files silently, but a missing --authfile is an error', async () => {
    const { env, root } = await sandbox();
    const none = { ...env, REGISTRY_AUTH_FILE: join(root, 'nope.json'), XDG_RUNTIME_DIR: join(root, 'nope') };
    assert.equal(await lookupCredential('reg.example', 'a/b', { env: none }), undefined);
    assert.equal(await lookupCredential('reg.example', 'a/b', { env: {} }), undefined);
    await assert.rejects(
      lookupCredential('reg.example', undefined, { env, authfile: join(root, 'missing.json') }),
      credentialsError(/auth file .*missing\.json does not exist/),
    );
  });

  it('matches namespaced keys most specific first', async () => {
    const { env, root } = await sandbox();
    const authfile = await writeJson(join(root, 'auth.json'), {
      auths: {
        'quay.io': auth('host', 'x'),
        'quay.io/team': auth('team', 'x'),
        'quay.io/team/app': auth('app', 'x'),
        'quay.io/team/app/sub': auth('sub', 'x'),
        'quay.io/other/': auth('other', 'x'),
      },
    });
    const user = async (repo: string | undefined) => (await lookupCredential('quay.io', repo, { env, authfile }))?.username;
    assert.equal(await user('team/app/sub'), 'sub');
    assert.equal(await user('team/app/sub/deeper'), 'sub');
    assert.equal(await user('team/app'), 'app');
    assert.equal(await user('team/app2'), 'team');
    assert.equal(await user('team'), 'team');
    assert.equal(await user('other/x'), 'other', 'a trailing slash in the key is ignored');
    assert.equal(await user('elsewhere/app'), 'host');
    assert.equal(await user(undefined), 'host');
    assert.equal(await user('/team/app/'), 'app', 'stray slashes in the repository are ignored');
    assert.equal(await lookupCredential('quay.io.evil', 'team/app', { env, authfile }), undefined);
    assert.equal(await lookupCredential('QUAY.IO', 'team/app', { env, authfile }).then((c) => c?.username), 'app');
  });

  it('skips empty placeholder entries and falls back to a less specific key', async () => {
    const { env, root } = await sandbox();
    const authfile = await writeJson(join(root, 'auth.json'), { auths: { 'quay.io/team': {}, 'quay.io': auth('host', 'x') } });
    assert.equal((await lookupCredential('quay.io', 'team/app', { env, authfile }))?.username, 'host');
  });

  it('treats docker.io, index.docker.io and registry-1.docker.io as one registry, and reads URL-style keys', async () => {
    const { env, root } = await sandbox();
    const hubUrl = await writeJson(join(root, 'hub-url.json'), { auths: { 'https://index.docker.io/v1/': auth('hub-url', 'x') } });
    for (const host of ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'Docker.IO']) {
      assert.equal((await lookupCredential(host, 'library/alpine', { env, authfile: hubUrl }))?.username, 'hub-url', host);
    }
    for (const key of ['index.docker.io', 'registry-1.docker.io', 'docker.io', 'https://index.docker.io/v1']) {
      const label = key.replace(/\W/g, '_');
      const file = await writeJson(join(root, `${label}.json`), { auths: { [key]: auth(label, 'x') } });
      assert.equal((await lookupCredential('docker.io', 'library/alpine', { env, authfile: file }))?.username, label, key);
    }
    const both = await writeJson(join(root, 'both.json'), {
      auths: { 'https://index.docker.io/v1/': auth('url', 'x'), 'index.docker.io': auth('alias', 'x'), 'docker.io': auth('exact', 'x') },
    });
    assert.equal((await lookupCredential('docker.io', undefined, { env, authfile: both }))?.username, 'exact');
    const ns = await writeJson(join(root, 'ns.json'), {
      auths: { 'docker.io': auth('exact', 'x'), 'index.docker.io/me': auth('me', 'x') },
    });
    assert.equal((await lookupCredential('registry-1.docker.io', 'me/app', { env, authfile: ns }))?.username, 'me');

    const urls = await writeJson(join(root, 'urls.json'), {
      auths: {
        'http://127.0.0.1:5000/v2/': auth('local', 'x'),
        'https://quay.io': auth('quay', 'x'),
        'https://quay.io/ns/app': auth('no', 'x'),
      },
    });
    assert.equal((await lookupCredential('127.0.0.1:5000', 'a/b', { env, authfile: urls }))?.username, 'local');
    assert.equal((await lookupCredential('quay.io', 'ns/app', { env, authfile: urls }))?.username, 'quay', 'URL keys count by host only');
    assert.equal(await lookupCredential('docker.io', undefined, { env, authfile: urls }), undefined);
  });

  it('reads identitytoken and username/password entries, and decodes passwords containing ":"', async () => {
    const { env, root } = await sandbox();
    const authfile = await writeJson(join(root, 'auth.json'), {
      auths: {
        'token.example': { auth: b64('someone:ignored'), identitytoken: 'refresh-abc' },
        'fields.example': { username: 'u', password: 'p' },
        'colon.example': auth('user', 'pa:ss:'),
        'nul.example': { auth: b64('user:pass\0\0') },
      },
    });
    const get = (host: string) => lookupCredential(host, undefined, { env, authfile });
    assert.deepEqual(await get('token.example'), { username: '<token>', password: 'refresh-abc' });
    assert.deepEqual(await get('fields.example'), { username: 'u', password: 'p' });
    assert.deepEqual(await get('colon.example'), { username: 'user', password: 'pa:ss:' });
    assert.deepEqual(await get('nul.example'), { username: 'user', password: 'pass' });
  });

  it('reads the legacy ~/.dockercfg format (the top level is the auths map)', async () => {
    const { env, home } = await sandbox();
    await writeJson(join(home, '.dockercfg'), {
      'https://index.docker.io/v1/': { auth: b64('hub:x'), email: 'a@b.c' },
      'reg.example/ns': { auth: b64('reg:x'), email: 'a@b.c' },
    });
    assert.equal((await lookupCredential('docker.io', 'library/alpine', { env }))?.username, 'hub');
    assert.equal((await lookupCredential('reg.example', 'elsewhere/x', { env }))?.username, 'reg', 'legacy keys count by host only');
  });

  it('reports a file that is not valid JSON by name, without quoting its content', async () => {
    const { env, root } = await sandbox();
    const authfile = await writeJson(join(root, 'broken.json'), '{"auths": {"reg.example": {"auth": "c2VjcmV0OnNlY3JldA=="}}');
    await assert.rejects(lookupCredential('reg.example', undefined, { env, authfile }), (e) => {
      assert.ok(isLadingError(e, 'CREDENTIALS'));
      assert.match(e.message, /^auth file .*broken\.json is not valid JSON/);
      assert.ok(!e.message.includes('c2VjcmV0'), e.message);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
    // Invalid JSON anywhere on the default search path is an error too, even when a later file would answer.
    const env2 = { ...env, REGISTRY_AUTH_FILE: authfile };
    await writeJson(join(env.HOME!, '.docker', 'config.json'), { auths: { 'reg.example': auth('later', 'x') } });
    await assert.rejects(lookupCredential('reg.example', undefined, { env: env2 }), credentialsError(/broken\.json is not valid JSON/));
    const notObject = await writeJson(join(root, 'array.json'), '[1, 2]');
    await assert.rejects(
      lookupCredential('reg.example', undefined, { env, authfile: notObject }),
      credentialsError(/is not a JSON object/),
    );
    const badAuths = await writeJson(join(root, 'bad-auths.json'), { auths: 'nope' });
    await assert.rejects(
      lookupCredential('reg.example', undefined, { env, authfile: badAuths }),
      credentialsError(/"auths" is not an object/),
    );
    const empty = await writeJson(join(root, 'empty.json'), '  \n');
    assert.equal(await lookupCredential('reg.example', undefined, { env, authfile: empty }), undefined);
  });

  it('refuses an "auth" value that is not base64 of USER:PASSWORD, naming the key but not the value', async () => {
    const { env, root } = await sandbox();
    const authfile = await writeJson(join(root, 'auth.json'), {
      auths: { 'nocolon.example': { auth: b64('justasecret') }, 'notb64.example': { auth: 'not base64 at all!' } },
    });
    await assert.rejects(lookupCredential('nocolon.example', undefined, { env, authfile }), (e) => {
      return (
        isLadingError(e, 'CREDENTIALS') &&
        /the entry for "nocolon\.example" has an "auth" value that is not base64 of USER:PASSWORD/.test(e.message) &&
        !e.message.includes(b64('justasecret'))
      );
    });
    await assert.rejects(lookupCredential('notb64.example', undefined, { env, authfile }), credentialsError(/"notb64\.example"/));
  });
});

describe('lookupCredential: credential helpers', () => {
  it('runs credHelpers[host] with the server URL on stdin and PATH from options.env', async () => {
    const { env, root, calls } = await sandbox();
    const authfile = await writeJson(join(root, 'auth.json'), {
      auths: { 'helper.example': auth('from-auths', 'x') },
      credHelpers: { 'helper.example': 'fake', 'token.example': 'fake', 'docker.io': 'fake' },
    });
    assert.deepEqual(await lookupCredential('helper.example', 'ns/app', { env, authfile }), {
      username: 'helper-user',
      password: 'helper-pass',
    });
    assert.deepEqual(await lookupCredential('token.example', undefined, { env, authfile }), {
      username: '<token>',
      password: 'refresh-123',
    });
    assert.deepEqual(await lookupCredential('index.docker.io', 'library/alpine', { env, authfile }), {
      username: 'hub-user',
      password: 'hub-pass',
    });
    assert.deepEqual(await calls(), ['fake get helper.example', 'fake get token.example', 'fake get https://index.docker.io/v1/']);
  });

  it('a helper that says "credentials not found" means no credential in that file; the search goes on', async () => {
    const { env, root, home, calls } = await sandbox();
    const first = await writeJson(join(root, 'first.json'), {
      auths: { 'nothing.example': auth('ignored-because-helper', 'x') },
      credHelpers: { 'nothing.example': 'fake', 'quiet.example': 'stderrnotfound' },
    });
    await writeJson(join(home, '.docker', 'config.json'), {
      auths: { 'nothing.example': auth('docker', 'x'), 'quiet.example': auth('q', 'x') },
    });
    const env2 = { ...env, REGISTRY_AUTH_FILE: first };
    assert.equal((await lookupCredential('nothing.example', undefined, { env: env2 }))?.username, 'docker');
    assert.equal((await lookupCredential('quiet.example', undefined, { env: env2 }))?.username, 'q', '"credentials not found" on stderr');
    assert.equal(await lookupCredential('nothing.example', undefined, { env: env2, authfile: first }), undefined);
    assert.deepEqual(await calls(), ['fake get nothing.example', 'fake get nothing.example']);
  });

  it('asks credsStore after auths, for any host, and asks Docker Hub under both of its names', async () => {
    const { env, root, calls } = await sandbox();
    const authfile = await writeJson(join(root, 'auth.json'), {
      auths: { 'https://index.docker.io/v1/': {}, 'plain.example': auth('plain', 'x') },
      credsStore: 'fake',
    });
    assert.equal((await lookupCredential('plain.example', undefined, { env, authfile }))?.username, 'plain');
    assert.equal((await lookupCredential('helper.example', undefined, { env, authfile }))?.username, 'helper-user');
    assert.equal((await lookupCredential('docker.io', 'library/alpine', { env, authfile }))?.username, 'hub-user');
    assert.equal(await lookupCredential('unknown.example', undefined, { env, authfile }), undefined);
    assert.deepEqual(await calls(), ['fake get helper.example', 'fake get https://index.docker.io/v1/', 'fake get unknown.example']);

    // A helper that stored Docker Hub under "docker.io" (as podman login does) is asked that name second.
    const podmanStyle = await writeJson(join(root, 'podman.json'), { credHelpers: { 'docker.io': 'podmanlike' } });
    const before = (await calls()).length;
    assert.equal((await lookupCredential('registry-1.docker.io', undefined, { env, authfile: podmanStyle }))?.username, 'podman-hub');
    assert.deepEqual((await calls()).slice(before), ['podmanlike get https://index.docker.io/v1/', 'podmanlike get docker.io']);
  });

  it('reports a failing helper by name, with its message on one line', async () => {
    const { env, root } = await sandbox();
    const authfile = await writeJson(join(root, 'auth.json'), {
      credHelpers: { 'broken.example': 'broken', 'garbage.example': 'garbage', 'missing.example': 'missing', 'bad.example': '../evil' },
    });
    await assert.rejects(
      lookupCredential('broken.example', undefined, { env, authfile }),
      credentialsError(/^credential helper docker-credential-broken failed for broken\.example: error: the keychain is locked$/),
    );
    await assert.rejects(
      lookupCredential('garbage.example', undefined, { env, authfile }),
      credentialsError(/docker-credential-garbage sent an answer that is not a JSON object/),
    );
    await assert.rejects(
      lookupCredential('missing.example', undefined, { env, authfile }),
      credentialsError(/docker-credential-missing was not found on PATH/),
    );
    await assert.rejects(
      lookupCredential('bad.example', undefined, { env, authfile }),
      credentialsError(/invalid credential helper "\.\.\/evil"/),
    );
  });

  it('kills a helper that does not answer in time', async () => {
    const { env, root } = await sandbox();
    const authfile = await writeJson(join(root, 'auth.json'), { credHelpers: { 'slow.example': 'slow' } });
    const started = Date.now();
    await assert.rejects(
      lookupCredential('slow.example', undefined, { env, authfile, helperTimeoutMs: 200 }),
      credentialsError(/docker-credential-slow did not answer within 0\.2 s/),
    );
    assert.ok(Date.now() - started < 5000);
  });
});

describe('credentialSource', () => {
  it('memoizes per host+repository and runs each helper at most once per server', async () => {
    const { env, root, calls } = await sandbox();
    const authfile = await writeJson(join(root, 'auth.json'), { credHelpers: { 'helper.example': 'fake', 'nothing.example': 'fake' } });
    const source = credentialSource({ env, authfile });
    const results = await Promise.all([
      source('helper.example', 'a/b'),
      source('helper.example', 'a/b'),
      source('helper.example', 'c/d'),
      source('helper.example'),
      source('nothing.example'),
      source('nothing.example', 'x'),
    ]);
    assert.deepEqual(results.slice(0, 4), Array(4).fill({ username: 'helper-user', password: 'helper-pass' }));
    assert.deepEqual(results.slice(4), [undefined, undefined]);
    assert.deepEqual((await calls()).sort(), ['fake get helper.example', 'fake get nothing.example']);
    // Callers may not corrupt the cache by mutating an answer.
    results[0]!.password = 'changed';
    assert.equal((await source('helper.example', 'a/b'))?.password, 'helper-pass');
  });

  it('returns --creds for every host without reading any file', async () => {
    const { env, root } = await sandbox();
    const source = credentialSource({ env, creds: 'u:p', authfile: join(root, 'missing.json') });
    assert.deepEqual(await source('a.example'), { username: 'u', password: 'p' });
    assert.deepEqual(await source('docker.io', 'library/x'), { username: 'u', password: 'p' });
  });

  it('gives the same error again for the same lookup', async () => {
    const { env, root } = await sandbox();
    const authfile = await writeJson(join(root, 'auth.json'), '{oops');
    const source = credentialSource({ env, authfile });
    await assert.rejects(source('a.example'), credentialsError(/not valid JSON/));
    await assert.rejects(source('a.example'), credentialsError(/not valid JSON/));
  });
});
