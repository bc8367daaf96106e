import { describe, expect, it } from 'vitest';
import { parseFetchCounts, podSelectors, wasmFailureLines } from '../../../src/k8s/pods.js';
import type { WasmPlugin } from '../../../src/k8s/wasmplugin.js';

function plugin(spec: Partial<WasmPlugin['spec']>): WasmPlugin {
  return { apiVersion: 'extensions.istio.io/v1alpha1', kind: 'WasmPlugin', metadata: { name: 'p', namespace: 'istio-system' }, spec: { url: 'oci://r/p', ...spec } };
}

describe('podSelectors', () => {
  it('turns matchLabels and Gateway targetRefs into label selectors', () => {
    expect(podSelectors(plugin({ selector: { matchLabels: { istio: 'ingressgateway', app: 'gw' } } }))).toEqual({
      selectors: ['istio=ingressgateway,app=gw'],
      notes: [],
    });
    expect(
      podSelectors(
        plugin({
          targetRefs: [
            { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'public' },
            { group: 'networking.istio.io', kind: 'ServiceEntry', name: 'ext' },
          ],
        }),
      ),
    ).toEqual({
      selectors: ['gateway.networking.k8s.io/gateway-name=public'],
      notes: ['cannot tell which pods networking.istio.io/ServiceEntry ext selects; not inspected'],
    });
  });
});

describe('wasmFailureLines', () => {
  it('finds Wasm failures and leaves other lines', () => {
    const log = [
      '2025-01-01T00:00:00.000Z\tinfo\twasm\tfetching image example/hello from registry',
      '2025-01-01T00:00:01.000Z\terror\twasm\tfailed to fetch Wasm module: unauthorized',
      '[2025-01-01 00:00:02.000][33][critical][wasm] [source/extensions/common/wasm/wasm.cc:123] Plugin configured to fail closed failed to load',
      '[2025-01-01 00:00:03.000][33][info][upstream] cluster added',
    ].join('\n');
    expect(wasmFailureLines(log)).toHaveLength(2);
  });
});

describe('parseFetchCounts', () => {
  it('sums the agent counter by result', () => {
    const metrics = [
      '# TYPE istio_agent_wasm_remote_fetch_count counter',
      'istio_agent_wasm_remote_fetch_count{result="success"} 3',
      'istio_agent_wasm_remote_fetch_count{result="download_failure"} 1',
      'istio_agent_wasm_cache_entries 2',
    ].join('\n');
    expect(parseFetchCounts(metrics)).toEqual({ success: 3, download_failure: 1 });
  });
});
