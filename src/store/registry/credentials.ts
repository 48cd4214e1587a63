/**
 * Registry credentials, found the way podman/skopeo (containers/image, containers-auth.json(5)) and the
 * docker CLI find them, so a user who has run `podman login` or `docker login` needs no extra flags.
 *
 * Order: --creds; else --authfile alone; else the first of these files that yields a credential:
 * REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json, ${XDG_CONFIG_HOME:-$HOME/.config}/containers/auth.json,
 * ${DOCKER_CONFIG:-$HOME/.docker}/config.json, $HOME/.dockercfg (legacy: the top level is the auths map).
 * Inside one file: a `credHelpers` entry for the host decides for that file; then `auths`, most specific key
 * first (host/ns/app, host/ns, host, then URL-style keys such as https://index.docker.io/v1/); then
 * `credsStore`, the file's default helper. A helper is `docker-credential-<name>`, found on PATH, run as
 * `get` with the server URL on stdin (docker-credential-helpers protocol).
 *
 * Secrets never appear in error messages: parse errors name the file and the key, not the content.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LadingError, fsError } from '../../errors.js';

export interface Credential {
  username: string;
  password: string;
}

/** The username that marks an identity token (docker `identitytoken`, or a helper answering with it); the token is the password. */
export const IDENTITY_TOKEN_USERNAME = '<token>';

export interface CredentialOptions {
  /** --creds user:pass: wins over everything (split at the FIRST ':'; empty user or missing ':' is an error). */
  creds?: string;
  /** --authfile PATH: used instead of the default search; it must exist. */
  authfile?: string;
  /** Environment (default process.env): REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR, XDG_CONFIG_HOME, HOME, DOCKER_CONFIG; also PATH and the helpers' environment. */
  env?: NodeJS.ProcessEnv;
  /** How long a credential helper may take before it is killed and the lookup fails (default 30 000 ms). */
  helperTimeoutMs?: number;
}

const DEFAULT_HELPER_TIMEOUT_MS = 30_000;
const MAX_HELPER_OUTPUT = 1024 * 1024;
const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
/** What a helper is asked for Docker Hub: docker's key first (what `docker login` stored), then podman's. */
const DOCKER_HUB_HELPER_URLS = ['https://index.docker.io/v1/', 'docker.io'];
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Finds the credential for `host` (e.g. 'quay.io', '127.0.0.1:5000', 'docker.io') and optional repository path ('ns/app'). */
export async function lookupCredential(
  host: string,
  repository: string | undefined,
  options: CredentialOptions = {},
): Promise<Credential | undefined> {
  const fixed = options.creds === undefined ? undefined : parseCreds(options.creds);
  if (fixed !== undefined) return { ...fixed };
  return new Resolver(options).lookup(host, repository);
}

/**
 * A memoizing source for one run: the same answer per host+repository, each auth file read once and each
 * helper run at most once per server URL. A malformed --creds throws here, before any lookup.
 */
export function credentialSource(options: CredentialOptions = {}): (host: string, repository?: string) => Promise<Credential | undefined> {
  const fixed = options.creds === undefined ? undefined : parseCreds(options.creds);
  const resolver = new Resolver(options);
  const answers = new Map<string, Promise<Credential | undefined>>();
  return (host, repository) => {
    if (fixed !== undefined) return Promise.resolve({ ...fixed });
    const key = `${normalizeHost(host)}\0${repositoryParts(repository).join('/')}`;
    let answer = answers.get(key);
    if (answer === undefined) {
      answer = resolver.lookup(host, repository);
      answers.set(key, answer);
    }
    return answer.then((c) => (c === undefined ? undefined : { ...c }));
  };
}

function parseCreds(creds: string): Credential {
  const colon = creds.indexOf(':');
  if (colon < 0) throw new LadingError('USAGE', '--creds must be USER:PASSWORD (no ":" found)');
  if (colon === 0) throw new LadingError('USAGE', '--creds has an empty user name: use USER:PASSWORD');
  return { username: creds.slice(0, colon), password: creds.slice(colon + 1) };
}

interface AuthFileLocation {
  path: string;
  /** ~/.dockercfg: the top level is the auths map, and every key counts only by its host. */
  legacy: boolean;
  /** --authfile: a missing file is an error rather than skipped. */
  required: boolean;
}

