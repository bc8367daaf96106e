// Istio's own signals about one WasmPlugin on a gateway, read after an apply:
// - what the gateway's Envoy runs for it, from Envoy's config dump (admin
//   interface): Istio delivers a WasmPlugin as an ECDS filter; the Istio agent
//   rewrites the remote module to a file in its cache named after the sha256,
//   or, when it cannot fetch the module, replaces the Wasm filter with an RBAC
//   filter that denies (FAIL_CLOSE) or allows (FAIL_OPEN) every request;
// - what the Istio agent says about fetching it, from its metrics on the
//   status port: istio_agent_wasm_remote_fetch_count{result} and
//   istio_agent_wasm_config_conversion_count{result}.
// - whether Envoy took or rejected the last update of the filter, from its
//   ECDS counters (`extension_config_discovery.<scope>.<resource>.config_fail`,
//   `update_rejected`), which a gateway keeps only when its
//   proxyStatsMatcher includes them (Istio's default list leaves them out);
//   Envoy's config dump shows an update it rejected as if it had taken it;
// - Envoy's reason for a rejection, from istiod's /debug/syncz (the NACK's
//   message, per proxy and xDS type), when istiod's monitoring port is given.
// All are plain HTTP GETs below a base URL, so on a cluster they can be read
// through the API server's pod proxy (…/pods/<pod>:15000/proxy) with headers.
import { request } from '../net/index.js';
import type { WasmPlugin } from './wasmplugin.js';

export interface IstioEndpoints {
  /** Base URL of the gateway Envoy's admin interface, e.g. `http://127.0.0.1:15000`. */
  adminUrl?: string;
  /** Base URL of the Istio agent's status server, e.g. `http://127.0.0.1:15020`. */
  statusUrl?: string;
  /** Base URL of istiod's monitoring port (15014), which serves /debug/syncz: Envoy's NACKs, in Envoy's words. */
  istiodUrl?: string;
  /** Headers sent with every request (e.g. Authorization for a proxy in front). */
  headers?: Record<string, string>;
  /** Per request; default 3 s. */
  requestTimeoutMs?: number;
  /** Accept any TLS certificate (default false). */
  insecure?: boolean;
}

/** What the gateway's Envoy runs for one WasmPlugin. */
export type GatewayFilter =
  | {
      kind: 'wasm';
      /** The ECDS resource name. */
      resource: string;
      rootId: string;
      /** pluginConfig as the plugin receives it (parsed JSON), undefined when none. */
      configuration: unknown;
      /** The module file in the agent's cache, `…/<sha256>.wasm`. */
      moduleFile?: string;
      /** The sha256 in the module file's name (the WasmPlugin's sha256, or the fetched one). */
      moduleSha256?: string;
      /** Envoy's failure policy (FAIL_CLOSED, FAIL_OPEN, FAIL_RELOAD or unset). */
      failurePolicy?: string;
      lastUpdated?: string;
      /** Envoy rejected the last update of this filter: its reason. */
      rejected?: string;
    }
  | {
      /** The agent could not fetch the module and put Istio's RBAC fallback in its place. */
      kind: 'fallback';
      resource: string;
      /** deny: every request gets 403 (FAIL_CLOSE); allow: the plugin is bypassed (FAIL_OPEN). */
      mode: 'deny' | 'allow';
      statPrefix: string;
      lastUpdated?: string;
      rejected?: string;
    }
  | { kind: 'other'; resource: string; typeUrl: string; lastUpdated?: string; rejected?: string }
  | { kind: 'missing' };

/** The agent's Wasm counters, by result label. */
export interface AgentWasmMetrics {
  /** istio_agent_wasm_remote_fetch_count: success, download_failure, manifest_failure, checksum_mismatched, … */
  fetch: Record<string, number>;
  /** istio_agent_wasm_config_conversion_count: success, fetch_failure, … */
  conversion: Record<string, number>;
}

