// Stage 3, test: the built plugin answers real requests through a real Envoy.
// Envoy, the upstream and the fakes always stop when the stage ends (pass,
// fail, error, timeout or Ctrl-C). After the cases Envoy is stopped and its
// whole log read again: a trap no case accounts for (in proxy_on_done or
// proxy_on_delete at shutdown, between cases, ...) fails the stage too.
import * as fs from 'node:fs';
import * as http from 'node:http';
import { log as runLog } from '../log.js';
import { makeTempDir } from '../github.js';
import { UserError } from '../errors.js';
import { tail } from '../exec.js';
import { renderEnvoyBootstrap, type ExtraCluster, type WasmFilterOptions } from '../envoy/bootstrap.js';
import { envoySaid, findTraps, quoteTrap, startEnvoy, type EnvoyProcess, type WasmTrap } from '../envoy/process.js';
import { compareResponse, logMatches, type TestCase, type UpstreamSpec } from './cases.js';
import { startFake, startUpstream, type FakeUpstream, type SeenRequest, type Upstream } from './upstream.js';

export interface LocalTestOptions {
  envoyBinary: string;
  envoyVersion: string;
  filter: WasmFilterOptions;
  cases: TestCase[];
  /** The named upstreams of the test file. */
  upstreams?: Record<string, UpstreamSpec>;
  timeoutSeconds: number;
  workDir?: string;
}

export interface ActualResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  upstream: { reached: boolean; headers?: Record<string, string> };
  /** Calls the fake upstreams received during the case, by name. */
  calls?: Record<string, SeenRequest[]>;
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
  /** The calls each fake upstream received during the case (fakes that got none are left out). */
  calls?: Record<string, SeenRequest[]>;
  durationMs: number;
}

export interface LocalTestReport {
  envoyVersion: string;
  passed: number;
  /** Failed cases (those not run because Envoy died or time ran out count as failed). */
  failed: number;
  /** One result per case run. */
  cases: CaseResult[];
  /**
   * What went wrong outside every case, each with Envoy's line quoted: traps
   * before, between or after the cases, at shutdown (proxy_on_done,
   * proxy_on_delete of the root context), and an Envoy that exited badly.
   */
  afterCases: string[];
  /** The Envoy log, for the summary's details (complete: read after Envoy stopped). */
  envoyLog: string;
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  for (const [name, want] of Object.entries(expect.calls ?? {})) {
    const got = actual.calls?.[name] ?? [];
    if (got.length !== want) {
      const list = got.slice(0, 5).map((r) => `${r.method} ${r.path}`).join(', ');
      failures.push(`calls to ${name}: expected ${want}, got ${got.length}${list ? ` (${list}${got.length > 5 ? ', …' : ''})` : ''}`);
    }
  }
  return failures;
}

interface CaseRun {
  result: CaseResult;
  /** The part of Envoy's log the case looked at: [start, end). */
  logRange: [number, number];
}

function callsSince(fakes: FakeUpstream[], before: number[]): Record<string, SeenRequest[]> {
  const calls: Record<string, SeenRequest[]> = {};
  fakes.forEach((f, i) => {
    if (f.seen.length > before[i]) calls[f.name] = f.seen.slice(before[i]);
  });
  return calls;
}

/**
 * Envoy's log from `start`, as a string of its own. A plain slice would keep
 * the whole log of that moment alive (V8 slices share their parent), so the
 * cases' logs together would hold a copy of the log per case: 170 MB at
 * 1,000 cases.
 */
function logSince(envoy: EnvoyProcess, start: number): string {
  return Buffer.from(envoy.log().slice(start), 'utf8').toString('utf8');
}

