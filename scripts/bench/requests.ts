// What the plugin costs each request, in a real Envoy, side by side with the
// floor (no filter) and with Envoy's own filters doing the same policy.
//
// Every variant is its own Envoy (one worker thread, as the local test runs
// it), all started at once in front of the same upstream; the load generator
// then visits them in turn, round after round, the order rotated each round,
// so a burst of noise on a shared machine hits every variant alike. Figures
// are medians over rounds, and ratios are taken within a round before the
// median, which is what cancels the drift.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderWasmFilter, type WasmFilterOptions } from '../../src/envoy/bootstrap.js';
import { filterSettings, readPluginFile, resolvePlugin } from '../../src/plugin/index.js';
import { bootstrapWith, envoyStats, rssKiB, spawnEnvoy, wasmMemory, type BenchEnvoy, type FilterChain } from './envoy.js';
import { execAsync, fmt, log, median, mib, quantile, sleep, table } from './util.js';

/** The reference plugin's deny response, which the native variant reproduces. */
export const DENY_BODY = 'Forbidden by ASM Wasm Plugin, assemblyscript version\n';

/** A 2 KiB HTML error page: what a site that brands its error pages would configure. */
const HEAVY_BODY = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>403 Forbidden</title>
<style>body{font-family:system-ui,sans-serif;margin:4rem auto;max-width:40rem;color:#222}h1{font-size:1.6rem}p{line-height:1.5}code{background:#f4f4f4;padding:.1rem .3rem}</style>
</head><body><h1>403 Forbidden</h1>
<p>This gateway only forwards requests that carry a valid API key in the <code>x-api-key</code> header.
Your request did not, so it was answered here and never reached the service behind the gateway.</p>
<p>If you are calling this API from an application, add the key you were issued to every request.
Keys are issued per application; ask the team that owns the service for one, and keep it out of source control.</p>
<p>If you believe you are seeing this page in error, contact the platform team with the time of the request,
the path you called and the value of the <code>x-request-id</code> response header, so the request can be found in the gateway's logs.</p>
</body></html>
`.padEnd(2048, ' ');

/**
 * The plugin's most expensive realistic configuration: a long secret as the
 * expected value (compared on every request), a 2 KiB HTML deny page (copied
 * out on every denial), denials logged, and the gateway's Wasm log level at
 * info, so every request's two log lines are written rather than filtered
 * out by Envoy (someone is debugging the plugin in production).
 */
export const HEAVY_CONFIG = {
  header: 'x-api-key',
  value: '7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a',
  denyStatus: 403,
  denyBody: HEAVY_BODY,
  denyContentType: 'text/html; charset=utf-8',
  logDenials: true,
};

export interface Variant {
  id: string;
  label: string;
  filters: FilterChain;
  hcmExtra?: Record<string, unknown>;
  /** Envoy --component-log-level. */
  logLevel: string;
  /** The header an allowed request carries. */
  allow: { name: string; value: string };
  /** What a denied request gets (none for the "no filter" lane). */
  deny?: DenyExpectation;
  wasmPath?: string;
  /** A reference lane: ratios are also taken against it (the Rust plugin). */
  reference?: boolean;
}

/** Istio's gateway default: Envoy logs at warning, so the plugin's info lines are dropped by Envoy. */
export const GATEWAY_LOG_LEVEL = 'wasm:warning';

/** What a denied request must get back from a lane, checked before the lane is timed. */
export interface DenyExpectation {
  status: number;
  /** The exact body; undefined: not checked. */
  body?: string;
  /** The content-type; undefined: not checked. */
  contentType?: string;
}

/** Another build of the plugin, or another plugin, measured beside plugin/. */
export interface ExtraPlugin {
  /** Short name: the variants are `plugin@<tag>` and `plugin-heavy@<tag>`. */
  tag: string;
  /** What it is, for the table. */
  label: string;
  wasm: string;
  /** Root id Envoy loads it with (default: plugin/'s spec.pluginName). */
  rootId?: string;
  /** Its plugin configuration (default: plugin/'s pluginConfig; null: none). */
  configuration?: string | null;
  /** What it answers a denied request with (default: plugin/'s 403 and body). */
  deny?: DenyExpectation;
  /** The header an allowed request carries (default: allow: true). */
  allow?: { name: string; value: string };
  /** Also a lane with the heavy configuration and info logs (default: true; only for plugins that read plugin/'s configuration). */
  heavy?: boolean;
  /** A reference lane (the Rust plugin): ratios are also taken against it. */
  reference?: boolean;
}

export function variants(o: { pluginDir: string; wasm: string; extra?: ExtraPlugin[] }): Variant[] {
  // The reference plugin's filter, as the test stage renders it from wasmplugin.yaml.
  const spec = filterSettings(resolvePlugin(readPluginFile(o.pluginDir), {}, { pluginDir: o.pluginDir }).object);
  const filterOf = (wasmPath: string, configuration: string | undefined, rootId = spec.rootId): FilterChain => {
    const f: WasmFilterOptions = { name: spec.name, namespace: spec.namespace, rootId, configuration, failStrategy: spec.failStrategy, wasmPath };
    return [{ name: `${spec.namespace}.${spec.name}`, typed_config: renderWasmFilter(f) }];
  };
  const reference = spec.configuration;
  const heavy = JSON.stringify(HEAVY_CONFIG);
  const allow = { name: 'allow', value: 'true' };
  const heavyAllow = { name: HEAVY_CONFIG.header, value: HEAVY_CONFIG.value };
  const deny: DenyExpectation = { status: 403, body: DENY_BODY, contentType: 'text/plain' };
  const heavyDeny: DenyExpectation = { status: HEAVY_CONFIG.denyStatus, body: HEAVY_CONFIG.denyBody, contentType: HEAVY_CONFIG.denyContentType };
  const out: Variant[] = [
    { id: 'none', label: 'no filter', filters: [], logLevel: GATEWAY_LOG_LEVEL, allow },
    {
      id: 'envoy-rbac',
      label: "Envoy's RBAC filter + local reply",
      filters: [
        {
          name: 'envoy.filters.http.rbac',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
            rules: {
              action: 'ALLOW',
              policies: { 'allow-header-true': { permissions: [{ any: true }], principals: [{ header: { name: 'allow', string_match: { exact: 'true' } } }] } },
            },
          },
        },
      ],
      // RBAC answers 403 "RBAC: access denied"; the mapper gives it the plugin's body and content type.
      // Mappers only see replies Envoy generates itself, so an upstream's own 403 is left alone.
      hcmExtra: {
        local_reply_config: {
          mappers: [
            {
              filter: { status_code_filter: { comparison: { op: 'EQ', value: { default_value: 403, runtime_key: 'bench.rbac_deny_status' } } } },
              status_code: 403,
              body: { inline_string: DENY_BODY },
              body_format_override: { text_format_source: { inline_string: '%LOCAL_REPLY_BODY%' }, content_type: 'text/plain' },
            },
          ],
        },
      },
      logLevel: GATEWAY_LOG_LEVEL,
      allow,
      deny,
    },
    { id: 'plugin', label: 'plugin, reference config', filters: filterOf(o.wasm, reference), logLevel: GATEWAY_LOG_LEVEL, allow, deny, wasmPath: o.wasm },
    { id: 'plugin-heavy', label: 'plugin, heavy config + info logs', filters: filterOf(o.wasm, heavy), logLevel: 'wasm:info', allow: heavyAllow, deny: heavyDeny, wasmPath: o.wasm },
  ];
  for (const e of o.extra ?? []) {
    // A plugin given its own root id or configuration is measured with those alone.
    const own = e.configuration !== undefined || e.rootId !== undefined;
    out.push({
      id: `plugin@${e.tag}`,
      label: own ? e.label : `${e.label}, reference config`,
      filters: filterOf(e.wasm, e.configuration === undefined ? reference : (e.configuration ?? undefined), e.rootId),
      logLevel: GATEWAY_LOG_LEVEL,
      allow: e.allow ?? allow,
      deny: e.deny ?? deny,
      wasmPath: e.wasm,
      reference: e.reference,
    });
    if (e.heavy ?? !own) {
      out.push({ id: `plugin-heavy@${e.tag}`, label: `${e.label}, heavy config + info logs`, filters: filterOf(e.wasm, heavy, e.rootId), logLevel: 'wasm:info', allow: heavyAllow, deny: heavyDeny, wasmPath: e.wasm });
    }
  }
  return out;
}

/** The upstream: an Envoy that answers 200 itself, so the upstream costs little and the same for all. */
export async function startUpstreamEnvoy(binary: string, workDir: string): Promise<BenchEnvoy> {
  const bootstrap = bootstrapWith(9, []) as any;
  const hcm = bootstrap.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  hcm.stat_prefix = 'upstream';
  hcm.route_config.virtual_hosts[0].routes = [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok\n' } } }];
  bootstrap.static_resources.clusters = [];
  return spawnEnvoy({ name: 'upstream', binary, bootstrap, workDir, componentLogLevel: GATEWAY_LOG_LEVEL });
}

/** A wrk script: requests alternate between allowed and denied; done() prints the figures as JSON. */
export function wrkScript(allow: { name: string; value: string }): string {
  const q = (s: string) => JSON.stringify(s); // a JSON string is a valid Lua string literal for these values
  return `-- generated by scripts/bench: half the requests carry the allow header, half do not
local allowed, denied
local n = 0
init = function(args)
  allowed = wrk.format("GET", wrk.path, { [${q(allow.name)}] = ${q(allow.value)} })
  denied = wrk.format("GET", wrk.path)
end
request = function()
  n = n + 1
  if n % 2 == 0 then return allowed end
  return denied
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"socketErrors":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout))
end
`;
}

export interface WrkResult {
  requests: number;
  durationUs: number;
  p50Us: number;
  p99Us: number;
  socketErrors: number;
}

export async function runWrk(o: { wrk: string; script: string; port: number; seconds: number; connections: number }): Promise<WrkResult> {
  const out = await execAsync(o.wrk, ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '5s', '-s', o.script, `http://127.0.0.1:${o.port}/bench`]);
  const line = out.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as WrkResult;
}

