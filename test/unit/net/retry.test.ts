// The retry rules of the network layer: which answers and failures are worth
// another try, how long to wait, and that an unsafe request is sent once.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RETRY,
  HttpError,
  NetworkError,
  TRANSIENT_KINDS,
  backoffDelay,
  isRetryableStatus,
  parseRetryAfter,
  retryAfterOf,
  withRetries,
  type NetworkErrorKind,
  type Outcome,
} from '../../../src/net/index.js';

describe('which statuses are tried again', () => {
  it.each([
    [408, true],
    [429, true],
    [500, true],
    [502, true],
    [503, true],
    [504, true],
    [599, true],
    [501, false],
    [505, false],
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [409, false],
    [422, false],
    [200, false],
    [201, false],
  ])('HTTP %i: %s', (status, retried) => {
    expect(isRetryableStatus(status)).toBe(retried);
  });
});

describe('which network failures are tried again', () => {
  it.each<[NetworkErrorKind, boolean]>([
    ['refused', true],
    ['dns-temporary', true],
    ['connect-timeout', true],
    ['no-answer', true],
    ['reset', true],
    ['dns', false],
    ['unreachable', false],
    ['tls-untrusted', false],
    ['tls-hostname', false],
    ['tls-expired', false],
    ['tls-protocol', false],
    ['too-large', false],
    ['other', false],
  ])('%s: %s', (kind, retried) => {
    expect(TRANSIENT_KINDS.has(kind)).toBe(retried);
  });
});

describe('backoff and Retry-After', () => {
  const policy = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 5000 };

  it('backs off exponentially up to a cap; the default is 0.5, 1, 2 s', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect([1, 2, 3].map((n) => backoffDelay(n, DEFAULT_RETRY))).toEqual([500, 1000, 2000]);
  });

  it.each<[string | undefined, number | undefined]>([
    ['3', 3000],
    [' 0 ', 0],
    ['120', 120_000],
    ['Wed, 01 May 2024 12:00:02 GMT', 2000],
    ['Wed, 01 May 2024 11:00:00 GMT', 0],
    ['soon', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('Retry-After %j is %j ms', (value, ms) => {
    expect(parseRetryAfter(value, Date.parse('2024-05-01T12:00:00Z'))).toBe(ms);
  });

  it('reads Retry-After from headers, and caps what a server asks for', () => {
    expect(retryAfterOf({ 'retry-after': '2' })).toBe(2000);
    expect(retryAfterOf({})).toBeUndefined();
    expect(backoffDelay(1, policy, 3000)).toBe(3000);
    expect(backoffDelay(1, policy, 0)).toBe(0);
    expect(backoffDelay(1, policy, 120_000)).toBe(5000);
  });
});

describe('withRetries', () => {
  const policy = { attempts: 4, baseDelayMs: 10, maxDelayMs: 40, maxRetryAfterMs: 5000 };
  const transientOnly = (o: Outcome<number>) =>
    !o.ok && (o.error instanceof HttpError || (o.error instanceof NetworkError && TRANSIENT_KINDS.has(o.error.kind)))
      ? { retryAfterMs: o.error instanceof HttpError ? retryAfterOf(o.error.headers) : undefined }
      : undefined;

  async function runScript(script: Array<number | Error>, safeToRepeat = true) {
    const sleeps: number[] = [];
    let n = 0;
    const result = await withRetries(
      async () => {
        const step = script[Math.min(n++, script.length - 1)];
        if (step instanceof Error) throw step;
        return step;
      },
      { policy, safeToRepeat, retryable: transientOnly, sleep: async (ms) => void sleeps.push(ms) },
    );
    return { result, sleeps, calls: n };
  }

  it('tries again after transient failures, waiting as the server asks, then returns the value', async () => {
    const { result, sleeps, calls } = await runScript([
      new HttpError(429, 'HTTP 429', { 'retry-after': '2' }),
      new NetworkError('reset', 'read ECONNRESET', { code: 'ECONNRESET' }),
      new HttpError(503, 'HTTP 503'),
      7,
    ]);
    expect(result).toEqual({ outcome: { ok: true, value: 7 }, tries: 4, exhausted: false });
    expect(sleeps).toEqual([2000, 20, 40]);
    expect(calls).toBe(4);
  });

  it('stops at once on a failure another try cannot cure', async () => {
    const refusedTls = new NetworkError('tls-untrusted', 'self-signed certificate', { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    const { result, sleeps } = await runScript([refusedTls, 1]);
    expect(result).toEqual({ outcome: { ok: false, error: refusedTls }, tries: 1, exhausted: false });
    expect(sleeps).toEqual([]);
  });

  it('gives up after the bounded number of tries and says the tries ran out', async () => {
    const { result, sleeps, calls } = await runScript([new HttpError(500, 'HTTP 500')]);
    expect(result.tries).toBe(4);
    expect(result.exhausted).toBe(true);
    expect(result.outcome.ok).toBe(false);
    expect(sleeps).toEqual([10, 20, 40]);
    expect(calls).toBe(4);
  });

  it('sends a request that is not safe to repeat once', async () => {
    const { result, calls } = await runScript([new NetworkError('reset', 'socket hang up', { code: 'ECONNRESET' }), 1], false);
    expect(calls).toBe(1);
    expect(result).toMatchObject({ tries: 1, exhausted: true, outcome: { ok: false } });
  });

  it('may retry on an answer, and returns the last answer when the tries run out', async () => {
    let n = 0;
    const result = await withRetries(async () => ++n, {
      policy: { ...policy, attempts: 3 },
      safeToRepeat: true,
      retryable: (o) => (o.ok && o.value < 10 ? {} : undefined),
      sleep: async () => undefined,
    });
    expect(result).toEqual({ outcome: { ok: true, value: 3 }, tries: 3, exhausted: true });
  });
});
