import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  explainDelta,
  failureDeltas,
  newEcdsRejections,
  parseEcdsCounters,
  parseEcdsSync,
  fallbackProblem,
  filterDifferences,
  filterFromEcds,
  isPluginResource,
  parseAgentWasmMetrics,
  readGatewayFilter,
  type GatewayFilter,
} from '../../../src/k8s/istio.js';
import { istioBaseline, verify, type VerifyCase } from '../../../src/k8s/verify.js';
import type { WasmPlugin } from '../../../src/k8s/wasmplugin.js';

const SHA = 'ab'.repeat(32);
const RESOURCE = 'extensions.istio.io/trafficextension/istio-system.header-authorization~istio-translated-wasmplugin';

const plugin = {
  apiVersion: 'extensions.istio.io/v1alpha1',
  kind: 'WasmPlugin',
  metadata: { name: 'header-authorization', namespace: 'istio-system' },
  spec: {
    url: `oci://registry/x@sha256:${SHA}`,
    sha256: SHA,
    pluginName: 'header-authorization',
    failStrategy: 'FAIL_CLOSE',
    pluginConfig: { header: 'allow', value: 'true', denyStatus: 403 },
  },
} as unknown as WasmPlugin;

function wasmEntry(config: Record<string, unknown> = { denyStatus: 403, header: 'allow', value: 'true' }, sha = SHA, extra: object = {}) {
  return {
    version_info: '2026-12-01T22:00:00Z/7',
    ecds_filter: {
      '@type': 'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig',
      name: RESOURCE,
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
        config: {
          name: 'istio-system.header-authorization~istio-translated-wasmplugin',
          root_id: 'header-authorization',
          vm_config: { runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: `/var/lib/istio/data/${'0'.repeat(64)}/${sha}.wasm` } } },
          configuration: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: JSON.stringify(config) },
          failure_policy: 'FAIL_CLOSED',
        },
      },
    },
    last_updated: '2026-12-01T22:00:01.000Z',
    ...extra,
  };
}

function fallbackEntry(mode: 'deny' | 'allow') {
  return {
    ecds_filter: {
      name: RESOURCE,
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
        ...(mode === 'deny' ? { rules: {} } : {}),
        rules_stat_prefix: `wasm-default-${mode}`,
      },
    },
    last_updated: '2026-12-01T22:00:02.000Z',
  };
}

describe('Istio signals', () => {
  it('recognises the ECDS names of a WasmPlugin in old and new Istio', () => {
    expect(isPluginResource(RESOURCE, 'istio-system', 'header-authorization')).toBe(true);
    expect(isPluginResource('extensions.istio.io/wasmplugin/istio-system.header-authorization', 'istio-system', 'header-authorization')).toBe(true);
    expect(isPluginResource('extensions.istio.io/wasmplugin/istio-system.header-authorization-2', 'istio-system', 'header-authorization')).toBe(false);
    expect(isPluginResource('extensions.istio.io/wasmplugin/other.header-authorization', 'istio-system', 'header-authorization')).toBe(false);
  });

  it('reads the Wasm filter the agent rewrote to its cache, and compares it with the applied spec', () => {
    const filter = filterFromEcds(wasmEntry());
    expect(filter).toMatchObject({ kind: 'wasm', rootId: 'header-authorization', moduleSha256: SHA, failurePolicy: 'FAIL_CLOSED' });
    expect(filterDifferences(filter, plugin)).toEqual([]);
    expect(filterDifferences(filterFromEcds(wasmEntry({ header: 'allow', value: 'never' })), plugin)).toEqual(['another pluginConfig']);
    expect(filterDifferences(filterFromEcds(wasmEntry(undefined, 'cd'.repeat(32))), plugin)[0]).toMatch(/^module sha256 cdcdcdcdcdcd…, not abababababab…/);
  });

  it('reads Istio\'s RBAC fallbacks and says what they do', () => {
    const deny = filterFromEcds(fallbackEntry('deny')) as Extract<GatewayFilter, { kind: 'fallback' }>;
    const allow = filterFromEcds(fallbackEntry('allow')) as Extract<GatewayFilter, { kind: 'fallback' }>;
    expect(deny).toMatchObject({ kind: 'fallback', mode: 'deny', statPrefix: 'wasm-default-deny' });
    expect(allow).toMatchObject({ kind: 'fallback', mode: 'allow', statPrefix: 'wasm-default-allow' });
    expect(fallbackProblem(deny, ['x +1'])).toMatch(/applied deny RBAC filter "wasm-default-deny" in its place: every request .* denied.*; agent metrics: x \+1/);
    expect(fallbackProblem(allow, [])).toMatch(/the plugin is bypassed/);
  });

  it('says a pull secret was withheld when the conversion failed without a pull, and only then', () => {
    const deny = filterFromEcds(fallbackEntry('deny')) as Extract<GatewayFilter, { kind: 'fallback' }>;
    const conversion = 'istio_agent_wasm_config_conversion_count{result="fetch_failure"} +1';
    const pull = 'istio_agent_wasm_remote_fetch_count{result="manifest_failure"} +1';
    expect(fallbackProblem(deny, [conversion])).toMatch(/missing image pulling secret.*mutual-TLS xDS/);
    // A pull that was tried and refused (a wrong password) is the registry's answer, not a withheld secret.
    expect(fallbackProblem(deny, [conversion, pull])).not.toMatch(/missing image pulling secret/);
    expect(fallbackProblem(deny, [])).not.toMatch(/missing image pulling secret/);
  });

  it('parses the agent\'s counters and reports the failures that rose', () => {
    const before = parseAgentWasmMetrics(
      [
        '# TYPE istio_agent_wasm_remote_fetch_count counter',
        'istio_agent_wasm_remote_fetch_count{result="success"} 1',
        'istio_agent_wasm_config_conversion_count{result="success"} 1',
      ].join('\n'),
    );
    const after = parseAgentWasmMetrics(
      [
        'istio_agent_wasm_remote_fetch_count{result="success"} 1',
        'istio_agent_wasm_remote_fetch_count{result="manifest_failure"} 1',
        'istio_agent_wasm_config_conversion_count{result="success"} 1',
        'istio_agent_wasm_config_conversion_count{result="fetch_failure"} 1',
      ].join('\n'),
    );
    expect(after.fetch).toEqual({ success: 1, manifest_failure: 1 });
    expect(failureDeltas(before, after)).toEqual([
      'istio_agent_wasm_remote_fetch_count{result="manifest_failure"} +1',
      'istio_agent_wasm_config_conversion_count{result="fetch_failure"} +1',
    ]);
    expect(failureDeltas(after, after)).toEqual([]);
  });
});

