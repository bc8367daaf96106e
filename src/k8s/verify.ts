// Verification after an apply: send HTTP cases to the gateway until they all
// pass (the new plugin is answering) or the time is up.
//
// With Istio's signals (the gateway Envoy's admin interface, the Istio
// agent's status port), the cases are judged only once the gateway runs THIS
// apply (its Wasm filter has the applied module sha256, pluginConfig, root id
// and failure policy), and a module the agent could not fetch fails at once,
// in Istio's words, instead of when the time runs out: also under FAIL_OPEN,
// where the gateway lets every request through and the cases may pass.
// Envoy's config dump shows an ECDS update it rejected (a plugin that fails
// in proxy_on_configure) as if it had taken it, while it keeps running the
// previous filter: so once the dump shows this apply, Envoy's ECDS counters
// (when the gateway keeps them) and istiod's NACK record (with istiodUrl)
// decide whether it was taken or rejected.
import type * as http from 'node:http';
import { NetworkError, request } from '../net/index.js';
import { compareResponse, type CaseExpect } from '../localtest/cases.js';
import {
  describeFilter,
  expectedModuleSha256,
  newEcdsRejections,
  readEcdsCounters,
  readEcdsSync,
  type EcdsCounters,
  type EcdsSync,
  failureDeltas,
  fallbackProblem,
  filterDifferences,
  readAgentMetrics,
  readGatewayFilter,
  type AgentWasmMetrics,
  type GatewayFilter,
  type IstioEndpoints,
} from './istio.js';
import type { WasmPlugin } from './wasmplugin.js';

/**
 * One case of the plugin's tests.yaml (the same cases the local Envoy test
 * ran; a TestCase from src/localtest/cases.ts fits). Against a remote gateway only
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
  /** Where to read Istio's signals on the gateway; without it only the HTTP cases are judged. */
  istio?: IstioEndpoints;
  /** The WasmPlugin as applied: what the gateway must run before the cases are judged. */
  plugin?: WasmPlugin;
  /** Istio's signals read before the apply (istioBaseline), to tell new failures from old ones. */
  baseline?: IstioBaseline;
  /** Progress lines about Istio's signals. */
  log?: (line: string) => void;
  /** The apply changed nothing (the gateway has nothing new to take). */
  unchanged?: boolean;
}

/** Istio's signals before the apply. */
export interface IstioBaseline {
  metrics?: AgentWasmMetrics;
  filter?: GatewayFilter;
  /** Envoy's ECDS counters for the filter; null when the gateway keeps none. */
  ecds?: EcdsCounters | null;
  /** istiod's record of every proxy's ECDS stream. */
  sync?: EcdsSync[];
}

/** What Istio's signals said after the apply. */
export interface IstioCheck {
  passed: boolean;
  /** When the gateway was seen running this apply, in ms after verification started. */
  liveAfterMs?: number;
  /** How long the check took. */
  elapsedMs: number;
  /** The gateway's filter for this WasmPlugin when the check ended. */
  filter?: string;
  problems: string[];
  notes: string[];
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
  /** Istio's signals, when `istio` was given. */
  istio?: IstioCheck;
}

interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One case's request to the gateway, on the network layer: a fresh connection each time (no pooled socket outlives a round). */
async function send(base: URL, c: VerifyCase, timeoutMs: number, insecure: boolean): Promise<HttpAnswer> {
  const p = c.request.path;
  const url = new URL(base.href.replace(/\/+$/, '') + (p.startsWith('/') ? p : `/${p}`));
  const res = await request({
    method: c.request.method ?? 'GET',
    url,
    headers: { 'User-Agent': 'asm-wasm-action-verify', ...(c.request.headers ?? {}) },
    body: c.request.body,
    timeoutMs,
    tls: { agent: false, ...(url.protocol === 'https:' && insecure ? { rejectUnauthorized: false } : {}) },
  });
  return { status: res.status, headers: res.headers, body: res.body.toString('utf8') };
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
        return { name: c.name, passed: false, problems: [`no answer: ${err instanceof NetworkError ? err.describe() : (err as Error).message}`] };
      }
    }),
  );
}