/** A GET of one of Istio's endpoints, on the network layer (a NetworkError when it cannot be read). */
async function get(base: string, sub: string, ep: IstioEndpoints): Promise<{ status: number; body: string }> {
  const url = new URL(base.replace(/\/+$/, '') + sub);
  const res = await request({
    method: 'GET',
    url,
    headers: { Accept: '*/*', ...(ep.headers ?? {}) },
    timeoutMs: ep.requestTimeoutMs ?? 3000,
    // Config dumps of a busy gateway run to megabytes; nothing here needs more than this.
    maxBodyBytes: 256 * 1024 * 1024,
    tls: { agent: false, ...(url.protocol === 'https:' && ep.insecure ? { rejectUnauthorized: false } : {}) },
  });
  return { status: res.status, body: res.body.toString('utf8') };
}

/**
 * Whether an ECDS resource name is the one Istio gives WasmPlugin
 * `namespace/name`: `…/<namespace>.<name>` (Istio up to 1.28:
 * `extensions.istio.io/wasmplugin/ns.name`; later ones translate the
 * WasmPlugin to a TrafficExtension `ns.name~istio-translated-wasmplugin`).
 */
export function isPluginResource(resource: string, namespace: string, name: string): boolean {
  const last = resource.slice(resource.lastIndexOf('/') + 1);
  const want = `${namespace}.${name}`;
  return last === want || last.startsWith(`${want}~`);
}

function typeName(any: any): string {
  const t = String(any?.['@type'] ?? '');
  return t.slice(t.lastIndexOf('/') + 1);
}

function parseConfiguration(cfg: any): unknown {
  if (!cfg || cfg.value === undefined || cfg.value === '') return undefined;
  if (typeof cfg.value !== 'string') return cfg.value;
  try {
    return JSON.parse(cfg.value);
  } catch {
    return cfg.value;
  }
}

/** Reads one ECDS entry (an EcdsFilterConfig of the config dump) into a GatewayFilter. */
export function filterFromEcds(entry: any): GatewayFilter {
  const ext = entry?.ecds_filter ?? {};
  const resource = String(ext.name ?? '');
  const typed = ext.typed_config ?? {};
  const type = typeName(typed);
  const lastUpdated = entry?.last_updated;
  const rejected = entry?.error_state?.details ? String(entry.error_state.details) : undefined;
  const common = { resource, ...(lastUpdated ? { lastUpdated } : {}), ...(rejected ? { rejected } : {}) };
  if (/^envoy\.extensions\.filters\.(http|network)\.wasm\.v3\.Wasm$/.test(type)) {
    const config = typed.config ?? {};
    const moduleFile: string | undefined = config.vm_config?.code?.local?.filename;
    const sha = moduleFile ? /([0-9a-f]{64})\.wasm$/.exec(moduleFile)?.[1] : undefined;
    return {
      kind: 'wasm',
      ...common,
      rootId: String(config.root_id ?? ''),
      configuration: parseConfiguration(config.configuration),
      ...(moduleFile ? { moduleFile } : {}),
      ...(sha ? { moduleSha256: sha } : {}),
      ...(config.failure_policy ? { failurePolicy: String(config.failure_policy) } : config.fail_open ? { failurePolicy: 'FAIL_OPEN' } : {}),
    };
  }
  if (/^envoy\.extensions\.filters\.(http|network)\.rbac\.v3\.RBAC$/.test(type)) {
    const statPrefix = String(typed.rules_stat_prefix ?? typed.stat_prefix ?? '');
    // Istio's fallback: no rules allows all, empty rules deny all.
    const mode = typed.rules ? 'deny' : 'allow';
    if (/^wasm-default-(deny|allow)$/.test(statPrefix)) return { kind: 'fallback', ...common, mode, statPrefix };
  }
  return { kind: 'other', ...common, typeUrl: type };
}

/** Finds every EcdsFilterConfig in a config dump, whatever the nesting. */
function ecdsEntries(dump: any): any[] {
  const out: any[] = [];
  const walk = (v: any) => {
    if (!v || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const x of v) walk(x);
      return;
    }
    if (v.ecds_filter && typeof v.ecds_filter === 'object') {
      out.push(v);
      return;
    }
    for (const x of Object.values(v)) walk(x);
  };
  walk(dump);
  return out;
}

