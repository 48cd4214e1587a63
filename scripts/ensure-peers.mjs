// Makes sure the Debian peers the tests run against are installed: the real registry, skopeo, umoci,
// gpg, fsverity, mkfs/fsck.erofs, objcopy, systemd-boot's EFI stub and kubectl. As root it installs what is
// missing with apt-get; otherwise it stops at once with the one line to run.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const PEERS = [
  ['docker-registry', '/usr/bin/docker-registry'],
  ['skopeo', '/usr/bin/skopeo'],
  ['umoci', '/usr/bin/umoci'],
  ['fsverity', '/usr/bin/fsverity'],
  ['gnupg', '/usr/bin/gpg'],
  ['erofs-utils', '/usr/bin/mkfs.erofs'],
  ['binutils', '/usr/bin/objcopy'],
  ['systemd-boot-efi', '/usr/lib/systemd/boot/efi'],
  // kubectl: the ConfigMap apply tests compare Lading's requests with kubectl's.
  ['kubernetes-client', '/usr/bin/kubectl'],
];

const missing = PEERS.filter(([, path]) => !existsSync(path)).map(([pkg]) => pkg);
if (missing.length === 0) process.exit(0);

const line = `apt-get update && apt-get install -y --no-install-recommends ${missing.join(' ')}`;
if (process.getuid?.() !== 0) {
  console.error(`lading tests need Debian packages that are missing: ${missing.join(' ')}\nrun: sudo sh -c '${line}'`);
  process.exit(1);
}
console.error(`installing test peers: ${missing.join(' ')}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