const ECDS_STATS = (fail: number, reload: number) =>
  [
    `extension_config_discovery.http_filter.${RESOURCE}.version_text: "2026-12-02T00:09:45Z/5"`,
    `extension_config_discovery.http_filter.${RESOURCE}.config_conflict: 0`,
    `extension_config_discovery.http_filter.${RESOURCE}.config_fail: ${fail}`,
    `extension_config_discovery.http_filter.${RESOURCE}.config_reload: ${reload}`,
    `extension_config_discovery.http_filter.${RESOURCE}.update_rejected: ${fail}`,
    `extension_config_discovery.http_filter.${RESOURCE}.update_duration: No recorded values`,
    'extension_config_discovery.http_filter.extensions.istio.io/trafficextension/istio-system.other~istio-translated-wasmplugin.config_fail: 7',
  ].join('\n');

const NACK = 'Unable to create Wasm plugin istio-system.header-authorization~istio-translated-wasmplugin';
const syncz = (lastError?: string) => [
  {
    proxy: 'gw-1.istio-system',
    extensionconfig_sent: 'n2',
    extensionconfig_acked: lastError ? 'n1' : 'n2',
    resources: { 'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig': { sent: 'n2', acked: lastError ? 'n1' : 'n2', ...(lastError ? { lastError } : {}) } },
  },
];

