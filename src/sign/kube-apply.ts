/**
 * Putting the release-signature ConfigMap into a connected cluster, as `oc adm release mirror
 * --apply-release-image-signature [--overwrite]` does: create it (POST), or with overwrite replace it
 * when it exists (GET, then PUT carrying the resourceVersion read, as `kubectl replace` does, so a
 * concurrent change is a conflict rather than lost). Without overwrite an existing ConfigMap is an error
 * that says to pass --overwrite.
 *
 * The kubeconfig is read the way kubectl reads it (--kubeconfig, else the first file of $KUBECONFIG,
 * else ~/.kube/config; the current context's cluster and user): server, CA (file or data),
 * insecure-skip-tls-verify, bearer token (inline or tokenFile), client certificate and key (file or
 * data), basic auth; as kubectl, no credentials are sent to a plain http:// server. exec and
 * auth-provider plugins are refused with a message: they run programs.
 * Hand-written over undici because these are three REST calls; a Kubernetes client library would bring
 * far more than it gives here.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, resolve } from 'node:path';
import { Agent, type Dispatcher, request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { LadingError, fsError } from '../errors.js';
import { type SignatureConfigMap, configMapJson } from './configmap.js';

export interface KubeAccess {
  server: string;
  /** What to call the cluster in messages. */
  context: string;
  ca?: string;
  insecure?: boolean;
  token?: string;
  cert?: string;
  key?: string;
  basic?: { username: string; password: string };
}

/** Reads the kubeconfig's current context. */
export async function loadKubeconfig(path?: string): Promise<KubeAccess> {
  const file = path ?? process.env.KUBECONFIG?.split(':').find((p) => p !== '') ?? resolve(homedir(), '.kube', 'config');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw fsError(e, 'read kubeconfig', file);
  }
  const fail = (why: string) => new LadingError('KUBERNETES', `kubeconfig ${file}: ${why}`, { kubeconfig: file });
  let doc: Record<string, unknown>;
  try {
    doc = (parseYaml(text) ?? {}) as Record<string, unknown>;
  } catch (e) {
    throw fail(`not valid YAML (${(e as Error).message})`);
  }
  const named = (list: unknown, name: string, kind: string, field: string): Record<string, unknown> => {
    const entry = (Array.isArray(list) ? list : []).find((x) => (x as { name?: unknown })?.name === name) as
      Record<string, unknown> | undefined;
    const value = entry?.[field];
    if (value === undefined || typeof value !== 'object' || value === null) throw fail(`no ${kind} named ${JSON.stringify(name)}`);
    return value as Record<string, unknown>;
  };
  const contextName = doc['current-context'];
  if (typeof contextName !== 'string' || contextName === '') throw fail('no current-context: run kubectl config use-context NAME');
  const context = named(doc.contexts, contextName, 'context', 'context');
  const cluster = named(doc.clusters, String(context.cluster), 'cluster', 'cluster');
  const user = context.user === undefined || context.user === '' ? {} : named(doc.users, String(context.user), 'user', 'user');
  if (typeof cluster.server !== 'string' || cluster.server === '') throw fail(`cluster ${String(context.cluster)} has no server`);
  if (user.exec !== undefined || user['auth-provider'] !== undefined) {
    throw fail(
      `user ${String(context.user)} authenticates with an exec or auth-provider plugin, which Lading does not run: use a token or client certificate`,
    );
  }
  const dir = dirname(resolve(file));
  const fileOrData = async (fileKey: string, dataKey: string, from: Record<string, unknown>): Promise<string | undefined> => {
    const data = from[dataKey];
    if (typeof data === 'string' && data !== '') return Buffer.from(data, 'base64').toString('utf8');
    const f = from[fileKey];
    if (typeof f !== 'string' || f === '') return undefined;
    const p = resolve(dir, f);
    try {
      return await readFile(p, 'utf8');
    } catch (e) {
      throw fsError(e, `read ${fileKey} of kubeconfig`, p);
    }
  };
  const access: KubeAccess = { server: cluster.server.replace(/\/+$/, ''), context: contextName };
  const ca = await fileOrData('certificate-authority', 'certificate-authority-data', cluster);
  if (ca !== undefined) access.ca = ca;
  if (cluster['insecure-skip-tls-verify'] === true) access.insecure = true;
  let token = typeof user.token === 'string' && user.token !== '' ? user.token : undefined;
  if (token === undefined && typeof user.tokenFile === 'string') token = (await fileOrData('tokenFile', '', user))?.trim();
  if (token !== undefined) access.token = token;
  const cert = await fileOrData('client-certificate', 'client-certificate-data', user);
  const key = await fileOrData('client-key', 'client-key-data', user);
  if (cert !== undefined) access.cert = cert;
  if (key !== undefined) access.key = key;
  if (typeof user.username === 'string' && typeof user.password === 'string')
    access.basic = { username: user.username, password: user.password };
  return access;
}

