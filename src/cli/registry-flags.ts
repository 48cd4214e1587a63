/** Registry options shared by every command that talks to registries (skopeo's spellings), and the client they build. */
import type { Command } from 'commander';
import { LadingError } from '../errors.js';
import { RegistryClient } from '../store/registry/client.js';
import { credentialSource } from '../store/registry/credentials.js';
import { DEFAULT_RETRY } from '../store/registry/retry.js';

export interface RegistryFlags {
  authfile?: string;
  creds?: string;
  srcCreds?: string;
  destCreds?: string;
  tlsVerify: string;
  certDir?: string;
  retryTimes?: string;
  retryDelay?: string;
}

export function addRegistryFlags(cmd: Command): Command {
  return cmd
    .option('--authfile <path>', 'credentials file (containers auth.json or docker config.json format)')
    .option('--creds <user:pass>', 'credentials for every registry')
    .option('--src-creds <user:pass>', 'credentials for the source registry')
    .option('--dest-creds <user:pass>', 'credentials for the destination registry')
    .option('--tls-verify <bool>', 'verify TLS certificates, and require HTTPS (false also allows plain HTTP)', 'true')
    .option('--cert-dir <dir>', 'trust the CA certificates (*.crt) in this directory')
    .option('--retry-times <n>', `retries per request on transient failures (default ${DEFAULT_RETRY.attempts - 1})`)
    .option('--retry-delay <ms>', `first backoff before a retry, doubling each time (default ${DEFAULT_RETRY.baseDelayMs})`);
}

/** One client for the whole run: connections, tokens and TLS settings are shared by every image. */
export function registryClient(flags: RegistryFlags, hosts: { src?: string | undefined; dest?: string | undefined } = {}): RegistryClient {
  if (flags.tlsVerify !== 'true' && flags.tlsVerify !== 'false') throw new LadingError('USAGE', '--tls-verify takes true or false');
  const common = credentialSource({
    ...(flags.authfile !== undefined && { authfile: flags.authfile }),
    ...(flags.creds !== undefined && { creds: flags.creds }),
  });
  const src = flags.srcCreds === undefined ? undefined : credentialSource({ creds: flags.srcCreds });
  const dest = flags.destCreds === undefined ? undefined : credentialSource({ creds: flags.destCreds });
  let attempts = DEFAULT_RETRY.attempts;
  if (flags.retryTimes !== undefined) {
    attempts = Number(flags.retryTimes) + 1;
    if (!Number.isInteger(attempts) || attempts < 1) throw new LadingError('USAGE', '--retry-times takes a whole number');
  }
  return new RegistryClient({
    credentials: (host, repository) => {
      if (dest !== undefined && sameHost(host, hosts.dest)) return dest(host, repository);
      if (src !== undefined && sameHost(host, hosts.src)) return src(host, repository);
      return common(host, repository);
    },
    tlsVerify: flags.tlsVerify === 'true',
    ...(flags.certDir !== undefined && { certDir: flags.certDir }),
    retry: { ...DEFAULT_RETRY, attempts, ...(flags.retryDelay !== undefined && { baseDelayMs: whole(flags.retryDelay, '--retry-delay') }) },
  });
}

function sameHost(a: string, b: string | undefined): boolean {
  const norm = (h: string) => (h === 'docker.io' || h === 'index.docker.io' ? 'registry-1.docker.io' : h);
  return b !== undefined && norm(a) === norm(b);
}

function whole(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new LadingError('USAGE', `${flag} takes a whole number`);
  return n;
}