/** Reads Istio's signals before an apply; never throws (what cannot be read is left out). */
export async function istioBaseline(istio: IstioEndpoints | undefined, plugin: WasmPlugin): Promise<IstioBaseline | undefined> {
  if (!istio || (!istio.adminUrl && !istio.statusUrl)) return undefined;
  const namespace = plugin.metadata.namespace ?? 'istio-system';
  const [metrics, filter, ecds, sync] = await Promise.all([
    istio.statusUrl ? readAgentMetrics(istio).catch(() => undefined) : undefined,
    istio.adminUrl ? readGatewayFilter(istio, namespace, plugin.metadata.name).catch(() => undefined) : undefined,
    istio.adminUrl ? readEcdsCounters(istio, namespace, plugin.metadata.name).then((c) => c ?? null, () => undefined) : undefined,
    istio.istiodUrl ? readEcdsSync(istio).catch(() => undefined) : undefined,
  ]);
  return { metrics, filter, ...(ecds !== undefined ? { ecds } : {}), ...(sync ? { sync } : {}) };
}

const ISTIO_POLL_MS = 200;
const conversions = (m?: AgentWasmMetrics) => Object.values(m?.conversion ?? {}).reduce((a, b) => a + b, 0);
/** How long to wait for istiod to hear Envoy's ACK or NACK of an update the config dump already shows. */
const NACK_WAIT_MS = 2000;

/**
 * Once the config dump shows this apply: did Envoy take the update or reject
 * it? Envoy's ECDS counters say so at once (config_fail / update_rejected
 * rose); istiod's /debug/syncz says why (the NACK's message, Envoy's own
 * words), a moment later. Returns the problem when rejected, undefined when
 * taken (or when nothing can tell: `notes` says so).
 */
async function envoyRejection(options: VerifyOptions, notes: string[], log: (line: string) => void): Promise<string | undefined> {
  const istio = options.istio!;
  const plugin = options.plugin!;
  const namespace = plugin.metadata.namespace ?? 'istio-system';
  const name = plugin.metadata.name;
  const before = options.baseline;
  let counters: EcdsCounters | undefined;
  let countersRead = false;
  try {
    counters = await readEcdsCounters(istio, namespace, name);
    countersRead = true;
  } catch (err) {
    notes.push(`Envoy's ECDS counters could not be read: ${(err as Error).message}`);
  }
  const rejectedBy = counters ? counters.rejected - (before?.ecds?.rejected ?? 0) : 0;
  const words = async (any: boolean, waitMs: number): Promise<string[] | undefined> => {
    if (!istio.istiodUrl) return undefined;
    const until = Date.now() + waitMs;
    for (;;) {
      try {
        const sync = await readEcdsSync(istio);
        const found = newEcdsRejections(before?.sync, sync, `${namespace}.${name}`, any);
        if (found.length) return found;
        // Every proxy's last ECDS push answered (acked) and no new NACK: taken.
        if (!any && sync.every((s) => !s.sent || s.sent === s.acked)) return [];
      } catch (err) {
        notes.push(`istiod's /debug/syncz could not be read: ${(err as Error).message}`);
        return undefined;
      }
      if (Date.now() > until) return [];
      await new Promise((resolve) => setTimeout(resolve, ISTIO_POLL_MS));
    }
  };
  if (rejectedBy > 0) {
    const nacks = (await words(true, NACK_WAIT_MS)) ?? [];
    const counter = `${counters!.prefix}.config_fail +${rejectedBy}`;
    log(`  Envoy rejected the update: ${counter}`);
    return (
      `the gateway rejected the Wasm filter: ${nacks.length ? nacks.map((n) => n.slice(n.indexOf(': ') + 2)).join('; ') : 'Envoy refused the ECDS update'}` +
      ` (Envoy's counters: ${counter}${nacks.length ? `; istiod: NACK from ${nacks.map((n) => n.slice(0, n.indexOf(': '))).join(', ')}` : ''}); ` +
      'Envoy keeps running the previous filter, although its config dump shows the new one'
    );
  }
  if (!counters && istio.istiodUrl) {
    // No counters: istiod's record alone tells a NACK, once it has heard back.
    const nacks = await words(false, NACK_WAIT_MS);
    if (nacks?.length) {
      return `the gateway rejected the Wasm filter: ${nacks.map((n) => n.slice(n.indexOf(': ') + 2)).join('; ')} (istiod: NACK from ${nacks.map((n) => n.slice(0, n.indexOf(': '))).join(', ')}); Envoy keeps running the previous filter, although its config dump shows the new one`;
    }
  }
  if (countersRead && !counters && !istio.istiodUrl) {
    notes.push(
      'the gateway keeps no extension_config_discovery counters and no istiod URL was given: an update Envoy rejected ' +
        '(a plugin that fails in proxy_on_configure) would look live in the config dump; see the README on proxyStatsMatcher',
    );
  }
  return undefined;
}