interface AuthEntry {
  key: string;
  /** host[/path], host lowercased, Docker Hub aliases folded to docker.io, URL keys cut to their host. */
  normalized: string;
  /** Among keys that normalize alike: 0 written exactly, 1 via a Docker Hub alias, 2 written as a URL. */
  rank: number;
  value: unknown;
}

interface AuthFile {
  path: string;
  entries: AuthEntry[];
  /** Normalized host -> helper name. */
  helpers: Map<string, string>;
  store: string | undefined;
}

class Resolver {
  private readonly env: NodeJS.ProcessEnv;
  private readonly timeoutMs: number;
  private readonly files = new Map<string, Promise<AuthFile | undefined>>();
  private readonly helperAnswers = new Map<string, Promise<Credential | undefined>>();

  constructor(private readonly options: CredentialOptions) {
    this.env = options.env ?? process.env;
    this.timeoutMs = options.helperTimeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS;
  }

  async lookup(host: string, repository: string | undefined): Promise<Credential | undefined> {
    const registry = normalizeHost(host);
    const parts = repositoryParts(repository);
    for (const location of this.locations()) {
      const file = await this.read(location);
      if (file === undefined) continue;
      const found = await this.fromFile(file, registry, parts);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  private locations(): AuthFileLocation[] {
    if (this.options.authfile !== undefined) return [{ path: this.options.authfile, legacy: false, required: true }];
    const env = (name: string): string | undefined => {
      const v = this.env[name];
      return v === undefined || v === '' ? undefined : v;
    };
    const home = env('HOME');
    const out: AuthFileLocation[] = [];
    const add = (path: string | undefined, legacy = false): void => {
      if (path !== undefined && !out.some((l) => l.path === path)) out.push({ path, legacy, required: false });
    };
    add(env('REGISTRY_AUTH_FILE'));
    const runtime = env('XDG_RUNTIME_DIR');
    add(runtime === undefined ? undefined : join(runtime, 'containers', 'auth.json'));
    const config = env('XDG_CONFIG_HOME') ?? (home === undefined ? undefined : join(home, '.config'));
    add(config === undefined ? undefined : join(config, 'containers', 'auth.json'));
    const docker = env('DOCKER_CONFIG') ?? (home === undefined ? undefined : join(home, '.docker'));
    add(docker === undefined ? undefined : join(docker, 'config.json'));
    add(home === undefined ? undefined : join(home, '.dockercfg'), true);
    return out;
  }

  private read(location: AuthFileLocation): Promise<AuthFile | undefined> {
    const key = `${location.legacy ? 'legacy' : 'auth'}\0${location.path}`;
    let p = this.files.get(key);
    if (p === undefined) {
      p = readAuthFile(location);
      this.files.set(key, p);
    }
    return p;
  }

  private async fromFile(file: AuthFile, registry: string, parts: readonly string[]): Promise<Credential | undefined> {
    // A helper configured for this registry decides for this file (containers-auth.json(5)).
    const helper = file.helpers.get(registry);
    if (helper !== undefined) return this.askHelper(helper, registry, file.path);

    const candidates: string[] = [];
    for (let n = parts.length; n > 0; n--) candidates.push(`${registry}/${parts.slice(0, n).join('/')}`);
    candidates.push(registry);
    for (const candidate of candidates) {
      const matches = file.entries.filter((e) => e.normalized === candidate).sort((a, b) => a.rank - b.rank);
      for (const entry of matches) {
        const credential = decodeEntry(file.path, entry);
        if (credential !== undefined) return credential;
      }
    }

    if (file.store !== undefined) return this.askHelper(file.store, registry, file.path);
    return undefined;
  }

  private async askHelper(name: string, registry: string, path: string): Promise<Credential | undefined> {
    if (!HELPER_NAME.test(name)) {
      throw new LadingError('CREDENTIALS', `auth file ${path} names an invalid credential helper "${name}"`, { path, helper: name });
    }
    const urls = registry === DOCKER_HUB ? DOCKER_HUB_HELPER_URLS : [registry];
    for (const url of urls) {
      const key = `${name}\0${url}`;
      let p = this.helperAnswers.get(key);
      if (p === undefined) {
        p = runHelper(name, url, this.env, this.timeoutMs);
        this.helperAnswers.set(key, p);
      }
      const credential = await p;
      if (credential !== undefined) return { ...credential };
    }
    return undefined;
  }
}

function normalizeHost(host: string): string {
  const h = host.trim().toLowerCase();
  return DOCKER_HUB_ALIASES.has(h) ? DOCKER_HUB : h;
}

function repositoryParts(repository: string | undefined): string[] {
  return (repository ?? '').split('/').filter((p) => p !== '');
}

function normalizeKey(key: string, legacy: boolean): { normalized: string; rank: number } {
  const stripped = key.replace(/^https?:\/\//i, '');
  const isUrl = stripped !== key;
  const slash = stripped.indexOf('/');
  const hostPart = (slash < 0 ? stripped : stripped.slice(0, slash)).toLowerCase();
  const host = DOCKER_HUB_ALIASES.has(hostPart) ? DOCKER_HUB : hostPart;
  // URL keys (docker's https://index.docker.io/v1/) and legacy keys count only by their host.
  const rest = isUrl || legacy || slash < 0 ? '' : stripped.slice(slash).replace(/\/+$/, '');
  const rank = isUrl ? 2 : host !== hostPart ? 1 : 0;
  return { normalized: host + rest, rank };
}

async function readAuthFile(location: AuthFileLocation): Promise<AuthFile | undefined> {
  const { path, legacy } = location;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      if (location.required) throw new LadingError('CREDENTIALS', `auth file ${path} does not exist`, { path });
      return undefined;
    }
    throw fsError(err, 'read auth file', path);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const file: AuthFile = { path, entries: [], helpers: new Map(), store: undefined };
  if (text.trim() === '') return file;

  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    // V8's message may quote the file's content (secrets included), so only the position is reported.
    const pos = /position (\d+)/.exec(err instanceof Error ? err.message : '')?.[1];
    throw new LadingError(
      'CREDENTIALS',
      `auth file ${path} is not valid JSON${pos === undefined ? '' : ` (${lineColumn(text, Number(pos))})`}`,
      {
        path,
      },
    );
  }
  if (!isObject(doc)) throw new LadingError('CREDENTIALS', `auth file ${path} is not a JSON object`, { path });

  let auths: unknown = legacy ? doc : doc.auths;
  if (auths === null) auths = undefined;
  if (auths !== undefined && !isObject(auths))
    throw new LadingError('CREDENTIALS', `auth file ${path}: "auths" is not an object`, { path });
  for (const [key, value] of Object.entries(auths ?? {})) file.entries.push({ key, value, ...normalizeKey(key, legacy) });
  if (legacy) return file;

  const helpers = doc.credHelpers;
  if (helpers !== undefined && helpers !== null) {
    if (!isObject(helpers)) throw new LadingError('CREDENTIALS', `auth file ${path}: "credHelpers" is not an object`, { path });
    const ranks = new Map<string, number>();
    for (const [key, name] of Object.entries(helpers)) {
      if (typeof name !== 'string') {
        throw new LadingError('CREDENTIALS', `auth file ${path}: credHelpers["${key}"] is not a helper name`, { path });
      }
      if (name === '') continue;
      // Helpers are configured per registry; the key written exactly beats an alias or URL form of it.
      const { normalized, rank } = normalizeKey(key, true);
      if ((ranks.get(normalized) ?? Infinity) > rank) {
        ranks.set(normalized, rank);
        file.helpers.set(normalized, name);
      }
    }
  }
  const store = doc.credsStore;
  if (store !== undefined && store !== null) {
    if (typeof store !== 'string') throw new LadingError('CREDENTIALS', `auth file ${path}: "credsStore" is not a helper name`, { path });
    if (store !== '') file.store = store;
  }
  return file;
}

function decodeEntry(path: string, entry: AuthEntry): Credential | undefined {
  const where = `auth file ${path}: the entry for "${entry.key}"`;
  const v = entry.value;
  if (v === null || v === undefined) return undefined;
  if (!isObject(v)) throw new LadingError('CREDENTIALS', `${where} is not an object`, { path, key: entry.key });

  const token = v.identitytoken;
  if (typeof token === 'string' && token !== '') return { username: IDENTITY_TOKEN_USERNAME, password: token };

  const auth = v.auth;
  if (auth !== undefined && auth !== null && typeof auth !== 'string') {
    throw new LadingError('CREDENTIALS', `${where} has an "auth" value that is not a string`, { path, key: entry.key });
  }
  if (typeof auth === 'string' && auth.trim() !== '') {
    const compact = auth.replace(/\s+/g, '');
    const decoded = BASE64.test(compact) ? Buffer.from(compact, 'base64').toString('utf8') : undefined;
    const colon = decoded?.indexOf(':') ?? -1;
    if (decoded === undefined || colon < 0) {
      throw new LadingError('CREDENTIALS', `${where} has an "auth" value that is not base64 of USER:PASSWORD`, { path, key: entry.key });
    }
    const username = decoded.slice(0, colon);
    // containers/image trims NULs some tools leave at the end of the password.
    const password = decoded.slice(colon + 1).replace(/\0+$/, '');
    if (username === '' && password === '') return undefined;
    return { username, password };
  }

  const username = v.username;
  if (typeof username === 'string' && username !== '') {
    const password = v.password;
    return { username, password: typeof password === 'string' ? password : '' };
  }
  return undefined;
}

/** Runs `docker-credential-<name> get` for one server URL (docker-credential-helpers protocol). */
function runHelper(name: string, serverUrl: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Credential | undefined> {
  const program = `docker-credential-${name}`;
  const context = { helper: program, server: serverUrl };
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(program, ['get'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      reject(new LadingError('CREDENTIALS', `cannot run credential helper ${program}: ${oneLine(String(err))}`, context, { cause: err }));
      return;
    }
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      // A grandchild may still hold the pipes open; stop listening so nothing keeps the process alive.
      child.stdout?.destroy();
      child.stderr?.destroy();
      finish(() =>
        reject(
          new LadingError(
            'CREDENTIALS',
            `credential helper ${program} did not answer within ${timeoutMs / 1000} s for ${serverUrl}`,
            context,
          ),
        ),
      );
    }, timeoutMs);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let size = 0;
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_HELPER_OUTPUT) into.push(chunk);
    };
    child.stdout?.on('data', collect(stdout));
    child.stderr?.on('data', collect(stderr));
    // A helper that exits without reading stdin must not crash the process with EPIPE.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(serverUrl);

    child.on('error', (err: NodeJS.ErrnoException) => {
      const message =
        err.code === 'ENOENT'
          ? `credential helper ${program} was not found on PATH`
          : `cannot run credential helper ${program}: ${err.code ?? oneLine(err.message)}`;
      finish(() => reject(new LadingError('CREDENTIALS', message, context, { cause: err })));
    });
    child.on('close', (code, signal) => {
      const out = Buffer.concat(stdout).toString('utf8');
      const errText = Buffer.concat(stderr).toString('utf8');
      finish(() => {
        if (code !== 0) {
          if (/credentials not found/i.test(out) || /credentials not found/i.test(errText)) {
            resolve(undefined);
            return;
          }
          const why = oneLine(errText) || oneLine(out) || (signal !== null ? `killed by ${signal}` : `exit code ${String(code)}`);
          reject(new LadingError('CREDENTIALS', `credential helper ${program} failed for ${serverUrl}: ${why}`, context));
          return;
        }
        let answer: unknown;
        try {
          answer = JSON.parse(out);
        } catch {
          answer = undefined;
        }
        if (!isObject(answer)) {
          reject(
            new LadingError(
              'CREDENTIALS',
              `credential helper ${program} sent an answer that is not a JSON object for ${serverUrl}`,
              context,
            ),
          );
          return;
        }
        const username = typeof answer.Username === 'string' ? answer.Username : '';
        const secret = typeof answer.Secret === 'string' ? answer.Secret : '';
        resolve(username === '' && secret === '' ? undefined : { username, password: secret });
      });
    });
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function oneLine(s: string): string {
  const line = s.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

function lineColumn(text: string, pos: number): string {
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  return `line ${line}, column ${column}`;
}
