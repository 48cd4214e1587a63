/**
 * Registry authentication end to end, through the `lading` CLI against docker-registry 2.8 with Basic auth
 * (htpasswd) and with token auth (test/helpers/token-issuer.ts): credentials from --creds, --src-creds /
 * --dest-creds, --authfile and REGISTRY_AUTH_FILE; the one-line errors for wrong and missing credentials;
 * and, for tokens, one token request per scope set (tokens are cached) and the two-repository scope a
 * cross-repository mount needs.
 *
 * lading runs with a sandboxed environment (its own HOME, no REGISTRY_AUTH_FILE, XDG_* or DOCKER_CONFIG),
 * so credentials of whoever runs the tests never leak in.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeImage } from '../../src/build/image-writer.js';
import { CopySession } from '../../src/copy/copy-session.js';
import type { Descriptor } from '../../src/oci/types.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { RegistryClient } from '../../src/store/registry/client.js';
import { RegistryStore } from '../../src/store/registry/registry-store.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type RegistryInstance, type TokenIssuer } from '../helpers/registry.js';
import type { TokenRequest } from '../helpers/token-issuer.js';
import { CLI, run, type RunResult } from '../helpers/run.js';

interface CopyJson {
  descriptor: Descriptor;
  manifests: number;
  blobs: { skipped: number; mounted: number; linked: number; copied: number };
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('registry authentication', () => {
  let basic: RegistryInstance;
  let token: RegistryInstance;
  let work: string;
  let src: string;
  let app: Descriptor;
  /** A sandbox environment: HOME of its own, no auth file variables. */
  let env: NodeJS.ProcessEnv;

  /** Runs lading in the sandbox environment, plus `extra`. */
  function lading(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    return run(process.execPath, [CLI, ...args], { env: { ...env, ...extra } });
  }

  async function copyOk(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CopyJson> {
    const r = await lading(['copy', '-q', '-o', 'json', '--retry-times', '0', ...args], extra);
    assert.equal(r.code, 0, `lading copy ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout) as CopyJson;
  }

  /** Runs a copy that must fail, and returns its one-line stderr. */
  async function copyFails(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<string> {
    const r = await lading(['copy', '-q', '--retry-times', '0', ...args], extra);
    assert.equal(r.code, 1, `lading copy ${args.join(' ')} exited ${r.code}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
    assert.doesNotMatch(lines[0]!, /lading-test-password|wrong-password/, 'the error leaks a password');
    return lines[0]!;
  }

  /** Pushes the source image with the right credentials, in-process (setup, not the subject of a test). */
  async function setupPush(r: RegistryInstance, repo: string): Promise<void> {
    const client = new RegistryClient({ credentials: async () => ({ username: r.username!, password: r.password! }) });
    try {
      const from = await LayoutStore.open(src, 'read');
      try {
        const to = new RegistryStore(client, r.host, repo, 'push');
        const result = await new CopySession().copy(from, 'app', to, { tags: ['1'] });
        assert.equal(result.descriptor.digest, app.digest);
      } finally {
        await from.close();
      }
    } finally {
      await client.close();
    }
  }

  async function authFile(name: string, host: string, user: string, password: string): Promise<string> {
    const path = join(work, `${name}.json`);
    await writeFile(path, JSON.stringify({ auths: { [host]: { auth: b64(`${user}:${password}`) } } }));
    return path;
  }

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'lading-auth-'));
    const home = join(work, 'home');
    await mkdir(home);
    env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C' };
    src = join(work, 'src');
    const store = await LayoutStore.open(src, 'write');
    // Config + four layers: several blobs, each fetched or pushed with the same token.
    app = await writeImage(store, { layers: [0, 1, 2, 3].map((i) => ({ files: { [`layer${i}`]: `${i} ${randomUUID()}` } })) }, ['app']);
    await store.close();
    [basic, token] = await Promise.all([startRegistry({ auth: 'basic' }), startRegistry({ auth: 'token' })]);
  });
  after(async () => {
    await Promise.all([basic?.stop(), token?.stop()]);
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  for (const kind of ['basic', 'token'] as const) {
    describe(`${kind} auth`, () => {
      const reg = (): RegistryInstance => (kind === 'basic' ? basic : token);
      const creds = (): string => `${reg().username}:${reg().password}`;

      it('accepts the right credentials from --creds, --dest-creds and --src-creds', async () => {
        const { host } = reg();
        const pushed = await copyOk(['--creds', creds(), `oci:${src}:app`, `docker://${host}/auth/creds:1`]);
        assert.equal(pushed.descriptor.digest, app.digest);
        assert.equal(pushed.blobs.copied, 5);
        const dest = await copyOk(['--dest-creds', creds(), `oci:${src}:app`, `docker://${host}/auth/dest-creds:1`]);
        assert.equal(dest.descriptor.digest, app.digest);
        const pulled = await copyOk([
          '--src-creds',
          creds(),
          `docker://${host}/auth/dest-creds:1`,
          `oci:${join(work, `${kind}-pulled`)}:1`,
        ]);
        assert.equal(pulled.descriptor.digest, app.digest);
        assert.equal(pulled.blobs.copied, 5);
        const digest = await lading(['digest', '--creds', creds(), `docker://${host}/auth/dest-creds:1`]);
        assert.equal(digest.code, 0, digest.stderr);
        assert.equal(digest.stdout, `${app.digest}\n`);
      });

      it('accepts credentials from --authfile (a containers auth.json)', async () => {
        const { host } = reg();
        const file = await authFile(`${kind}-authfile`, host, reg().username!, reg().password!);
        const pushed = await copyOk(['--authfile', file, `oci:${src}:app`, `docker://${host}/auth/authfile:1`]);
        assert.equal(pushed.descriptor.digest, app.digest);
      });

      it('copy finds credentials through REGISTRY_AUTH_FILE', async () => {
        const { host } = reg();
        const file = await authFile(`${kind}-env`, host, reg().username!, reg().password!);
        const pushed = await copyOk([`oci:${src}:app`, `docker://${host}/auth/env:1`], { REGISTRY_AUTH_FILE: file });
        assert.equal(pushed.descriptor.digest, app.digest);
      });

      it('lading digest logs in with the credentials REGISTRY_AUTH_FILE names', async () => {
        // With no credential flags, `lading digest` finds them where podman and skopeo would.
        const { host, tokenIssuer } = reg();
        const file = await authFile(`${kind}-digest-env`, host, reg().username!, reg().password!);
        await setupPush(reg(), 'auth/env-digest');
        const from = tokenIssuer?.requests.length ?? 0;
        const digest = await lading(['digest', `docker://${host}/auth/env-digest:1`], { REGISTRY_AUTH_FILE: file });
        assert.equal(digest.code, 0, digest.stderr);
        assert.equal(digest.stdout, `${app.digest}\n`);
        if (tokenIssuer !== undefined) {
          // The token registry lets anonymous clients pull: the token must still have been asked for as the user.
          const asked = tokenIssuer.requests.slice(from);
          assert.ok(
            asked.length > 0 && asked.every((q) => q.user === reg().username),
            `token requests were anonymous: ${JSON.stringify(asked)}`,
          );
        }
      });

      it('refuses wrong credentials with one line naming the registry and the repository and what to do', async () => {
        const { host } = reg();
        const line = await copyFails(['--creds', `${reg().username}:wrong-password`, `oci:${src}:app`, `docker://${host}/auth/wrong:1`]);
        assert.ok(line.startsWith('lading: '), line);
        assert.ok(line.includes(host), `no registry host in: ${line}`);
        assert.ok(line.includes('auth/wrong'), `no repository in: ${line}`);
        assert.match(line, /credentials/i);
        assert.match(line, /check|--creds|--authfile|log in/, `no advice in: ${line}`);
      });

      it('--src-creds and --dest-creds each go to their own registry', async () => {
        const other = kind === 'basic' ? token : basic;
        await setupPush(reg(), 'auth/split-src');
        const good = `${other.username}:${other.password}`;
        const both = await copyOk([
          '--src-creds',
          creds(),
          '--dest-creds',
          good,
          `docker://${reg().host}/auth/split-src:1`,
          `docker://${other.host}/auth/split-dst-${kind}:1`,
        ]);
        assert.equal(both.descriptor.digest, app.digest);
        // Wrong destination credentials: the error names the destination, not the source.
        const line = await copyFails([
          '--src-creds',
          creds(),
          '--dest-creds',
          `${other.username}:wrong-password`,
          `docker://${reg().host}/auth/split-src:1`,
          `docker://${other.host}/auth/split-bad-${kind}:1`,
        ]);
        // (127.0.0.1:4123 is a prefix of 127.0.0.1:41234: compare whole host:port tokens.)
        const hosts = line.match(/127\.0\.0\.1:\d+/g) ?? [];
        assert.ok(hosts.length > 0 && hosts.every((h) => h === other.host), line);
      });
    });
  }

  it('basic: no credentials at all says authentication is required and how to pass credentials', async () => {
    const line = await copyFails([`oci:${src}:app`, `docker://${basic.host}/auth/anonymous:1`]);
    assert.ok(line.includes(basic.host), line);
    assert.ok(line.includes('auth/anonymous'), line);
    assert.match(line, /requires authentication|authentication (is )?required/i);
    assert.match(line, /--creds/);
    assert.match(line, /--authfile/);
    // Reading needs credentials too, and says so the same way.
    const r = await lading(['digest', `docker://${basic.host}/auth/creds:1`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /requires authentication/);
  });

  it('token: anonymous clients may pull, and an anonymous push says authentication is required', async () => {
    const r = await lading(['digest', `docker://${token.host}/auth/creds:1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${app.digest}\n`);
    const line = await copyFails([`oci:${src}:app`, `docker://${token.host}/auth/anonymous:1`]);
    assert.ok(line.includes(token.host) && line.includes('auth/anonymous'), line);
    assert.match(line, /requires authentication|authentication (is )?required|--creds/i, line);
  });

  describe('token requests', () => {
    const since = (issuer: TokenIssuer, from: number): TokenRequest[] => issuer.requests.slice(from);
    /** scope set -> how many token requests asked for it */
    const perScopeSet = (requests: TokenRequest[]): Map<string, number> => {
      const counts = new Map<string, number>();
      for (const q of requests) {
        const key = [...q.scopes].sort().join(' ');
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      return counts;
    };

    it('one token request per scope set across a copy of several blobs', async () => {
      const issuer = token.tokenIssuer!;
      const from = issuer.requests.length;
      const r = await copyOk(['--creds', `${token.username}:${token.password}`, `oci:${src}:app`, `docker://${token.host}/auth/tokens:1`]);
      assert.equal(r.blobs.copied, 5);
      const requests = since(issuer, from);
      assert.ok(
        requests.every((q) => q.status === 200 && q.user === token.username),
        JSON.stringify(requests),
      );
      const counts = perScopeSet(requests);
      assert.deepEqual([...counts.keys()], ['repository:auth/tokens:pull,push']);
      assert.deepEqual([...counts.values()], [1], `token requests: ${JSON.stringify(requests.map((q) => q.scopes))}`);
    });

    it('a cross-repository mount asks for push on the destination and pull on the source', async () => {
      const issuer = token.tokenIssuer!;
      const c = `${token.username}:${token.password}`;
      await setupPush(token, 'auth/mount-src');
      const from = issuer.requests.length;
      const r = await copyOk(['--creds', c, `docker://${token.host}/auth/mount-src:1`, `docker://${token.host}/auth/mount-dst:1`]);
      assert.equal(r.descriptor.digest, app.digest);
      assert.equal(r.blobs.mounted, 5);
      assert.equal(r.blobs.copied, 0);
      const requests = since(issuer, from);
      assert.ok(
        requests.every((q) => q.status === 200 && q.user === token.username),
        JSON.stringify(requests),
      );
      assert.deepEqual(
        [...perScopeSet(requests).keys()].sort(),
        [
          'repository:auth/mount-dst:pull,push',
          'repository:auth/mount-dst:pull,push repository:auth/mount-src:pull',
          'repository:auth/mount-src:pull',
        ].sort(),
      );
    });

    it('concurrent requests share one token per scope set, even when their 401s come back late', async () => {
      // Five mounts go out at once, unauthenticated (no token for their scope set yet). The registry's
      // 401 to the first comes back at once; the other four come back slowly (a dripping proxy), after the
      // first token has been fetched: they must use that token, not fetch (and cache) a second one.
      const issuer = token.tokenIssuer!;
      const proxy = await startFaultProxy(token);
      try {
        await setupPush(token, 'auth/late-src');
        const mount = /\/v2\/auth\/late-dst\/blobs\/uploads\/\?mount=/;
        proxy.rules = [
          { method: 'POST', path: mount, times: 1, fault: { kind: 'header', name: 'x-first', value: '1' } },
          { method: 'POST', path: mount, times: 4, fault: { kind: 'drip', bytesPerTick: 16, tickMs: 40 } },
        ];
        const from = issuer.requests.length;
        const c = `${token.username}:${token.password}`;
        const r = await copyOk(['--creds', c, `docker://${proxy.host}/auth/late-src:1`, `docker://${proxy.host}/auth/late-dst:1`]);
        assert.equal(r.blobs.mounted, 5);
        const late = proxy.log.filter((e) => e.fault === 'drip' && e.status === 401);
        assert.ok(late.length > 0, `no slow 401s: ${JSON.stringify(proxy.log.map((e) => [e.method, e.path, e.status, e.fault]))}`);
        const requests = since(issuer, from);
        for (const [scopes, n] of perScopeSet(requests)) {
          assert.equal(n, 1, `${n} token requests for "${scopes}": ${JSON.stringify(requests.map((q) => q.scopes))}`);
        }
      } finally {
        await proxy.stop();
      }
    });
  });
});