/** Creates the ConfigMap, or (overwrite) replaces an existing one. Returns what was done. */
export async function applyConfigMap(
  access: KubeAccess,
  cm: SignatureConfigMap,
  options: { overwrite?: boolean } = {},
): Promise<'created' | 'configured'> {
  const client = new KubeClient(access);
  try {
    const collection = `/api/v1/namespaces/${encodeURIComponent(cm.metadata.namespace)}/configmaps`;
    const item = `${collection}/${encodeURIComponent(cm.metadata.name)}`;
    const what = `configmap ${cm.metadata.namespace}/${cm.metadata.name}`;
    if (options.overwrite) {
      for (let attempt = 0; attempt < 3; attempt++) {
        const current = await client.send('GET', item);
        if (current.status === 404) break;
        if (current.status !== 200) throw client.error(current, `read ${what}`);
        const resourceVersion = (current.json as { metadata?: { resourceVersion?: unknown } } | undefined)?.metadata?.resourceVersion;
        const body = withResourceVersion(cm, typeof resourceVersion === 'string' ? resourceVersion : undefined);
        const put = await client.send('PUT', item, body);
        if (put.status === 200 || put.status === 201) return 'configured';
        if (put.status !== 409) throw client.error(put, `replace ${what}`);
      }
    }
    const post = await client.send('POST', collection, configMapJson(cm));
    if (post.status === 201 || post.status === 200) return 'created';
    if (post.status === 409) {
      throw new LadingError('KUBERNETES', `${what} already exists in cluster ${access.context}: pass --overwrite to replace it`, {
        configmap: cm.metadata.name,
      });
    }
    throw client.error(post, `create ${what}`);
  } finally {
    await client.close();
  }
}

function withResourceVersion(cm: SignatureConfigMap, resourceVersion: string | undefined): string {
  if (resourceVersion === undefined) return configMapJson(cm);
  const doc = JSON.parse(configMapJson(cm)) as { metadata: Record<string, unknown> };
  doc.metadata.resourceVersion = resourceVersion;
  return `${JSON.stringify(doc)}\n`;
}

interface KubeResponse {
  status: number;
  json: unknown;
}

class KubeClient {
  private readonly agent: Agent;

  constructor(private readonly access: KubeAccess) {
    this.agent = new Agent({
      connections: 2,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
      connect: {
        ...(access.ca !== undefined && { ca: access.ca }),
        ...(access.insecure && { rejectUnauthorized: false }),
        ...(access.cert !== undefined && { cert: access.cert }),
        ...(access.key !== undefined && { key: access.key }),
      },
    });
  }

  async send(method: Dispatcher.HttpMethod, path: string, body?: string): Promise<KubeResponse> {
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'lading/0.1' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    // As kubectl: credentials never go over plain HTTP.
    const secure = this.access.server.startsWith('https:');
    if (secure && this.access.token !== undefined) headers.authorization = `Bearer ${this.access.token}`;
    else if (secure && this.access.basic !== undefined) {
      headers.authorization = `Basic ${Buffer.from(`${this.access.basic.username}:${this.access.basic.password}`).toString('base64')}`;
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${this.access.server}${path}`, { method, headers, body: body ?? null, dispatcher: this.agent });
    } catch (e) {
      throw new LadingError(
        'KUBERNETES',
        `cannot reach the Kubernetes API at ${this.access.server} (${(e as Error).message})`,
        { server: this.access.server },
        { cause: e },
      );
    }
    const text = await res.body.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, json };
  }

  error(res: KubeResponse, action: string): LadingError {
    const message = (res.json as { message?: unknown } | undefined)?.message;
    const detail = typeof message === 'string' ? `: ${message}` : '';
    const plain = !this.access.server.startsWith('https:');
    const hint =
      res.status === 401
        ? plain
          ? ' (credentials are not sent to a plain http:// server, as kubectl does not send them: use https)'
          : ' (check the token or certificate in the kubeconfig)'
        : res.status === 403
          ? ' (the user may not do this in openshift-config-managed)'
          : '';
    return new LadingError(
      'KUBERNETES',
      `cannot ${action} in cluster ${this.access.context}: the API answered ${res.status}${detail}${hint}`,
      {
        server: this.access.server,
        status: String(res.status),
      },
    );
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
