import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  failureDeltas,
  fallbackProblem,
  filterDifferences,
  filterFromEcds,
  isPluginResource,
  parseAgentWasmMetrics,
  readGatewayFilter,
  type GatewayFilter,
} from '../../../src/k8s/istio.js';
import { verify, type VerifyCase } from '../../../src/k8s/verify.js';
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

describe('verify with Istio\'s signals', () => {
  let server: http.Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = undefined;
  });

  /** One server for the gateway, its admin and its status port; `state()` says what the gateway runs now. */
  async function gateway(state: () => { entry: object; metrics: string; status: number }): Promise<string> {
    server = http.createServer((req, res) => {
      const s = state();
      if (req.url?.startsWith('/config_dump')) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ configs: [{ '@type': 'type.googleapis.com/envoy.admin.v3.EcdsConfigDump.EcdsFilterConfig', ...s.entry }] }));
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