/**
 * Waits until the gateway runs `plugin` (per its config dump), or fails as
 * soon as Istio says it will not: the agent could not fetch the module and
 * put its RBAC fallback in place, or Envoy rejected the new filter.
 */
async function checkIstio(options: VerifyOptions, start: number, deadline: number): Promise<IstioCheck> {
  const istio = options.istio!;
  const plugin = options.plugin!;
  const namespace = plugin.metadata.namespace ?? 'istio-system';
  const name = plugin.metadata.name;
  const before = options.baseline;
  const notes: string[] = [];
  const log = options.log ?? (() => {});
  let state = 'nothing read yet';
  let lastError = '';
  const done = (passed: boolean, problems: string[], filter?: GatewayFilter): IstioCheck => ({
    passed,
    elapsedMs: Date.now() - start,
    ...(passed ? { liveAfterMs: Date.now() - start } : {}),
    ...(filter ? { filter: describeFilter(filter) } : {}),
    problems,
    notes,
  });
  if (istio.statusUrl && !before?.metrics) notes.push(`the agent's metrics could not be read before the apply (${istio.statusUrl})`);
  for (;;) {
    let deltas: string[] = [];
    let metrics: AgentWasmMetrics | undefined;
    if (istio.statusUrl) {
      try {
        metrics = await readAgentMetrics(istio);
        deltas = failureDeltas(before?.metrics, metrics);
      } catch (err) {
        lastError = `agent metrics: ${(err as Error).message}`;
      }
    }
    if (istio.adminUrl) {
      let filter: GatewayFilter | undefined;
      try {
        filter = await readGatewayFilter(istio, namespace, name);
      } catch (err) {
        lastError = `config dump: ${(err as Error).message}`;
      }
      if (filter?.kind === 'wasm') {
        const diffs = filterDifferences(filter, plugin);
        // A url that names a tag without sha256: the module file cannot be
        // told from the previous one, so Envoy must have taken an update of
        // this filter since the apply.
        const oldUpdate = before?.filter && 'lastUpdated' in before.filter ? before.filter.lastUpdated : undefined;
        if (!diffs.length && !expectedModuleSha256(plugin) && !options.unchanged && oldUpdate && filter.lastUpdated === oldUpdate) {
          diffs.push('no update of this filter since the apply, and the url names no digest to tell the module by');
        }
        // The gateway already ran a filter identical to this apply's (only
        // fields Envoy never sees changed: imagePullSecret, imagePullPolicy,
        // labels…): wait until the gateway has handled this apply, an ECDS
        // update or the agent converting it again, and not while the agent
        // reports new failures (its fallback filter is on its way).
        const old = before?.filter;
        const matchedBefore = old?.kind === 'wasm' && filterDifferences(old, plugin).length === 0;
        if (!diffs.length && matchedBefore && !options.unchanged) {
          const updated = filter.lastUpdated !== old.lastUpdated;
          const converted = !!metrics && conversions(metrics) > conversions(before?.metrics);
          if (deltas.length) diffs.push(`the agent reports new failures (${deltas.join(', ')})`);
          else if (!updated && !converted) diffs.push('a filter identical to this apply\'s ran before it, and the gateway has not handled this apply yet');
        }
        if (!diffs.length) {
          const rejection = await envoyRejection(options, notes, log);
          if (rejection) return done(false, [rejection], filter);
          log(`  the gateway runs this apply: ${describeFilter(filter)}`);
          return done(true, [], filter);
        }
        const oldRejection = before?.filter && 'rejected' in before.filter ? before.filter.rejected : undefined;
        if (filter.rejected && filter.rejected !== oldRejection) {
          return done(false, [`the gateway's Envoy rejected the new filter and keeps the previous one: ${filter.rejected}`], filter);
        }
        state = `the gateway still runs the previous configuration (${diffs.join('; ')})`;
      } else if (filter?.kind === 'fallback') {
        const old = before?.filter;
        const fresh = deltas.length > 0 || old?.kind !== 'fallback' || old.lastUpdated !== filter.lastUpdated;
        if (fresh) {
          // The agent counts the failed fetch before it hands Envoy the
          // fallback, but its counters were read before the dump: read them
          // again (briefly) so the report gives the reason in its words.
          let why = deltas;
          for (let i = 0; i < 20 && !why.length && istio.statusUrl; i++) {
            await new Promise((resolve) => setTimeout(resolve, 100));
            try {
              why = failureDeltas(before?.metrics, await readAgentMetrics(istio));
            } catch {
              break;
            }
          }
          return done(false, [fallbackProblem(filter, why)], filter);
        }
        state = `the gateway still runs ${describeFilter(filter)}, from before this apply`;
      } else if (filter?.kind === 'missing') {
        state = `the gateway has no filter for WasmPlugin ${namespace}/${name} (does its selector or targetRefs select this gateway?)`;
      } else if (filter) {
        state = `the gateway runs ${describeFilter(filter)}`;
      }
    } else if (metrics) {
      if (deltas.length) {
        return done(false, [`the gateway's Istio agent failed to fetch or convert a Wasm module since the apply: ${deltas.join(', ')}`]);
      }
      if (options.unchanged || conversions(metrics) > conversions(before?.metrics)) {
        notes.push('without the gateway admin URL, the agent converting a Wasm filter is taken as this apply arriving');
        return done(true, []);
      }
      state = 'the gateway\'s Istio agent has not converted a Wasm filter since the apply';
    }
    if (Date.now() + ISTIO_POLL_MS > deadline) {
      return done(false, [`${state}${lastError ? ` (last error: ${lastError})` : ''} after ${((Date.now() - start) / 1000).toFixed(1)}s`]);
    }
    await new Promise((resolve) => setTimeout(resolve, ISTIO_POLL_MS));
  }
}

