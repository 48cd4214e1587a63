/**
 * Real registries for tests: /usr/bin/docker-registry (distribution 2.8.2) on a free 127.0.0.1 port,
 * with its storage in a temp dir, optionally behind TLS (a throwaway CA), Basic auth (htpasswd) or
 * token auth (./token-issuer.ts). A test file that starts a registry must stop it, in `after`:
 *
 *   let reg: RegistryInstance;
 *   before(async () => (reg = await startRegistry({ auth: 'basic', tls: true })));
 *   after(() => reg.stop());
 *
 * Notes on distribution 2.8.2 (Debian):
 * - htpasswd auth works over plain HTTP (no TLS needed, not even a warning), so `basic` does not imply TLS.
 *   Its hashes must be bcrypt; the registry checks the hash on every request, so the harness uses cost 4
 *   (Go's minimum; cost 10 costs ~70 ms per request).
 * - `auth.token` verifies the JWT's `x5c` chain against `rootcertbundle` (a self-signed signing cert in
 *   the bundle is enough), then iss == issuer, aud == service, exp/nbf (with leeway), and `access`.
 * - Environment variables REGISTRY_* override the config file, so they are removed from the child's env.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { stringify } from 'yaml';
import { makeCa, makeServerCert } from './pki.js';
import { startTokenIssuer, type TokenIssuer, type TokenIssuerOptions } from './token-issuer.js';

export type { TokenIssuer } from './token-issuer.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface RegistryInstance {
  /** host:port, e.g. '127.0.0.1:41234' */
  readonly host: string;
  /** 'http' or 'https' */
  readonly scheme: 'http' | 'https';
  /** For basic/token auth: the one valid user. */
  readonly username?: string;
  readonly password?: string;
  /** For TLS: directory holding ca.crt (PEM) — usable as skopeo --cert-dir and as Lading's --cert-dir. */
  readonly certDir?: string;
  /** For token auth: the issuer, to inspect what scopes were requested. */
  readonly tokenIssuer?: TokenIssuer;
  /** Storage root on disk. */
  readonly storageDir: string;
  /** What the registry has written to stdout/stderr so far (log level error; the last 64 KiB). */
  logs(): string;
  /** Kills the registry (and its token issuer) and removes its temp dir; idempotent. */
  stop(): Promise<void>;
}

export interface RegistryOptions {
  auth?: 'none' | 'basic' | 'token';
  tls?: boolean;
  /** Token auth only: issuer tweaks (token lifetime, grant policy). */
  token?: Pick<TokenIssuerOptions, 'expiresIn' | 'policy'>;
  /** Last word on the config object before it is written as YAML (e.g. `c.http.relativeurls = true`). */
  configure?: (config: RegistryConfig) => void;
}

/** The parsed shape of docker-registry's config.yml, loosely (see distribution's configuration docs). */
export interface RegistryConfig {
  version: number;
  log: Record<string, unknown>;
  storage: Record<string, unknown>;
  http: Record<string, unknown>;
  auth?: Record<string, unknown>;
  [section: string]: unknown;
}

const READY_TIMEOUT_MS = 10_000;
const USERNAME = 'lading';
const PASSWORD = 'lading-test-password';

// Registries still running when the test process exits are killed rather than left behind.
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