async function runCase(envoy: EnvoyProcess, upstream: Upstream, fakes: FakeUpstream[], c: TestCase): Promise<CaseRun> {
  const started = Date.now();
  const logStart = envoy.log().length;
  const seenBefore = upstream.seen.length;
  const fakesBefore = fakes.map((f) => f.seen.length);
  const failures: string[] = [];
  let actual: ActualResponse | undefined;
  try {
    const res = await send(envoy.listenerPort, c.request);
    const seen: SeenRequest | undefined = upstream.seen[seenBefore];
    actual = { ...res, upstream: { reached: upstream.seen.length > seenBefore, headers: seen?.headers } };
  } catch (err) {
    failures.push(`request failed: ${(err as Error).message}`);
    // A request cut off by an Envoy that is going down fails before the
    // process has been reaped: give the exit a moment to show.
    await Promise.race([envoy.exited, sleep(500)]);
  }
  // Log lines can trail the response by a moment; wait for the expected ones.
  const deadline = Date.now() + 1500;
  let log = logSince(envoy, logStart);
  while ((c.expect.logs ?? []).some((l) => !logMatches(log, l)) && Date.now() < deadline && envoy.alive()) {
    await sleep(25);
    log = logSince(envoy, logStart);
  }
  const calls = callsSince(fakes, fakesBefore);
  if (actual) {
    if (fakes.length > 0) actual.calls = calls;
    failures.push(...compare(c.expect, actual, log));
  }
  const traps = findTraps(log);
  if (traps.length > 0) {
    failures.unshift(`the plugin trapped while handling this request: ${quoteTrap(traps[0])}${traps.length > 1 ? ` (and ${traps.length - 1} more trap(s))` : ''}`);
  }
  if (!envoy.alive()) failures.unshift(`Envoy exited during this case (${await envoy.exited})`);
  const result: CaseResult = {
    name: c.name,
    line: c.line,
    request: c.request,
    expect: c.expect,
    actual,
    passed: failures.length === 0,
    failures,
    log,
    ...(Object.keys(calls).length > 0 ? { calls } : {}),
    durationMs: Date.now() - started,
  };
  return { result, logRange: [logStart, logStart + log.length] };
}

/** Where in the run an unattributed trap happened, from its place in the log. */
function whenInRun(t: WasmTrap, log: string, runs: Array<{ name: string; logRange: [number, number] }>): string {
  const shutdown = log.search(/caught (ENVOY_SIGTERM|SIGTERM|SIGINT)|shutting down/);
  if (shutdown >= 0 && t.start > shutdown) return 'at shutdown, after Envoy was told to stop';
  if (runs.length === 0 || t.start < runs[0].logRange[0]) return 'before the first case';
  const before = [...runs].reverse().find((r) => r.logRange[1] <= t.start);
  const last = runs[runs.length - 1];
  if (before === last) return `after the last case ("${last.name}")`;
  return before ? `between cases, after "${before.name}"` : 'during the cases';
}

/**
 * The problems outside every case: traps no case's log covered, and an
 * Envoy that exited badly when it was stopped. Same trap in the same place
 * (the main thread and the worker each run a copy of the plugin) is one
 * problem, with its count.
 */
export function problemsAfterCases(log: string, runs: Array<{ name: string; logRange: [number, number] }>, exit?: string): string[] {
  const seen = new Map<string, number>();
  for (const t of findTraps(log)) {
    if (runs.some((r) => t.start >= r.logRange[0] && t.start < r.logRange[1])) continue;
    const text = `the plugin trapped in ${t.fn} ${whenInRun(t, log, runs)}; ${quoteTrap(t)}`;
    seen.set(text, (seen.get(text) ?? 0) + 1);
  }
  const problems = [...seen].map(([text, n]) => (n > 1 ? `${text} (${n} times: once per copy of the plugin)` : text));
  if (exit && exit !== 'exit code 0' && exit !== 'signal SIGTERM' && exit !== 'signal SIGKILL') {
    const critical = log.split('\n').filter((l) => /\]\[critical\]/.test(l)).pop();
    problems.push(`Envoy ended badly when stopped (${exit})${critical ? `; its last critical line: "${envoySaid(critical)}"` : ''}`);
  }
  return problems;
}

