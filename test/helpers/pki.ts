/**
 * Throwaway X.509 material for the registry harness, made with /usr/bin/openssl: a CA and a server
 * certificate for 127.0.0.1/localhost (TLS), and a self-signed signing certificate (token auth).
 * Keys are EC P-256: quick to generate, accepted by Go (docker-registry, skopeo) and Node.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ok } from './run.js';

export interface KeyPair {
  /** Paths of the PEM certificate and its unencrypted PEM private key. */
  readonly cert: string;
  readonly key: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A self-signed certificate with its key, written as `NAME.crt` and `NAME.key` in `dir`. */
export async function selfSigned(dir: string, name: string, subject: string, extensions: readonly string[] = []): Promise<KeyPair> {
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const addext = extensions.flatMap((e) => ['-addext', e]);
  await ok('openssl', 'req', '-x509', ...EC, '-keyout', pair.key, '-out', pair.cert, '-days', '2', '-subj', subject, ...addext);
  return pair;
}

/** A CA certificate and key (`ca.crt`, `ca.key` in `dir`). */
export function makeCa(dir: string): Promise<KeyPair> {
  return selfSigned(dir, 'ca', '/CN=lading test CA', ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']);
}

/** A server certificate for IP 127.0.0.1 and DNS localhost signed by `ca` (`server.crt`, `server.key` in `dir`). */
export async function makeServerCert(dir: string, ca: KeyPair): Promise<KeyPair> {
  const pair = { cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
  const csr = join(dir, 'server.csr');
  const ext = join(dir, 'server.ext');
  await ok('openssl', 'req', '-new', ...EC, '-keyout', pair.key, '-out', csr, '-subj', '/CN=127.0.0.1');
  await writeFile(
    ext,
    [
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  const serial = `0x${randomBytes(8).toString('hex')}`;
  await ok(
    'openssl',
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-set_serial',
    serial,
    '-days',
    '2',
    '-out',
    pair.cert,
    '-extfile',
    ext,
  );
  return pair;
}

/** The base64 DER body of a PEM certificate file (what a JWS `x5c` entry holds). */
export async function certDerBase64(certPath: string): Promise<string> {
  const pem = await readFile(certPath, 'utf8');
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
  if (!m?.[1]) throw new Error(`${certPath}: no PEM certificate`);
  return m[1].replace(/\s+/g, '');
}