/** Rounds to retry failing cases once Istio says the gateway runs this apply, and the pause between them. */
const ROUNDS_WHEN_LIVE = 3;
const INTERVAL_WHEN_LIVE_MS = 500;

/**
 * Runs every case against `url` in rounds until a round passes entirely or
 * `timeoutMs` is over. Never throws for failing cases: the report says.
 * With `istio` and `plugin`, first waits until the gateway runs this apply
 * (failing at once when Istio says it will not), then gives the cases a few
 * rounds only.
 */
export async function verify(options: VerifyOptions): Promise<VerifyReport> {
  const base = new URL(options.url);
  const start = Date.now();
  const deadline = start + (options.timeoutMs ?? 120_000);
  let interval = options.intervalMs ?? 2000;
  let istio: IstioCheck | undefined;
  if (options.istio && options.plugin && (options.istio.adminUrl || options.istio.statusUrl)) {
    istio = await checkIstio(options, start, deadline);
    if (!istio.passed) {
      const gate: VerifyCaseResult = { name: 'Istio: the gateway runs this apply', passed: false, problems: istio.problems };
      return { passed: false, attempts: 0, elapsedMs: Date.now() - start, cases: [gate], istio };
    }
    // The gateway runs this apply: what the cases say now is what they will say.
    interval = Math.min(interval, INTERVAL_WHEN_LIVE_MS);
  }
  let attempts = 0;
  for (;;) {
    attempts++;
    const cases = await round(options, base);
    const passed = cases.every((c) => c.passed);
    const outOfRounds = istio?.passed && attempts >= ROUNDS_WHEN_LIVE;
    if (passed || outOfRounds || Date.now() + interval > deadline) {
      return { passed, attempts, elapsedMs: Date.now() - start, cases, ...(istio ? { istio } : {}) };
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
  const istio = report.istio;
  const istioLine = !istio
    ? []
    : istio.passed
      ? [`Istio: the gateway ran this apply after ${((istio.liveAfterMs ?? 0) / 1000).toFixed(1)}s${istio.filter ? ` (${istio.filter})` : ''}.`, '']
      : [`Istio: ${istio.problems.join('; ')}`, ''];
  return [
    `Verification ${report.passed ? 'passed' : 'FAILED'} after ${report.attempts} attempt(s), ${(report.elapsedMs / 1000).toFixed(1)}s`,
    '',
    ...istioLine,
    '| case | result | status | problems |',
    '| --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}