function clustersFor(upstreams: Record<string, UpstreamSpec>, fakes: FakeUpstream[]): ExtraCluster[] {
  return Object.values(upstreams).map((u) => {
    if (u.kind === 'address') return { name: u.name, host: u.host, port: u.port, http2: u.grpc };
    const fake = fakes.find((f) => f.name === u.name)!;
    return { name: u.name, host: '127.0.0.1', port: fake.port, http2: u.grpc };
  });
}

export async function runLocalTest(options: LocalTestOptions): Promise<LocalTestReport> {
  const workDir = options.workDir ?? makeTempDir('envoy');
  const upstreams = options.upstreams ?? {};
  let upstream: Upstream | undefined;
  const fakes: FakeUpstream[] = [];
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
    for (const u of Object.values(upstreams)) {
      if (u.kind === 'fake') fakes.push(await startFake(u));
    }
    for (const u of Object.values(upstreams)) {
      const fake = fakes.find((f) => f.name === u.name);
      runLog.info(`upstream cluster ${u.name}: ${fake ? `local fake on 127.0.0.1:${fake.port}` : `${u.kind === 'address' ? `${u.host}:${u.port}` : ''}`}${u.grpc ? ' (HTTP/2, gRPC)' : ''}`);
    }
    const bootstrap = renderEnvoyBootstrap({
      listenerPort: 0,
      adminPort: 0,
      upstreamPort: upstream.port,
      filter: options.filter,
      clusters: clustersFor(upstreams, fakes),
    });
    runLog.info(`starting Envoy ${options.envoyVersion} with ${options.filter.namespace}.${options.filter.name} (root_id ${options.filter.rootId})`);
    envoy = await startEnvoy({ binary: options.envoyBinary, bootstrap, workDir, readyTimeoutMs: Math.min(30_000, options.timeoutSeconds * 1000) });
    // The stage may have timed out while Envoy was starting; then nobody else will stop it.
    if (timedOut) await envoy.stop();
    runLog.info(`Envoy ready: listener 127.0.0.1:${envoy.listenerPort}, admin ${envoy.adminUrl}`);
    const runs: Array<CaseRun & { name: string }> = [];
    for (const c of options.cases) {
      if (timedOut) break;
      const run = await runCase(envoy, upstream, fakes, c);
      runs.push({ ...run, name: c.name });
      const result = run.result;
      runLog.info(`${result.passed ? 'PASS' : 'FAIL'} ${c.name}${result.actual ? ` (${result.actual.status})` : ''}`);
      for (const f of result.failures) runLog.info(`     ${f}`);
      if (!envoy.alive()) break;
    }
    // Stop Envoy here, not only in `finally`: what it logs while it shuts
    // down (proxy_on_done and proxy_on_delete of the root contexts) is checked too.
    const diedDuringCases = !envoy.alive();
    await envoy.stop();
    const exit = diedDuringCases ? undefined : await envoy.exited;
    const log = envoy.log();
    const afterCases = problemsAfterCases(log, runs, exit);
    const notRun = options.cases.length - runs.length;
    if (diedDuringCases) {
      afterCases.unshift(
        `Envoy exited (${await envoy.exited}) during "${runs[runs.length - 1]?.name ?? 'the first case'}"${notRun > 0 ? `; ${notRun} case(s) after it were not run` : ''}`,
      );
    }
    for (const p of afterCases) runLog.info(`FAIL outside the cases: ${p}`);
    const results = runs.map((r) => r.result);
    const passed = results.filter((r) => r.passed).length;
    return {
      envoyVersion: options.envoyVersion,
      passed,
      failed: options.cases.length - passed,
      cases: results,
      afterCases,
      envoyLog: log,
    };
  };
  try {
    return await Promise.race([work(), timeout]);
  } finally {
    clearTimeout(timer);
    await envoy?.stop();
    await upstream?.close();
    for (const f of fakes) await f.close();
    if (!options.workDir) fs.rmSync(workDir, { recursive: true, force: true });
  }
}