describe('Envoy\'s verdict on an ECDS update', () => {
  it('reads the ECDS counters of this WasmPlugin only', () => {
    expect(parseEcdsCounters(ECDS_STATS(1, 2), 'istio-system', 'header-authorization')).toEqual({
      prefix: `extension_config_discovery.http_filter.${RESOURCE}`,
      rejected: 1,
      reloaded: 2,
    });
    expect(parseEcdsCounters('wasm.wasm_vm_count: 3\n', 'istio-system', 'header-authorization')).toBeUndefined();
  });

  it('reads istiod\'s NACK records and keeps only new ones that name the plugin', () => {
    const before = parseEcdsSync(syncz());
    const after = parseEcdsSync(syncz(NACK));
    expect(after).toEqual([{ proxy: 'gw-1.istio-system', sent: 'n2', acked: 'n1', lastError: NACK }]);
    expect(newEcdsRejections(before, after, 'istio-system.header-authorization')).toEqual([`gw-1.istio-system: ${NACK}`]);
    expect(newEcdsRejections(after, after, 'istio-system.header-authorization')).toEqual([]);
    expect(newEcdsRejections(before, after, 'istio-system.other')).toEqual([]);
    expect(newEcdsRejections(before, after, 'istio-system.other', true)).toHaveLength(1);
  });

  it('says what each of the agent\'s failure results means', () => {
    expect(explainDelta('istio_agent_wasm_remote_fetch_count{result="download_failure"} +1')).toMatch(/\+1 \(the manifest was fetched but no Wasm module could be taken out of the image/);
    expect(explainDelta('istio_agent_wasm_config_conversion_count{result="fetch_failure"} +1')).toBe('istio_agent_wasm_config_conversion_count{result="fetch_failure"} +1');
  });
});

describe('verify with Istio\'s signals', () => {
  let server: http.Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = undefined;
  });

  /** One server for the gateway, its admin and its status port; `state()` says what the gateway runs now. */
  async function gateway(state: () => { entry: object; metrics: string; status: number; stats?: string; syncz?: object }): Promise<string> {
    server = http.createServer((req, res) => {
      const s = state();
      if (req.url?.startsWith('/stats?filter=extension_config_discovery')) res.writeHead(200).end(s.stats ?? '');
      else if (req.url === '/debug/syncz') res.writeHead(s.syncz ? 200 : 404).end(JSON.stringify(s.syncz ?? {}));
      else if (req.url?.startsWith('/config_dump')) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ configs: [{ '@type': 'type.googleapis.com/envoy.admin.v3.EcdsConfigDump.EcdsFilterConfig', ...s.entry }] }));
      else if (req.url === '/stats/prometheus') res.writeHead(200).end(s.metrics);
      else res.writeHead(s.status).end(s.status === 200 ? 'ok' : 'RBAC: access denied');
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const cases: VerifyCase[] = [{ name: 'allowed', request: { path: '/', headers: { allow: 'true' } }, expect: { status: 200 } }];

  it('does not judge the cases before the gateway runs this apply', async () => {
    const started = Date.now();
    const url = await gateway(() =>
      Date.now() - started < 700
        ? { entry: wasmEntry({ header: 'allow', value: 'old' }), metrics: '', status: 200 }
        : { entry: wasmEntry(), metrics: '', status: 403 },
    );
    const report = await verify({ url, cases, timeoutMs: 10_000, intervalMs: 50, istio: { adminUrl: url, statusUrl: url }, plugin, baseline: {} });
    expect(report.istio).toMatchObject({ passed: true });
    expect(report.istio!.liveAfterMs).toBeGreaterThanOrEqual(600);
    expect(report.passed).toBe(false);
    expect(report.cases[0]).toMatchObject({ name: 'allowed', passed: false, status: 403 });
  });

  it('fails at once on the allow-all fallback, although the cases pass', async () => {
    const url = await gateway(() => ({
      entry: fallbackEntry('allow'),
      metrics: 'istio_agent_wasm_remote_fetch_count{result="manifest_failure"} 1\nistio_agent_wasm_config_conversion_count{result="fetch_failure"} 1\n',
      status: 200,
    }));
    const report = await verify({ url, cases, timeoutMs: 30_000, istio: { adminUrl: url, statusUrl: url }, plugin, baseline: { metrics: { fetch: {}, conversion: {} }, filter: filterFromEcds(wasmEntry()) } });
    expect(report.passed).toBe(false);
    expect(report.elapsedMs).toBeLessThan(5000);
    expect(report.cases[0].problems[0]).toMatch(/wasm-default-allow.*bypassed.*manifest_failure"\} \+1/);
  });

  it('fails at once when Envoy rejected the update its config dump shows, in Envoy\'s words from istiod', async () => {
    let rejected = false;
    // The dump shows the new configuration once Envoy handled it, taken or not.
    const url = await gateway(() => ({
      entry: rejected ? wasmEntry() : wasmEntry({ header: 'allow', value: 'old' }),
      metrics: '',
      status: 200,
      stats: ECDS_STATS(rejected ? 1 : 0, 1),
      syncz: syncz(rejected ? NACK : undefined),
    }));
    const baseline = await istioBaseline({ adminUrl: url, istiodUrl: url }, plugin);
    expect(baseline).toMatchObject({ ecds: { rejected: 0, reloaded: 1 }, sync: [{ proxy: 'gw-1.istio-system' }] });
    rejected = true;
    const report = await verify({ url, cases, timeoutMs: 30_000, istio: { adminUrl: url, istiodUrl: url }, plugin, baseline });
    expect(report.passed).toBe(false);
    expect(report.elapsedMs).toBeLessThan(5000);
    expect(report.cases[0].problems[0]).toBe(
      `the gateway rejected the Wasm filter: ${NACK} (Envoy's counters: extension_config_discovery.http_filter.${RESOURCE}.config_fail +1; istiod: NACK from gw-1.istio-system); ` +
        'Envoy keeps running the previous filter, although its config dump shows the new one',
    );
  });

  it('tells a rejection from the counters alone, and from istiod alone', async () => {
    const url = await gateway(() => ({ entry: wasmEntry(), metrics: '', status: 200, stats: ECDS_STATS(1, 1), syncz: syncz(NACK) }));
    const counters = await verify({ url, cases, timeoutMs: 30_000, istio: { adminUrl: url }, plugin, baseline: { ecds: { prefix: 'x', rejected: 0, reloaded: 1 } } });
    expect(counters.cases[0].problems[0]).toMatch(/^the gateway rejected the Wasm filter: Envoy refused the ECDS update \(Envoy's counters: .*config_fail \+1\)/);
    server!.close();
    const url2 = await gateway(() => ({ entry: wasmEntry(), metrics: '', status: 200, syncz: syncz(NACK) }));
    const nack = await verify({ url: url2, cases, timeoutMs: 30_000, istio: { adminUrl: url2, istiodUrl: url2 }, plugin, baseline: { sync: parseEcdsSync(syncz()) } });
    expect(nack.cases[0].problems[0]).toMatch(new RegExp(`^the gateway rejected the Wasm filter: ${NACK.replace(/[.~]/g, '\\$&')} \\(istiod: NACK from gw-1\\.istio-system\\)`));
  });

  it('takes an update the counters do not reject as live, and says when nothing could tell a rejection', async () => {
    const url = await gateway(() => ({ entry: wasmEntry(), metrics: '', status: 200, stats: ECDS_STATS(0, 2) }));
    const withCounters = await verify({ url, cases, timeoutMs: 30_000, istio: { adminUrl: url }, plugin, baseline: { ecds: { prefix: 'x', rejected: 0, reloaded: 1 } } });
    expect(withCounters).toMatchObject({ passed: true, istio: { passed: true, notes: [] } });
    server!.close();
    const url2 = await gateway(() => ({ entry: wasmEntry(), metrics: '', status: 200 }));
    const blind = await verify({ url: url2, cases, timeoutMs: 30_000, istio: { adminUrl: url2 }, plugin, baseline: {} });
    expect(blind.passed).toBe(true);
    expect(blind.istio!.notes.join('\n')).toMatch(/keeps no extension_config_discovery counters and no istiod URL was given/);
  });

  it('when only fields Envoy never sees changed, waits until the gateway handled the apply', async () => {
    const started = Date.now();
    const url = await gateway(() => ({
      entry: wasmEntry(),
      metrics: `istio_agent_wasm_config_conversion_count{result="success"} ${Date.now() - started < 600 ? 1 : 2}\n`,
      status: 200,
    }));
    const baseline = { filter: filterFromEcds(wasmEntry()), metrics: { fetch: {}, conversion: { success: 1 } } };
    const report = await verify({ url, cases, timeoutMs: 10_000, intervalMs: 50, istio: { adminUrl: url, statusUrl: url }, plugin, baseline });
    expect(report.istio).toMatchObject({ passed: true });
    expect(report.istio!.liveAfterMs).toBeGreaterThanOrEqual(500);
  });

  it('says what the gateway still runs when the time is up', async () => {
    const url = await gateway(() => ({ entry: wasmEntry({ header: 'allow', value: 'old' }), metrics: '', status: 200 }));
    const report = await verify({ url, cases, timeoutMs: 800, istio: { adminUrl: url }, plugin });
    expect(report.passed).toBe(false);
    expect(report.cases[0].problems[0]).toMatch(/the gateway still runs the previous configuration \(another pluginConfig\)/);
  });

  it('reads the filter through a base URL with a path, as a proxy in front would need', async () => {
    const url = await gateway(() => ({ entry: wasmEntry(), metrics: '', status: 200 }));
    server!.removeAllListeners('request');
    server!.on('request', (req, res) => {
      if (req.url?.startsWith('/proxy/pods/gw:15000/config_dump')) res.writeHead(200).end(JSON.stringify({ configs: [wasmEntry()] }));
      else res.writeHead(404).end();
    });
    const filter = await readGatewayFilter({ adminUrl: `${url}/proxy/pods/gw:15000/` }, 'istio-system', 'header-authorization');
    expect(filter).toMatchObject({ kind: 'wasm', moduleSha256: SHA });
  });
});
