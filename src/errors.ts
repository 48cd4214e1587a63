/**
 * Errors are values with a stable code, a one-line message a person can act on, and the context that
 * produced them (which image, which blob, which file). The CLI prints `message` alone unless --debug.
 */

/** Stable, machine-readable error codes. Add here; never reuse a code for a different meaning. */
export type ErrorCode =
  | 'INVALID_DIGEST'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'INVALID_REFERENCE'
  | 'UNSUPPORTED_TRANSPORT'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'INVALID_MANIFEST'
  | 'INVALID_LAYOUT'
  | 'MANIFEST_TOO_LARGE'
  | 'NOT_FOUND'
  | 'BLOB_UNKNOWN'
  | 'AMBIGUOUS'
  | 'UNSAFE_PATH'
  | 'INVALID_ARCHIVE'
  | 'LOCKED'
  | 'IO'
  | 'USAGE'
  | 'NO_MATCHING_PLATFORM'
  | 'AUTH'
  | 'REGISTRY'
  | 'CREDENTIALS'
  | 'INVALID_MIRROR_SET'
  | 'INVALID_BOUND_IMAGE'
  | 'SIGNATURE'
  | 'SIGNATURE_STORE'
  | 'INVALID_POLICY'
  | 'KEY'
  | 'KUBERNETES'
  | 'INVALID_DUMP'
  | 'UNSUPPORTED_TREE'
  | 'FILE_CHANGED'
  | 'INVALID_SPEC'
  | 'NOT_REPRODUCIBLE'
  | 'MARKER_NOT_FOUND'
  | 'INVALID_PINNED_VALUE'
  | 'INVALID_RELEASE'
  | 'INVALID_UKI';

export class LadingError extends Error {
  override readonly name = 'LadingError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly context: Readonly<Record<string, string>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isLadingError(e: unknown, code?: ErrorCode): e is LadingError {
  return e instanceof LadingError && (code === undefined || e.code === code);
}

/**
 * Turns a Node system error from a filesystem call into a LadingError that says which path and what to
 * do; anything else passes through unchanged.
 */
export function fsError(err: unknown, action: string, path: string): unknown {
  if (err instanceof LadingError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || code.startsWith('ERR_')) return err;
  const hint: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only filesystem',
    ENOSPC: 'no space left on device',
    ENOENT: 'no such file or directory',
    ENOTDIR: 'a path component is not a directory',
    EISDIR: 'is a directory',
    EEXIST: 'already exists',
  };
  return new LadingError('IO', `cannot ${action} ${path}: ${hint[code] ?? code}`, { path }, { cause: err });
}