/** User + system CPU time of a process, in microseconds. */
export function cpuUs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command.
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
}

async function statusCounts(envoy: BenchEnvoy, denyStatus = 403): Promise<{ ok: number; denied: number; other: number }> {
  const s = await envoyStats(envoy.adminUrl, '^http\\.gateway\\.downstream_rq_[1-5]xx$');
  const get = (k: string) => s[`http.gateway.downstream_rq_${k}`] ?? 0;
  const deniedClass = `${Math.floor(denyStatus / 100)}xx`;
  const others = ['1xx', '3xx', '4xx', '5xx'].filter((c) => c !== deniedClass);
  return { ok: get('2xx'), denied: deniedClass === '2xx' ? 0 : get(deniedClass), other: others.reduce((a, c) => a + get(c), 0) };
}

/** One allowed and one denied request through a variant, to prove it enforces the policy before it is timed. */
async function checkPolicy(v: Variant, envoy: BenchEnvoy): Promise<string | undefined> {
  const url = `http://127.0.0.1:${envoy.port}/bench`;
  const allowed = await fetch(url, { headers: { [v.allow.name]: v.allow.value } });
  await allowed.text();
  const denied = await fetch(url);
  const body = await denied.text();
  if (allowed.status !== 200) return `an allowed request got ${allowed.status}`;
  if (!v.deny) return denied.status === 200 ? undefined : `without a filter a request got ${denied.status}`;
  if (denied.status !== v.deny.status) return `a denied request got ${denied.status}, not ${v.deny.status}`;
  if (v.deny.body !== undefined && body !== v.deny.body) return `a denied request's body is ${JSON.stringify(body)}, not ${JSON.stringify(v.deny.body)}`;
  const type = denied.headers.get('content-type');
  if (v.deny.contentType !== undefined && type !== v.deny.contentType) return `a denied request's content-type is ${type}, not ${v.deny.contentType}`;
  return undefined;
}

