// A look at the gateway pods a WasmPlugin selects, in the data-plane cluster:
// Wasm failures in the istio-proxy logs since the apply, and new failures in
// the Istio agent's wasm_remote_fetch_count counters.
import type { KubeClient } from './client.js';
import type { WasmPlugin } from './wasmplugin.js';

export interface PodCheck {
  /** `namespace/name`, or a description when no pod could be selected. */
  pod: string;
  /** Failures: any of them fails the verification. */
  problems: string[];
  /** What could not be checked and other remarks. */
  notes: string[];
}

/** wasm_remote_fetch_count by result label (success, download_failure, checksum_mismatch, …). */
export type FetchCounts = Record<string, number>;

/** Label selectors (`k=v,k2=v2`) for the pods the plugin applies to, and remarks about what cannot be resolved. */
export function podSelectors(plugin: WasmPlugin): { selectors: string[]; notes: string[] } {
  const notes: string[] = [];
  const selectors: string[] = [];
  const spec = plugin.spec;
  if (spec.selector?.matchLabels) {
    selectors.push(
      Object.entries(spec.selector.matchLabels)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    );
  }
  for (const ref of [...(spec.targetRefs ?? []), ...(spec.targetRef ? [spec.targetRef] : [])]) {
    if (ref.kind === 'Gateway' && (ref.group ?? '') === 'gateway.networking.k8s.io') {
      // Istio labels the pods of a Gateway it deploys with the Gateway's name.
      selectors.push(`gateway.networking.k8s.io/gateway-name=${ref.name}`);
    } else {
      notes.push(`cannot tell which pods ${ref.group || 'core'}/${ref.kind} ${ref.name} selects; not inspected`);
    }
  }
  return { selectors, notes };
}

/** Matches istio-proxy log lines about the Wasm module or VM failing. */
const WASM_FAILURE = /\b(fail(ed|ure|s)?|panic(ked)?|abort(ed)?|unable|cannot|crash(ed)?)\b|\[(error|critical)\]/i;

export function wasmFailureLines(log: string): string[] {
  return log.split('\n').filter((line) => /wasm/i.test(line) && WASM_FAILURE.test(line));
}

/** Parses the agent's Prometheus text for istio_agent_wasm_remote_fetch_count. */
export function parseFetchCounts(metrics: string): FetchCounts {
  const counts: FetchCounts = {};
  for (const line of metrics.split('\n')) {
    const m = /^(?:istio_agent_)?wasm_remote_fetch_(?:count|total)\{([^}]*)\}\s+([0-9.eE+-]+)/.exec(line.trim());
    if (!m) continue;
    const result = /result="([^"]*)"/.exec(m[1])?.[1] ?? 'unknown';
    counts[result] = (counts[result] ?? 0) + Number(m[2]);
  }
  return counts;
}

interface PodItem {
  metadata: { name: string; namespace: string };
  status?: { phase?: string; conditions?: { type: string; status: string }[] };
  spec?: { containers?: { name: string }[] };
}

async function listPods(client: KubeClient, namespace: string, plugin: WasmPlugin): Promise<{ pods: PodItem[]; notes: string[]; selectors: string[] }> {
  const { selectors, notes } = podSelectors(plugin);
  const pods = new Map<string, PodItem>();
  for (const labelSelector of selectors) {
    const body = await client.call(
      { method: 'GET', path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, query: { labelSelector } },
      { verb: 'list', resource: 'pods', namespace },
    );
    for (const pod of (body?.items ?? []) as PodItem[]) pods.set(pod.metadata.name, pod);
  }
  return { pods: [...pods.values()], notes, selectors };
}

async function fetchCounts(client: KubeClient, pod: PodItem): Promise<FetchCounts | string> {
  const res = await client.send({
    method: 'GET',
    path: `/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace)}/pods/${encodeURIComponent(pod.metadata.name)}:15020/proxy/stats/prometheus`,
  });
  if (res.status !== 200) return `agent stats not readable (HTTP ${res.status}${res.status === 403 ? ': needs get on pods/proxy' : ''})`;
  return parseFetchCounts(res.text);
}

/** The fetch counters of each selected pod, to compare after the apply. Never throws. */
export async function readFetchCounts(client: KubeClient, namespace: string, plugin: WasmPlugin): Promise<Map<string, FetchCounts>> {
  const out = new Map<string, FetchCounts>();
  try {
    const { pods } = await listPods(client, namespace, plugin);
    for (const pod of pods) {
      const counts = await fetchCounts(client, pod);
      if (typeof counts !== 'string') out.set(pod.metadata.name, counts);
    }
  } catch {
    // Reported by inspectGatewayPods.
  }
  return out;
}

/**
 * Checks each gateway pod the plugin selects. A pod fails on Wasm errors in
 * its istio-proxy log since `since`, or on new non-success fetch results.
 * Listing the pods failing, or no pod matching, is a problem too.
 */
export async function inspectGatewayPods(
  client: KubeClient,
  namespace: string,
  plugin: WasmPlugin,
  options: { since: Date; fetchBefore?: Map<string, FetchCounts> },
): Promise<PodCheck[]> {
  let listed;
  try {
    listed = await listPods(client, namespace, plugin);
  } catch (err) {
    return [{ pod: `(pods in ${namespace})`, problems: [`could not list the gateway pods: ${(err as Error).message}`], notes: [] }];
  }
  const { pods, notes, selectors } = listed;
  if (!pods.length) {
    if (!selectors.length) return [{ pod: `(pods in ${namespace})`, problems: [], notes }];
    return [
      {
        pod: `(pods in ${namespace})`,
        problems: [`no pod in namespace "${namespace}" of ${client.config.server} matches ${selectors.join(' or ')}`],
        notes,
      },
    ];
  }
  const checks: PodCheck[] = [];
  for (const pod of pods) {
    const check: PodCheck = { pod: `${pod.metadata.namespace}/${pod.metadata.name}`, problems: [], notes: [...notes] };
    const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    if (!ready) check.notes.push(`not ready (phase ${pod.status?.phase ?? 'unknown'})`);
    const container = pod.spec?.containers?.some((c) => c.name === 'istio-proxy') ? 'istio-proxy' : pod.spec?.containers?.[0]?.name;
    const logRes = await client.send({
      method: 'GET',
      path: `/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace)}/pods/${encodeURIComponent(pod.metadata.name)}/log`,
      query: { container, sinceTime: options.since.toISOString().replace(/\.\d+Z$/, 'Z'), limitBytes: 4 << 20 },
    });
    if (logRes.status === 200) {
      const lines = wasmFailureLines(logRes.text);
      if (lines.length) check.problems.push(`${container} log: ${lines.slice(0, 3).map((l) => l.trim()).join(' | ')}`);
    } else {
      check.notes.push(`${container} log not readable (HTTP ${logRes.status}${logRes.status === 403 ? ': needs get on pods/log' : ''})`);
    }
    const after = await fetchCounts(client, pod);
    if (typeof after === 'string') check.notes.push(after);
    else {
      const before = options.fetchBefore?.get(pod.metadata.name) ?? {};
      for (const [result, count] of Object.entries(after)) {
        const delta = count - (before[result] ?? 0);
        if (result !== 'success' && delta > 0) check.problems.push(`wasm_remote_fetch_count{result="${result}"} rose by ${delta}`);
      }
    }
    checks.push(check);
  }
  return checks;
}