/** What the gateway's Envoy runs for WasmPlugin `namespace/name`. Throws when the admin interface cannot be read. */
export async function readGatewayFilter(ep: IstioEndpoints, namespace: string, name: string): Promise<GatewayFilter> {
  if (!ep.adminUrl) throw new Error('no gateway admin URL');
  let res = await get(ep.adminUrl, '/config_dump?resource=ecds_filters', ep);
  // Envoy answers 404 to a resource filter when it has no such config yet.
  if (res.status === 404) res = await get(ep.adminUrl, '/config_dump', ep);
  if (res.status !== 200) throw new Error(`${ep.adminUrl}/config_dump answered HTTP ${res.status}: ${res.body.slice(0, 200)}`);
  let dump: unknown;
  try {
    dump = JSON.parse(res.body);
  } catch {
    throw new Error(`${ep.adminUrl}/config_dump did not answer JSON`);
  }
  const entry = ecdsEntries(dump).find((e) => isPluginResource(String(e.ecds_filter?.name ?? ''), namespace, name));
  return entry ? filterFromEcds(entry) : { kind: 'missing' };
}

/** Parses Prometheus text for the agent's Wasm counters. */
export function parseAgentWasmMetrics(text: string): AgentWasmMetrics {
  const out: AgentWasmMetrics = { fetch: {}, conversion: {} };
  for (const raw of text.split('\n')) {
    const m = /^(?:istio_agent_)?wasm_(remote_fetch|config_conversion)_(?:count|total)(?:_total)?\{([^}]*)\}\s+([0-9.eE+-]+)/.exec(raw.trim());
    if (!m) continue;
    const result = /result="([^"]*)"/.exec(m[2])?.[1] ?? 'unknown';
    const bucket = m[1] === 'remote_fetch' ? out.fetch : out.conversion;
    bucket[result] = (bucket[result] ?? 0) + Number(m[3]);
  }
  return out;
}

/** The agent's Wasm counters from its status port. Throws when they cannot be read. */
export async function readAgentMetrics(ep: IstioEndpoints): Promise<AgentWasmMetrics> {
  if (!ep.statusUrl) throw new Error('no gateway status URL');
  const res = await get(ep.statusUrl, '/stats/prometheus', ep);
  if (res.status !== 200) throw new Error(`${ep.statusUrl}/stats/prometheus answered HTTP ${res.status}`);
  return parseAgentWasmMetrics(res.body);
}