export interface VariantResult {
  id: string;
  label: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerRequest: number;
  /** Median over rounds of the in-round ratio to "none". */
  rpsRatio: number;
  p50Ratio: number;
  p99Ratio: number;
  cpuRatio: number;
  /** Median over rounds of the in-round ratio to Envoy's RBAC filter. */
  cpuRatioRbac: number;
  p99RatioRbac: number;
  /** First and third quartile of the in-round CPU ÷ RBAC ratios: how noisy the median is. */
  cpuRatioRbacQuartiles: [number, number];
  /** The same against the reference lane (the Rust plugin), when there is one. */
  cpuRatioReference?: number;
  p99RatioReference?: number;
  deniedShare: number;
  otherStatuses: number;
  socketErrors: number;
  rssStartKiB: number;
  rssEndKiB: number;
  wasmMemoryKiB?: number;
  wasmResidentKiB?: number;
  wasmSizeBytes?: number;
  rounds: Array<{ rps: number; p50Ms: number; p99Ms: number; cpuUsPerRequest: number }>;
}

export interface RequestBench {
  connections: number;
  seconds: number;
  rounds: number;
  upstream: string;
  /** The lane the "÷ reference" ratios are taken against (the Rust plugin). */
  reference?: string;
  results: VariantResult[];
}

