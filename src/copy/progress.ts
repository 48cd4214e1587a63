/** The one progress-event type every long operation emits; the CLI renders it, a library user may log it. */
export type ProgressEvent =
  | { type: 'blob'; digest: string; size: number; action: 'skipped' | 'mounted' | 'linked' | 'copied' }
  | { type: 'bytes'; digest: string; transferred: number; size: number }
  | { type: 'manifest'; digest: string; mediaType: string; size: number }
  | { type: 'image'; source: string; destination: string; digest?: string; error?: string };

export type ProgressListener = (event: ProgressEvent) => void;
