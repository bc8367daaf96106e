// Bounded retries with exponential backoff and Retry-After. What is worth
// another try is the caller's call: it knows whether its request is safe to
// repeat (a GET, a PUT of the same bytes, a server-side apply) and which
// answers of its server are transient. This module only counts and waits.
import type { IncomingHttpHeaders } from 'node:http';
import type { NetworkErrorKind } from './errors.js';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A Retry-After longer than this is cut to it. */
  maxRetryAfterMs: number;
}

/** The registry's policy (and the default): 4 tries, 0.5/1/2 s, Retry-After up to 60 s. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 500, maxDelayMs: 8_000, maxRetryAfterMs: 60_000 };

/**
 * Failures where the request did not get through, or broke on the way:
 * another try may cure them. A name that does not resolve, a missing route
 * and every TLS failure are not here: waiting does not change them.
 */
export const TRANSIENT_KINDS: ReadonlySet<NetworkErrorKind> = new Set<NetworkErrorKind>(['refused', 'dns-temporary', 'connect-timeout', 'no-answer', 'reset']);

/** 408, 429 and 5xx but 501 (not implemented) and 505 (HTTP version): a server or a proxy briefly unwell. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/** Retry-After in ms (delta-seconds or an HTTP date), or undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, nowMs: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const when = Date.parse(text);
  if (Number.isNaN(when)) return undefined;
  return Math.max(0, when - nowMs);
}

/** The Retry-After of an answer's headers, in ms. */
export function retryAfterOf(headers: IncomingHttpHeaders | undefined): number | undefined {
  const v = headers?.['retry-after'];
  return parseRetryAfter(Array.isArray(v) ? v[0] : v);
}

/** How long to wait after failed try number `attempt` (1-based). */
export function backoffDelay(attempt: number, policy: RetryPolicy, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxRetryAfterMs);
  return Math.min(policy.baseDelayMs * 2 ** (attempt - 1), policy.maxDelayMs);
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Another try is worth it; `retryAfterMs` is what the server asked for, if it did. */
export interface RetryVerdict {
  retryAfterMs?: number;
}

export interface RetryOptions<T> {
  policy: RetryPolicy;
  /**
   * Whether the request may be sent again at all. False for a request whose
   * repeat could do something twice (a POST that creates something): it is
   * sent once, whatever happens.
   */
  safeToRepeat: boolean;
  /** Whether this outcome (an answer or an error) may be cured by another try. */
  retryable: (outcome: Outcome<T>) => RetryVerdict | undefined;
  /** Told before each pause. */
  onRetry?: (retry: { attempt: number; delayMs: number; outcome: Outcome<T> }) => void;
  sleep?: (ms: number) => Promise<void>;
}

export interface RetryResult<T> {
  /** The last outcome: a value (maybe a transient answer, when the tries ran out) or an error. */
  outcome: Outcome<T>;
  tries: number;
  /** True when the last outcome was still retryable: the tries ran out. */
  exhausted: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `tryOnce` until its outcome is not retryable or the tries run out. Never throws what `tryOnce` throws: it returns it. */
export async function withRetries<T>(tryOnce: (attempt: number) => Promise<T>, options: RetryOptions<T>): Promise<RetryResult<T>> {
  const attempts = options.safeToRepeat ? Math.max(1, options.policy.attempts) : 1;
  for (let attempt = 1; ; attempt++) {
    let outcome: Outcome<T>;
    try {
      outcome = { ok: true, value: await tryOnce(attempt) };
    } catch (error) {
      outcome = { ok: false, error };
    }
    const verdict = options.retryable(outcome);
    if (!verdict || attempt >= attempts) return { outcome, tries: attempt, exhausted: verdict !== undefined };
    const delayMs = backoffDelay(attempt, options.policy, verdict.retryAfterMs);
    options.onRetry?.({ attempt, delayMs, outcome });
    await (options.sleep ?? sleep)(delayMs);
  }
}