export async function benchRequests(o: {
  envoyBinary: string;
  wrk: string;
  workDir: string;
  variants: Variant[];
  seconds: number;
  rounds: number;
  connections: number;
  warmupSeconds?: number;
}): Promise<RequestBench> {
  const upstream = await startUpstreamEnvoy(o.envoyBinary, o.workDir);
  const envoys = new Map<string, BenchEnvoy>();
  try {
    for (const v of o.variants) {
      const bootstrap = bootstrapWith(upstream.port, v.filters, v.hcmExtra ?? {});
      envoys.set(v.id, await spawnEnvoy({ name: v.id.replace(/[^a-z0-9-]/gi, '_'), binary: o.envoyBinary, bootstrap, workDir: o.workDir, componentLogLevel: v.logLevel }));
    }
    const scripts = new Map<string, string>();
    const rssStart = new Map<string, number>();
    for (const v of o.variants) {
      const envoy = envoys.get(v.id)!;
      rssStart.set(v.id, rssKiB(envoy.pid));
      const wrong = await checkPolicy(v, envoy);
      if (wrong) throw new Error(`variant ${v.id} does not enforce the policy: ${wrong}`);
      const script = path.join(o.workDir, `${v.id.replace(/[^a-z0-9-]/gi, '_')}.lua`);
      fs.writeFileSync(script, wrkScript(v.allow));
      scripts.set(v.id, script);
    }
    // Warm-up: V8 compiles hot Wasm functions with its optimizing tier after a while.
    for (const v of o.variants) {
      await runWrk({ wrk: o.wrk, script: scripts.get(v.id)!, port: envoys.get(v.id)!.port, seconds: o.warmupSeconds ?? 2, connections: o.connections });
    }
    type Sample = { rps: number; p50Ms: number; p99Ms: number; cpuUsPerRequest: number; denied: number; ok: number; other: number; socketErrors: number };
    const samples = new Map<string, Sample[]>(o.variants.map((v) => [v.id, []]));
    for (let round = 0; round < o.rounds; round++) {
      const order = o.variants.map((_, i) => o.variants[(i + round) % o.variants.length]);
      for (const v of order) {
        const envoy = envoys.get(v.id)!;
        const before = await statusCounts(envoy, v.deny?.status);
        const cpu0 = cpuUs(envoy.pid);
        const w = await runWrk({ wrk: o.wrk, script: scripts.get(v.id)!, port: envoy.port, seconds: o.seconds, connections: o.connections });
        const cpu1 = cpuUs(envoy.pid);
        const after = await statusCounts(envoy, v.deny?.status);
        samples.get(v.id)!.push({
          rps: w.requests / (w.durationUs / 1e6),
          p50Ms: w.p50Us / 1000,
          p99Ms: w.p99Us / 1000,
          cpuUsPerRequest: (cpu1 - cpu0) / Math.max(1, w.requests),
          ok: after.ok - before.ok,
          denied: after.denied - before.denied,
          other: after.other - before.other,
          socketErrors: w.socketErrors,
        });
      }
      log(`requests: round ${round + 1}/${o.rounds} done`);
      await sleep(100);
    }
    const ratioTo = (baseId: string | undefined) => (id: string, key: keyof Sample) => {
      const base = baseId === undefined ? undefined : samples.get(baseId);
      return base ? median(samples.get(id)!.map((s, i) => s[key] / base[i][key])) : NaN;
    };
    const ratio = ratioTo('none');
    const rbac = samples.get('envoy-rbac');
    const quartiles = (id: string): [number, number] => {
      if (!rbac) return [NaN, NaN];
      const r = samples.get(id)!.map((s, i) => s.cpuUsPerRequest / rbac[i].cpuUsPerRequest);
      return [quantile(r, 0.25), quantile(r, 0.75)];
    };
    const toRbac = ratioTo('envoy-rbac');
    const referenceId = o.variants.find((v) => v.reference)?.id;
    const toReference = ratioTo(referenceId);
    const results: VariantResult[] = o.variants.map((v) => {
      const s = samples.get(v.id)!;
      const envoy = envoys.get(v.id)!;
      const mem = v.wasmPath ? wasmMemory(envoy.pid) : undefined;
      const ok = s.reduce((a, x) => a + x.ok, 0);
      const denied = s.reduce((a, x) => a + x.denied, 0);
      return {
        id: v.id,
        label: v.label,
        rps: median(s.map((x) => x.rps)),
        p50Ms: median(s.map((x) => x.p50Ms)),
        p99Ms: median(s.map((x) => x.p99Ms)),
        cpuUsPerRequest: median(s.map((x) => x.cpuUsPerRequest)),
        rpsRatio: ratio(v.id, 'rps'),
        p50Ratio: ratio(v.id, 'p50Ms'),
        p99Ratio: ratio(v.id, 'p99Ms'),
        cpuRatio: ratio(v.id, 'cpuUsPerRequest'),
        cpuRatioRbac: toRbac(v.id, 'cpuUsPerRequest'),
        p99RatioRbac: toRbac(v.id, 'p99Ms'),
        cpuRatioRbacQuartiles: quartiles(v.id),
        cpuRatioReference: referenceId ? toReference(v.id, 'cpuUsPerRequest') : undefined,
        p99RatioReference: referenceId ? toReference(v.id, 'p99Ms') : undefined,
        deniedShare: denied / Math.max(1, ok + denied),
        otherStatuses: s.reduce((a, x) => a + x.other, 0),
        socketErrors: s.reduce((a, x) => a + x.socketErrors, 0),
        rssStartKiB: rssStart.get(v.id)!,
        rssEndKiB: rssKiB(envoy.pid),
        wasmMemoryKiB: mem?.sizeKiB,
        wasmResidentKiB: mem?.rssKiB,
        wasmSizeBytes: v.wasmPath ? fs.statSync(v.wasmPath).size : undefined,
        rounds: s.map(({ rps, p50Ms, p99Ms, cpuUsPerRequest }) => ({ rps, p50Ms, p99Ms, cpuUsPerRequest })),
      };
    });
    return {
      connections: o.connections,
      seconds: o.seconds,
      rounds: o.rounds,
      upstream: 'Envoy direct_response (200 "ok")',
      reference: referenceId ? o.variants.find((v) => v.id === referenceId)!.label : undefined,
      results,
    };
  } finally {
    for (const e of envoys.values()) await e.stop();
    await upstream.stop();
  }
}

