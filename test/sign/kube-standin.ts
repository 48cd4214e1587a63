/**
 * A stand-in for the Kubernetes API's ConfigMap endpoints (no API server can run here): discovery
 * (/version, /api, /apis, /api/v1) enough for kubectl, and GET/POST/PUT/PATCH of ConfigMaps in memory
 * with resourceVersions, 404/409 Status answers as the API server gives them, and bearer-token auth. It
 * records every request so a test can compare what Lading sends with what kubectl sends.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after } from 'node:test';

export interface Recorded {
  method: string;
  path: string;
  query: string;
  contentType?: string;
  authorization?: string;
  body?: unknown;
}

export interface KubeStandIn {
  url: string;
  token: string;
  requests: Recorded[];
  /** The ConfigMaps held, by namespace/name. */
  objects: Map<string, Record<string, unknown>>;
  /** Requests about ConfigMaps only (discovery and namespace lookups left out). */
  configMapRequests(): Recorded[];
}

export async function startKubeStandIn(options: { tls?: { cert: string; key: string }; token?: string } = {}): Promise<KubeStandIn> {
  const token = options.token ?? 't0ken-for-tests';
  const requests: Recorded[] = [];
  const objects = new Map<string, Record<string, unknown>>();
  let version = 100;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        body = text;
      }
      requests.push({
        method: req.method ?? '',
        path: url.pathname,
        query: url.search,
        ...(req.headers['content-type'] !== undefined && { contentType: req.headers['content-type'] }),
        ...(req.headers.authorization !== undefined && { authorization: req.headers.authorization }),
        ...(body !== undefined && { body }),
      });
      const send = (code: number, obj: unknown) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      const status = (code: number, reason: string, message: string) =>
        send(code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
      if (req.headers.authorization !== `Bearer ${token}`) return status(401, 'Unauthorized', 'Unauthorized');
      const p = url.pathname;
      if (p === '/version') return send(200, { major: '1', minor: '29', gitVersion: 'v1.29.0' });
      if (p === '/api')
        return send(200, {
          kind: 'APIVersions',
          versions: ['v1'],
          serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }],
        });
      if (p === '/apis') return send(200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [] });
      if (p === '/api/v1') {
        return send(200, {
          kind: 'APIResourceList',
          groupVersion: 'v1',
          resources: [
            {
              name: 'configmaps',
              singularName: 'configmap',
              namespaced: true,
              kind: 'ConfigMap',
              verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
              shortNames: ['cm'],
            },
          ],
        });
      }
      const ns = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(p);
      if (ns !== null) return send(200, { kind: 'Namespace', apiVersion: 'v1', metadata: { name: ns[1] } });
      const m = /^\/api\/v1\/namespaces\/([^/]+)\/configmaps(?:\/([^/]+))?$/.exec(p);
      if (m === null) return status(404, 'NotFound', 'the server could not find the requested resource');
      const [, namespace, name] = m;
      const key = `${namespace}/${name ?? (body as { metadata?: { name?: string } })?.metadata?.name}`;
      const notFound = () => status(404, 'NotFound', `configmaps "${name}" not found`);
      const store = (obj: Record<string, unknown>) => {
        const meta: Record<string, unknown> = {
          ...(obj.metadata as Record<string, unknown>),
          resourceVersion: String(++version),
          uid: 'uid-1',
        };
        delete meta.creationTimestamp;
        const saved = { ...obj, metadata: meta };
        objects.set(key, saved);
        return saved;
      };
      switch (req.method) {
        case 'GET':
          return objects.has(key) ? send(200, objects.get(key)) : notFound();
        case 'POST':
          if (objects.has(key)) return status(409, 'AlreadyExists', `configmaps "${key.split('/')[1]}" already exists`);
          return send(201, store(body as Record<string, unknown>));
        case 'PUT': {
          const current = objects.get(key);
          if (current === undefined) return notFound();
          const rv = (body as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
          if (rv !== undefined && rv !== (current.metadata as { resourceVersion: string }).resourceVersion) {
            return status(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again');
          }
          return send(200, store(body as Record<string, unknown>));
        }
        case 'PATCH':
          return objects.has(key) ? send(200, objects.get(key)) : notFound();
        default:
          return status(405, 'MethodNotAllowed', 'method not allowed');
      }
    });
  };
  const server: Server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    token,
    requests,
    objects,
    configMapRequests: () => requests.filter((r) => r.path.includes('/configmaps')),
  };
}

/** A kubeconfig for `server` with a bearer token (and a CA file, for TLS). */
export function kubeconfig(server: string, token: string, extra: { ca?: string; insecure?: boolean } = {}): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: standin',
    '  cluster:',
    `    server: ${server}`,
    ...(extra.ca !== undefined ? [`    certificate-authority: ${extra.ca}`] : []),
    ...(extra.insecure ? ['    insecure-skip-tls-verify: true'] : []),
    'contexts:',
    '- name: standin',
    '  context:',
    '    cluster: standin',
    '    user: tester',
    'current-context: standin',
    'users:',
    '- name: tester',
    '  user:',
    `    token: ${token}`,
    '',
  ].join('\n');
}