/** A port that was free a moment ago (listen on 0, close); the caller retries if it is taken by then. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function childEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_') && !k.startsWith('OTEL_')));
}

/** One GET /v2/: the status, or undefined when nothing answered yet. */
function probe(url: string, ca: string | undefined): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(
      url,
      { method: 'GET', timeout: 1000, agent: false, ...(ca && { ca }) },
      (res) => {
        res.resume();
        resolve(res.statusCode);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs "$@" (the registry) in place of the shell, so it keeps the child's pid, after forking a watcher
 * that SIGTERMs it when its stdin (a pipe from this process) closes: when `stop()` ends it, and also
 * when this process dies without running its exit hooks (SIGKILL, a runner's timeout), so no registry
 * outlives its test process.
 */
const WATCHDOG = 'exec 3<&0; pid=$$; (cat <&3 >/dev/null 2>&1; kill -TERM "$pid" 2>/dev/null) >/dev/null 2>&1 & exec 3<&-; exec "$@"';

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    child.stdin?.destroy();
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

interface Launched {
  child: ChildProcess;
  host: string;
  logs: () => string;
}

/** Starts the registry with the config `build(port)` returns, retrying on a port that got taken. */
async function launch(
  dir: string,
  scheme: 'http' | 'https',
  ca: string | undefined,
  build: (addr: string) => RegistryConfig,
): Promise<Launched> {
  for (let attempt = 1; ; attempt++) {
    const host = `127.0.0.1:${await freePort()}`;
    const configPath = join(dir, 'config.yml');
    await writeFile(configPath, stringify(build(host)));
    const child = spawn('/bin/sh', ['-c', WATCHDOG, 'sh', REGISTRY_BIN, 'serve', configPath], {
      env: childEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    track(child);
    let output = '';
    const collect = (d: Buffer) => {
      output += d.toString('utf8');
      if (output.length > 65536) output = output.slice(-65536);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    let spawnError: Error | undefined;
    child.once('error', (e) => (spawnError = e));
    const logs = () => output;

    const deadline = Date.now() + READY_TIMEOUT_MS;
    let status: number | undefined;
    while (Date.now() < deadline) {
      if (spawnError) throw new Error(`cannot run ${REGISTRY_BIN}: ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) break;
      status = await probe(`${scheme}://${host}/v2/`, ca);
      if (status === 200 || status === 401) return { child, host, logs };
      await sleep(50);
    }
    await stopChild(child);
    if (/address already in use/i.test(output) && attempt < 5) continue;
    const why =
      child.exitCode !== null
        ? `exited with code ${child.exitCode}`
        : `did not answer GET /v2/ with 200 or 401 (last: ${status ?? 'no answer'})`;
    throw new Error(`docker-registry on ${host} ${why} within ${READY_TIMEOUT_MS / 1000}s; its output:\n${output.trim() || '(none)'}`);
  }
}

/** Starts docker-registry on a free loopback port (see the module comment). */
export async function startRegistry(options: RegistryOptions = {}): Promise<RegistryInstance> {
  const auth = options.auth ?? 'none';
  const scheme = options.tls ? 'https' : 'http';
  const dir = await mkdtemp(join(tmpdir(), 'lading-registry-'));
  const storageDir = join(dir, 'storage');
  let tokenIssuer: TokenIssuer | undefined;
  try {
    await mkdir(storageDir);
    let tls: { certificate: string; key: string } | undefined;
    let certDir: string | undefined;
    let caPem: string | undefined;
    if (options.tls) {
      const pki = join(dir, 'pki');
      certDir = join(dir, 'certs');
      await mkdir(pki);
      await mkdir(certDir);
      const ca = await makeCa(pki);
      const server = await makeServerCert(pki, ca);
      await copyFile(ca.cert, join(certDir, 'ca.crt'));
      caPem = await readFile(ca.cert, 'utf8');
      tls = { certificate: server.cert, key: server.key };
    }

    let authConfig: Record<string, unknown> | undefined;
    if (auth === 'basic') {
      const htpasswd = join(dir, 'htpasswd');
      await writeFile(htpasswd, `${USERNAME}:${bcrypt.hashSync(PASSWORD, 4)}\n`);
      authConfig = { htpasswd: { realm: 'lading-test', path: htpasswd } };
    } else if (auth === 'token') {
      tokenIssuer = await startTokenIssuer({ ...options.token, users: { [USERNAME]: PASSWORD } });
      const bundle = join(dir, 'token-root.crt');
      await copyFile(tokenIssuer.rootCertBundle, bundle);
      authConfig = { token: { realm: tokenIssuer.url, service: tokenIssuer.service, issuer: tokenIssuer.issuer, rootcertbundle: bundle } };
    }

    const { child, host, logs } = await launch(dir, scheme, caPem, (addr) => {
      const config: RegistryConfig = {
        version: 0.1,
        log: { level: 'error', formatter: 'text', accesslog: { disabled: true } },
        storage: {
          filesystem: { rootdirectory: storageDir },
          delete: { enabled: true },
          maintenance: { uploadpurging: { enabled: false } },
        },
        http: { addr, secret: 'lading-test-secret', headers: { 'X-Content-Type-Options': ['nosniff'] }, ...(tls && { tls }) },
        ...(authConfig && { auth: authConfig }),
      };
      options.configure?.(config);
      return config;
    });

    let stopped: Promise<void> | undefined;
    const issuer = tokenIssuer;
    return {
      host,
      scheme,
      ...(auth !== 'none' && { username: USERNAME, password: PASSWORD }),
      ...(certDir !== undefined && { certDir }),
      ...(issuer && { tokenIssuer: issuer }),
      storageDir,
      logs,
      stop() {
        stopped ??= (async () => {
          await stopChild(child);
          await issuer?.stop();
          await rm(dir, { recursive: true, force: true });
        })();
        return stopped;
      },
    };
  } catch (e) {
    await tokenIssuer?.stop();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * skopeo flags to reach `r`: `--tls-verify=false` for HTTP, `--cert-dir` for HTTPS, `--creds` when it has
 * a user; prefixed `--src-`/`--dest-` for `skopeo copy`, plain (`--tls-verify`) for inspect and friends.
 * `creds` replaces the credentials ('user:password'); null asks for anonymous access (`--no-creds`).
 */
export function skopeoFlags(r: RegistryInstance, role: 'src' | 'dest' | 'plain', creds?: string | null): string[] {
  const p = role === 'plain' ? '--' : `--${role}-`;
  const flags =
    r.scheme === 'http' ? [`${p}tls-verify=false`] : [`${p}tls-verify=true`, ...(r.certDir ? [`${p}cert-dir=${r.certDir}`] : [])];
  const c = creds === undefined ? (r.username !== undefined ? `${r.username}:${r.password ?? ''}` : undefined) : creds;
  if (c === null) flags.push(`${p}no-creds`);
  else if (c !== undefined) flags.push(`${p}creds=${c}`);
  return flags;
}
