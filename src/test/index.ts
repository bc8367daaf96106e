// Stage 3, test: the built plugin answers real requests through a real Envoy.
// Envoy and the upstream always stop when the stage ends (pass, fail, error,
// timeout or Ctrl-C).
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as core from '@actions/core';
import { makeTempDir } from '../github.js';
import { UserError } from '../errors.js';
import { tail } from '../exec.js';
import { renderEnvoyBootstrap, type WasmFilterOptions } from '../envoy/bootstrap.js';
import { startEnvoy, type EnvoyProcess } from '../envoy/process.js';
import { compareResponse, logMatches, type TestCase } from './cases.js';
import { startUpstream, type SeenRequest, type Upstream } from './upstream.js';

export interface LocalTestOptions {
  envoyBinary: string;
  envoyVersion: string;
  filter: WasmFilterOptions;
  cases: TestCase[];
  timeoutSeconds: number;
  workDir?: string;
}

export interface ActualResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  upstream: { reached: boolean; headers?: Record<string, string> };
}

export interface CaseResult {
  name: string;
  line: number;
  request: TestCase['request'];
  expect: TestCase['expect'];
  actual?: ActualResponse;
  passed: boolean;
  failures: string[];
  /** Envoy's log lines written during the case. */
  log: string;
  durationMs: number;
}

export interface LocalTestReport {
  envoyVersion: string;
  passed: number;
  failed: number;
  cases: CaseResult[];
  /** The Envoy log, for the summary's details. */
  envoyLog: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TRAP_RE = /(Function: proxy_on_\w+ failed[^\n]*|Uncaught \w*Error[^\n]*|wasm trap[^\n]*)/;

function send(port: number, req: TestCase['request']): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const body = req.body === undefined ? undefined : Buffer.from(req.body);
    const r = http.request(
      {
        host: '127.0.0.1',
        port,
        method: req.method,
        path: req.path,
        headers: { ...req.headers, ...(body ? { 'content-length': String(body.length) } : {}) },
        timeout: 10_000,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
          resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    r.on('timeout', () => r.destroy(new Error('no response within 10s')));
    r.on('error', reject);
    r.end(body);
  });
}

function show(v: string | null | undefined): string {
  return v === undefined || v === null ? '(absent)' : JSON.stringify(v);
}

/** Compares one case's outcome with its expectations; returns the failures. */
export function compare(expect: TestCase['expect'], actual: ActualResponse, log: string): string[] {
  const failures = compareResponse(expect, actual);
  if (expect.upstream !== undefined && actual.upstream.reached !== expect.upstream) {
    failures.push(expect.upstream ? 'upstream: expected the request to reach the upstream; it did not' : 'upstream: expected the plugin to stop the request; the upstream received it');
  }
  for (const [name, want] of Object.entries(expect.upstreamHeaders ?? {})) {
    const got = actual.upstream.headers?.[name];
    if (want === null ? got !== undefined : got !== want) failures.push(`upstream header ${name}: expected ${show(want)}, got ${show(got)}`);
  }
  for (const line of expect.logs ?? []) {
    if (!logMatches(log, line)) failures.push(`Envoy log: expected a line matching ${show(line)}; none was written`);
  }
  return failures;
}

async function runCase(envoy: EnvoyProcess, upstream: Upstream, c: TestCase): Promise<CaseResult> {
  const started = Date.now();
  const logStart = envoy.log().length;
  const seenBefore = upstream.seen.length;
  const failures: string[] = [];
  let actual: ActualResponse | undefined;
  try {
    const res = await send(envoy.listenerPort, c.request);
    const seen: SeenRequest | undefined = upstream.seen[seenBefore];
    actual = { ...res, upstream: { reached: upstream.seen.length > seenBefore, headers: seen?.headers } };
  } catch (err) {
    failures.push(`request failed: ${(err as Error).message}`);
  }
  // Log lines can trail the response by a moment; wait for the expected ones.
  const deadline = Date.now() + 1500;
  let log = envoy.log().slice(logStart);
  while ((c.expect.logs ?? []).some((l) => !logMatches(log, l)) && Date.now() < deadline && envoy.alive()) {
    await sleep(25);
    log = envoy.log().slice(logStart);
  }
  if (actual) failures.push(...compare(c.expect, actual, log));
  const trap = TRAP_RE.exec(log);
  if (trap) failures.unshift(`the plugin trapped while handling this request: ${trap[1].trim()}`);
  if (!envoy.alive()) failures.unshift(`Envoy exited during this case (${await envoy.exited})`);
  return { name: c.name, line: c.line, request: c.request, expect: c.expect, actual, passed: failures.length === 0, failures, log, durationMs: Date.now() - started };
}

export async function runLocalTest(options: LocalTestOptions): Promise<LocalTestReport> {
  const workDir = options.workDir ?? makeTempDir('envoy');
  let upstream: Upstream | undefined;
  let envoy: EnvoyProcess | undefined;
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => (timedOut = true, reject(new UserError(`the local Envoy test did not finish within ${options.timeoutSeconds}s (input test-timeout)`, envoy ? tail(envoy.log()) : undefined))),
      options.timeoutSeconds * 1000,
    );
  });
  const work = async (): Promise<LocalTestReport> => {
    upstream = await startUpstream();
    const bootstrap = renderEnvoyBootstrap({ listenerPort: 0, adminPort: 0, upstreamPort: upstream.port, filter: options.filter });
    core.info(`starting Envoy ${options.envoyVersion} with ${options.filter.namespace}.${options.filter.name} (root_id ${options.filter.rootId})`);
    envoy = await startEnvoy({ binary: options.envoyBinary, bootstrap, workDir, readyTimeoutMs: Math.min(30_000, options.timeoutSeconds * 1000) });
    // The stage may have timed out while Envoy was starting; then nobody else will stop it.
    if (timedOut) await envoy.stop();
    core.info(`Envoy ready: listener 127.0.0.1:${envoy.listenerPort}, admin ${envoy.adminUrl}`);
    const results: CaseResult[] = [];
    for (const c of options.cases) {
      if (timedOut) break;
      const result = await runCase(envoy, upstream, c);
      results.push(result);
      core.info(`${result.passed ? 'PASS' : 'FAIL'} ${c.name}${result.actual ? ` (${result.actual.status})` : ''}`);
      for (const f of result.failures) core.info(`     ${f}`);
      if (!envoy.alive()) break;
    }
    const passed = results.filter((r) => r.passed).length;
    return { envoyVersion: options.envoyVersion, passed, failed: options.cases.length - passed, cases: results, envoyLog: envoy.log() };
  };
  try {
    return await Promise.race([work(), timeout]);
  } finally {
    clearTimeout(timer);
    await envoy?.stop();
    await upstream?.close();
    if (!options.workDir) fs.rmSync(workDir, { recursive: true, force: true });
  }
}