/** Counters that rose between two readings, non-success results only: `name{result="x"} +n`. */
export function failureDeltas(before: AgentWasmMetrics | undefined, after: AgentWasmMetrics): string[] {
  const out: string[] = [];
  for (const [metric, key] of [
    ['istio_agent_wasm_remote_fetch_count', 'fetch'],
    ['istio_agent_wasm_config_conversion_count', 'conversion'],
  ] as const) {
    for (const [result, n] of Object.entries(after[key])) {
      if (result === 'success') continue;
      const delta = n - (before?.[key][result] ?? 0);
      if (delta > 0) out.push(`${metric}{result="${result}"} +${delta}`);
    }
  }
  return out;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

const FAILURE_POLICY: Record<string, string> = { FAIL_CLOSE: 'FAIL_CLOSED', FAIL_OPEN: 'FAIL_OPEN', FAIL_RELOAD: 'FAIL_RELOAD' };

/**
 * How the Wasm filter on the gateway differs from what `plugin` asks for
 * (root id, configuration, module sha256, failure policy); empty when the
 * gateway runs exactly this WasmPlugin.
 */
export function filterDifferences(filter: GatewayFilter, plugin: WasmPlugin): string[] {
  if (filter.kind !== 'wasm') return [`not a Wasm filter (${filter.kind})`];
  const spec = plugin.spec;
  const out: string[] = [];
  if ((spec.pluginName ?? '') !== '' && filter.rootId !== spec.pluginName) out.push(`root id ${JSON.stringify(filter.rootId)}, not ${JSON.stringify(spec.pluginName)}`);
  const wantConfig = spec.pluginConfig && Object.keys(spec.pluginConfig).length ? spec.pluginConfig : undefined;
  if (canonical(filter.configuration) !== canonical(wantConfig)) out.push('another pluginConfig');
  const sha = expectedModuleSha256(plugin);
  if (sha && filter.moduleSha256 !== sha) out.push(`module ${filter.moduleSha256 ? `sha256 ${filter.moduleSha256.slice(0, 12)}…` : 'file unknown'}, not ${sha.slice(0, 12)}…`);
  const policy = spec.failStrategy ? FAILURE_POLICY[spec.failStrategy] : undefined;
  if (policy && filter.failurePolicy && filter.failurePolicy !== policy) out.push(`failure policy ${filter.failurePolicy}, not ${policy}`);
  return out;
}

/**
 * The sha256 the agent names the module file after, when it is known before
 * the fetch: spec.sha256, else the digest an `oci://…@sha256:` url pins.
 * Undefined for a url that names a tag (or an http url) without sha256.
 */
export function expectedModuleSha256(plugin: WasmPlugin): string | undefined {
  const sha = plugin.spec.sha256?.replace(/^sha256:/, '');
  if (sha) return sha;
  return /^oci:\/\/.*@sha256:([0-9a-f]{64})$/.exec(plugin.spec.url ?? '')?.[1];
}

/** One line about a GatewayFilter, for logs. */
export function describeFilter(filter: GatewayFilter): string {
  switch (filter.kind) {
    case 'missing':
      return 'no filter for this WasmPlugin';
    case 'wasm':
      return `Wasm filter ${filter.resource} (root id ${filter.rootId}${filter.moduleSha256 ? `, module sha256 ${filter.moduleSha256.slice(0, 12)}…` : ''})`;
    case 'fallback':
      return `Istio's ${filter.mode}-all RBAC filter "${filter.statPrefix}" in place of ${filter.resource}`;
    default:
      return `${filter.typeUrl} filter ${filter.resource}`;
  }
}

/** What each failure result of the agent's counters means (pkg/wasm of Istio: cache.go, convert.go). */
const RESULT_MEANING: Record<string, string> = {
  'istio_agent_wasm_remote_fetch_count{result="manifest_failure"}': 'the image manifest could not be fetched: a missing tag, an unreachable registry or refused credentials',
  'istio_agent_wasm_remote_fetch_count{result="download_failure"}':
    'the manifest was fetched but no Wasm module could be taken out of the image: a layout Istio does not read (not a single tar+gzip layer holding plugin.wasm, nor the two-layer Wasm artifact) or a layer download that failed',
  'istio_agent_wasm_remote_fetch_count{result="checksum_mismatched"}': 'the image digest is not the sha256 the WasmPlugin names',
  'istio_agent_wasm_remote_fetch_count{result="fetch_failure"}': 'what the image holds is not a Wasm binary',
};

/** A counter delta (`name{result="x"} +n`) with what it means, when known. */
export function explainDelta(delta: string): string {
  const key = delta.slice(0, delta.lastIndexOf(' +'));
  return RESULT_MEANING[key] ? `${delta} (${RESULT_MEANING[key]})` : delta;
}

/** Istio's own words for a fallback filter. */
export function fallbackProblem(filter: Extract<GatewayFilter, { kind: 'fallback' }>, deltas: string[]): string {
  const what =
    filter.mode === 'deny'
      ? 'every request through the gateway is denied (403 "RBAC: access denied")'
      : 'the plugin is bypassed: every request passes unchecked (FAIL_OPEN)';
  return (
    `the gateway's Istio agent could not fetch the Wasm module and applied ${filter.mode} RBAC filter "${filter.statPrefix}" in its place: ${what}` +
    (deltas.length ? `; agent metrics: ${deltas.map(explainDelta).join(', ')}` : '') +
    (pullSecretWithheld(deltas) ? `; ${PULL_SECRET_WITHHELD}` : '')
  );
}

const PULL_SECRET_WITHHELD =
  'the agent failed the conversion without trying a pull, as it does when the WasmPlugin names an imagePullSecret and istiod sent it an empty one ' +
  '("missing image pulling secret" in its log): the Secret is missing from the WasmPlugin\'s namespace, or istiod does not trust this proxy with secrets ' +
  '(it sends them only to proxies it verified, over mutual-TLS xDS)';

/** A conversion that failed with no pull counted: Istio's agent found the pull secret it was sent empty (pkg/wasm convert.go). */
export function pullSecretWithheld(deltas: string[]): boolean {
  return (
    deltas.some((d) => d.startsWith('istio_agent_wasm_config_conversion_count{result="fetch_failure"}')) &&
    !deltas.some((d) => d.startsWith('istio_agent_wasm_remote_fetch_count'))
  );
}

/** Envoy's ECDS counters for one filter resource, or undefined when the gateway keeps none. */
export interface EcdsCounters {
  /** The stat name prefix, `extension_config_discovery.<scope>.<resource>`. */
  prefix: string;
  /** Updates Envoy refused (config_fail, update_rejected: the larger). */
  rejected: number;
  /** Updates Envoy took. */
  reloaded: number;
}

/**
 * Parses Envoy's `/stats` text for the ECDS counters of WasmPlugin
 * `namespace/name`: `extension_config_discovery.<scope>.<resource>.<counter>: n`.
 */
export function parseEcdsCounters(text: string, namespace: string, name: string): EcdsCounters | undefined {
  let found: EcdsCounters | undefined;
  for (const raw of text.split('\n')) {
    const m = /^(extension_config_discovery\.[^.]+\.(.+))\.(config_fail|update_rejected|config_reload):\s*(\d+)\s*$/.exec(raw.trim());
    if (!m || !isPluginResource(m[2], namespace, name)) continue;
    found ??= { prefix: m[1], rejected: 0, reloaded: 0 };
    const n = Number(m[4]);
    if (m[3] === 'config_reload') found.reloaded = n;
    else found.rejected = Math.max(found.rejected, n);
  }
  return found;
}

/** The gateway Envoy's ECDS counters for WasmPlugin `namespace/name`; undefined when it keeps none. Throws when they cannot be read. */
export async function readEcdsCounters(ep: IstioEndpoints, namespace: string, name: string): Promise<EcdsCounters | undefined> {
  if (!ep.adminUrl) throw new Error('no gateway admin URL');
  const res = await get(ep.adminUrl, '/stats?filter=extension_config_discovery', ep);
  if (res.status !== 200) throw new Error(`${ep.adminUrl}/stats answered HTTP ${res.status}`);
  return parseEcdsCounters(res.body, namespace, name);
}

const ECDS_TYPE = 'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig';

/** What istiod knows about one proxy's ECDS stream: the last nonce sent and acked, and the message of its last NACK. */
export interface EcdsSync {
  proxy: string;
  sent?: string;
  acked?: string;
  lastError?: string;
}

/** Parses istiod's /debug/syncz for every proxy's ECDS stream. */
export function parseEcdsSync(body: unknown): EcdsSync[] {
  if (!Array.isArray(body)) return [];
  return body.map((p: any) => {
    const r = p?.resources?.[ECDS_TYPE] ?? {};
    return {
      proxy: String(p?.proxy ?? ''),
      ...(r.sent ?? p?.extensionconfig_sent ? { sent: String(r.sent ?? p.extensionconfig_sent) } : {}),
      ...(r.acked ?? p?.extensionconfig_acked ? { acked: String(r.acked ?? p.extensionconfig_acked) } : {}),
      ...(r.lastError ? { lastError: String(r.lastError) } : {}),
    };
  });
}

/** istiod's view of every proxy's ECDS stream. Throws when /debug/syncz cannot be read. */
export async function readEcdsSync(ep: IstioEndpoints): Promise<EcdsSync[]> {
  if (!ep.istiodUrl) throw new Error('no istiod URL');
  const res = await get(ep.istiodUrl, '/debug/syncz', ep);
  if (res.status !== 200) throw new Error(`${ep.istiodUrl}/debug/syncz answered HTTP ${res.status}`);
  try {
    return parseEcdsSync(JSON.parse(res.body));
  } catch {
    throw new Error(`${ep.istiodUrl}/debug/syncz did not answer JSON`);
  }
}

/**
 * The NACKs of ECDS updates istiod received since `before` (a proxy whose
 * last error is new or changed; istiod clears it on the next ACK):
 * `proxy: message`. With `plugin`
 * (`namespace.name`), only messages that name it, unless `any`.
 */
export function newEcdsRejections(before: EcdsSync[] | undefined, after: EcdsSync[], plugin: string, any = false): string[] {
  const old = new Map((before ?? []).map((s) => [s.proxy, s]));
  return after
    .filter((s) => s.lastError && s.lastError !== old.get(s.proxy)?.lastError)
    .filter((s) => any || s.lastError!.includes(plugin))
    .map((s) => `${s.proxy}: ${s.lastError}`);
}
