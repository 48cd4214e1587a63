/** Copying one image: a one-image CopySession, for callers that need no more. */
import type { Store } from '../store/store.js';
import { type CopyResult, CopySession, type ImageCopyOptions, type SessionOptions } from './copy-session.js';

export type CopyOptions = SessionOptions & ImageCopyOptions;
export type { CopyResult };

export function copyImage(src: Store, srcRef: string | undefined, dst: Store, options: CopyOptions = {}): Promise<CopyResult> {
  const { platforms, filterIndex, tags, ...session } = options;
  const image: ImageCopyOptions = {
    ...(platforms !== undefined && { platforms }),
    ...(filterIndex !== undefined && { filterIndex }),
    ...(tags !== undefined && { tags }),
  };
  return new CopySession(session).copy(src, srcRef, dst, image);
}
