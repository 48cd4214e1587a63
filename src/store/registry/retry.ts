/**
 * The one retry policy for registry traffic: exponential backoff with full jitter on connection errors,
 * 408, 429 and 5xx, honouring Retry-After, bounded in attempts and in total delay. Only idempotent
 * requests are retried here; uploads resume from what the registry reports instead (upload.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryPolicy {
  /** Attempts in all, the first included (default 5). */
  attempts: number;
  /** First backoff in ms (default 250); doubles each time, randomized (full jitter). */
  baseDelayMs: number;
  /** Longest single wait in ms, Retry-After included (default 20 s). */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 20_000 };

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUS.has(status);
}

/** True for errors that mean the connection failed, not that the request was wrong. */
export function isTransientError(e: unknown): boolean {
  for (
    let cur = e as { code?: unknown; cause?: unknown } | undefined, depth = 0;
    cur && depth < 4;
    cur = cur.cause as typeof cur, depth++
  ) {
    if (typeof cur.code === 'string' && RETRYABLE_CODES.has(cur.code)) return true;
  }
  return false;
}

/** Milliseconds a Retry-After header asks for (seconds or an HTTP date), or undefined. */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The wait before attempt `attempt` (1-based count of failures so far). */
export function backoffMs(policy: RetryPolicy, attempt: number, retryAfter?: number): number {
  if (retryAfter !== undefined) return Math.min(retryAfter, policy.maxDelayMs);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(Math.random() * ceiling);
}

/** A failed attempt the caller may retry: carries the response's Retry-After, if any. */
export class RetryableFailure extends Error {
  constructor(
    message: string,
    readonly retryAfter?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Runs `attempt` until it succeeds, throws something not retryable, or the policy is used up; the last
 * failure is rethrown (its cause, for a RetryableFailure) so the caller's message is about what went wrong.
 */
export async function withRetry<T>(policy: RetryPolicy, attempt: (n: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (e) {
      const retryable = e instanceof RetryableFailure || isTransientError(e);
      if (!retryable || n >= policy.attempts || signal?.aborted) throw e instanceof RetryableFailure && e.cause !== undefined ? e.cause : e;
      await sleep(backoffMs(policy, n, e instanceof RetryableFailure ? e.retryAfter : undefined), undefined, { signal });
    }
  }
}
