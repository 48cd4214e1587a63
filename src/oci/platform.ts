/**
 * Platform specifiers (`linux/arm64/v8`) and the matching used to pick one image from an index. The
 * normalization follows containerd's `platforms` package (Parse/Normalize), the de facto reference, so
 * `--platform` means here what it means to docker, podman and skopeo. Hand-written: it is a small table,
 * and there is no maintained JavaScript port of containerd's rules.
 *
 * Matching is exact after normalization (os, architecture, variant); containerd's extra "an arm/v7 host
 * also runs v6 images" fallbacks are not applied, because Lading copies for a target, not for itself.
 */
import { endianness } from 'node:os';
import { LadingError } from '../errors.js';
import type { Platform } from './types.js';

const COMPONENT = /^[A-Za-z0-9_.-]+$/;

/**
 * Parses `os/arch[/variant]`, normalizing as containerd does: lowercase; `macos` -> `darwin`; `aarch64`
 * -> `arm64`; `x86_64`/`x86-64` -> `amd64`; `i386` -> `386`; `armhf` -> arm/v7; `armel` -> arm/v6; `arm`
 * with no variant -> arm/v7; arm variants `5`..`8` -> `v5`..`v8`; an explicit arm64 variant `8`/`v8.0`
 * -> `v8` (kept, as containerd's Parse does; matching treats it as no variant); arm64 `9`/`9.0`/`v9.0` ->
 * `v9`; amd64 `v1` -> no variant. Throws USAGE on anything else malformed.
 */
export function parsePlatform(spec: string): Platform {
  const parts = spec.split('/');
  if (parts.length < 2 || parts.length > 3 || !parts.every((p) => COMPONENT.test(p))) {
    throw new LadingError('USAGE', `invalid platform "${spec}": expected OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64 or linux/arm64/v8`);
  }
  const [os = '', architecture = '', variant] = parts;
  const n = normalize({ os, architecture, ...(variant !== undefined && { variant }) });
  // As containerd's Parse: an explicitly given arm64 variant v8 is kept (it normalizes away in matching).
  if (variant !== undefined && n.architecture === 'arm64' && n.variant === undefined) n.variant = 'v8';
  return n;
}

/** `os/arch[/variant]`, as given (not normalized). */
export function formatPlatform(p: Platform): string {
  return `${p.os || 'unknown'}/${p.architecture || 'unknown'}${p.variant ? `/${p.variant}` : ''}`;
}

/**
 * True when `have` (an index entry's platform) is the platform `want` asks for: os, architecture and
 * variant equal after normalization, where arm64 means arm64/v8 and arm means arm/v7.
 */
export function platformMatches(want: Platform, have: Platform): boolean {
  const a = normalize(want);
  const b = normalize(have);
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

/**
 * The platform whose images this machine runs. On macOS that is Linux: containers run in a Linux VM
 * there (Docker Desktop, Podman, Lima), and darwin images hardly exist. Windows stays `windows`.
 */
export function hostPlatform(): Platform {
  const os = ({ darwin: 'linux', win32: 'windows', sunos: 'solaris' } as Record<string, string>)[process.platform] ?? process.platform;
  let architecture: string;
  let variant: string | undefined;
  switch (process.arch) {
    case 'x64':
      architecture = 'amd64';
      break;
    case 'ia32':
      architecture = '386';
      break;
    case 'arm': {
      architecture = 'arm';
      const v = (process.config.variables as unknown as Record<string, unknown>).arm_version;
      variant = `v${typeof v === 'string' || typeof v === 'number' ? v : '7'}`;
      break;
    }
    case 'ppc64':
      architecture = endianness() === 'LE' ? 'ppc64le' : 'ppc64';
      break;
    default:
      architecture = process.arch; // arm64, s390x, riscv64, loong64, mips64el, … are already Go names.
  }
  return normalize({ os, architecture, ...(variant !== undefined && { variant }) });
}

/** containerd's Normalize: lowercases and maps aliases; the arm64 default variant v8 becomes no variant. */
function normalize(p: Platform): Platform {
  let os = p.os.toLowerCase();
  if (os === 'macos') os = 'darwin';
  let architecture = p.architecture.toLowerCase();
  let variant = (p.variant ?? '').toLowerCase();
  switch (architecture) {
    case 'i386':
      architecture = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = '';
      else if (variant === '9' || variant === '9.0' || variant === 'v9.0') variant = 'v9';
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      break;
  }
  const out: Platform = { ...p, os, architecture };
  if (variant === '') delete out.variant;
  else out.variant = variant;
  return out;
}