const x = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : 'n/a');

export function requestTable(b: RequestBench): string {
  const ref = b.reference !== undefined;
  const rows: Array<Array<string | number>> = [
    [
      'variant', 'req/s', 'p50', 'p99', 'Envoy CPU/req', 'CPU ÷ RBAC (quartiles of rounds)', 'p99 ÷ RBAC',
      ...(ref ? ['CPU ÷ Rust', 'p99 ÷ Rust'] : []),
      'CPU ÷ none', 'Envoy RSS', 'Wasm memory', 'plugin.wasm', 'denied',
    ],
  ];
  for (const r of b.results) {
    rows.push([
      r.label,
      fmt(r.rps),
      `${r.p50Ms.toFixed(2)} ms`,
      `${r.p99Ms.toFixed(2)} ms`,
      `${r.cpuUsPerRequest.toFixed(1)} µs`,
      `${x(r.cpuRatioRbac)} (${x(r.cpuRatioRbacQuartiles?.[0] ?? NaN)}–${x(r.cpuRatioRbacQuartiles?.[1] ?? NaN)})`,
      x(r.p99RatioRbac),
      ...(ref ? [x(r.cpuRatioReference ?? NaN), x(r.p99RatioReference ?? NaN)] : []),
      x(r.cpuRatio),
      mib(r.rssEndKiB),
      r.wasmMemoryKiB === undefined ? '' : `${fmt(r.wasmMemoryKiB)} KiB`,
      r.wasmSizeBytes === undefined ? '' : `${fmt(r.wasmSizeBytes)} B`,
      `${Math.round(r.deniedShare * 100)}%`,
    ]);
  }
  return table(rows);
}
