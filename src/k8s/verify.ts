// Verification after an apply: send HTTP cases to the gateway until they all
// pass (the new plugin is answering) or the time is up.
import * as http from 'node:http';
import * as https from 'node:https';
import { compareResponse, type CaseExpect } from '../test/cases.js';

/**
 * One case of the plugin's tests.yaml (the same cases the local Envoy test
 * ran; a TestCase from src/test/cases.ts fits). Against a remote gateway only
 * the response can be checked: `upstream`, `upstreamHeaders` and `logs`
 * expectations are skipped and said so in the report.
 */
export interface VerifyCase {
  name: string;
  request: {
    /** Default GET. */
    method?: string;
    /** Path (and query) appended to the verification URL, e.g. `/headers?x=1`. */
    path: string;
    headers?: Record<string, string>;
    body?: string;
  };
  expect: CaseExpect;
}

export interface VerifyOptions {
  /** The gateway's address, e.g. `http://203.0.113.10` or `https://gw.example.com:8443`. */
  url: string;
  cases: VerifyCase[];
  /** Give up after this long; default 120 s. */
  timeoutMs?: number;
  /** Pause between rounds; default 2 s. */
  intervalMs?: number;
  /** Per request; default 5 s. */
  requestTimeoutMs?: number;
  /** Accept any TLS certificate from the gateway (default false). */
  insecure?: boolean;
  /** Called after each round that did not pass, e.g. to log progress. */
  onAttempt?: (attempt: number, report: VerifyCaseResult[]) => void;
}

export interface VerifyCaseResult {
  name: string;
  passed: boolean;
  /** HTTP status received, if any. */
  status?: number;
  /** Why it failed (one line each). */
  problems: string[];
  /** Expectations that cannot be checked against a remote gateway. */
  skipped?: string[];
}

export interface VerifyReport {
  passed: boolean;
  /** Rounds run. */
  attempts: number;
  elapsedMs: number;
  /** Results of the last round. */
  cases: VerifyCaseResult[];
}

interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function send(base: URL, c: VerifyCase, timeoutMs: number, insecure: boolean): Promise<HttpAnswer> {
  const p = c.request.path;
  const url = new URL(base.href.replace(/\/+$/, '') + (p.startsWith('/') ? p : `/${p}`));
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(
      url,
      {
        method: c.request.method ?? 'GET',
        headers: { 'user-agent': 'asm-wasm-action-verify', ...(c.request.headers ?? {}) },
        ...(url.protocol === 'https:' && insecure ? { rejectUnauthorized: false } : {}),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs / 1000}s`)));
    req.on('error', reject);
    req.end(c.request.body);
  });
}

/** Checks one answer against a case's expectations; returns the failures. */
export function checkAnswer(c: VerifyCase, answer: HttpAnswer): string[] {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return compareResponse(c.expect, { status: answer.status, headers, body: answer.body });
}

/** The expectations of a case a remote check cannot see. */
export function uncheckable(c: VerifyCase): string[] {
  const out: string[] = [];
  if (c.expect.upstream !== undefined) out.push('upstream');
  if (c.expect.upstreamHeaders !== undefined) out.push('upstreamHeaders');
  if (c.expect.logs?.length) out.push('logs');
  if (c.expect.calls !== undefined) out.push('calls');
  return out;
}

async function round(options: VerifyOptions, base: URL): Promise<VerifyCaseResult[]> {
  const timeout = options.requestTimeoutMs ?? 5000;
  return Promise.all(
    options.cases.map(async (c): Promise<VerifyCaseResult> => {
      try {
        const answer = await send(base, c, timeout, options.insecure ?? false);
        const problems = checkAnswer(c, answer);
        const skipped = uncheckable(c);
        return { name: c.name, passed: problems.length === 0, status: answer.status, problems, ...(skipped.length ? { skipped } : {}) };
      } catch (err) {
        return { name: c.name, passed: false, problems: [`no answer: ${(err as Error).message}`] };
      }
    }),
  );
}

/**
 * Runs every case against `url` in rounds until a round passes entirely or
 * `timeoutMs` is over. Never throws for failing cases: the report says.
 */
export async function verify(options: VerifyOptions): Promise<VerifyReport> {
  const base = new URL(options.url);
  const start = Date.now();
  const deadline = start + (options.timeoutMs ?? 120_000);
  const interval = options.intervalMs ?? 2000;
  let attempts = 0;
  for (;;) {
    attempts++;
    const cases = await round(options, base);
    const passed = cases.every((c) => c.passed);
    if (passed || Date.now() + interval > deadline) {
      return { passed, attempts, elapsedMs: Date.now() - start, cases };
    }
    options.onAttempt?.(attempts, cases);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** The report as a Markdown table, for the job summary. */
export function formatVerifyReport(report: VerifyReport): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const rows = report.cases.map(
    (c) =>
      `| ${cell(c.name)} | ${c.passed ? 'pass' : 'FAIL'} | ${c.status ?? '-'} | ${cell(
        [...c.problems, ...(c.skipped?.length ? [`not checked remotely: ${c.skipped.join(', ')}`] : [])].join('; '),
      )} |`,
  );
  return [
    `Verification ${report.passed ? 'passed' : 'FAILED'} after ${report.attempts} attempt(s), ${(report.elapsedMs / 1000).toFixed(1)}s`,
    '',
    '| case | result | status | problems |',
    '| --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}
