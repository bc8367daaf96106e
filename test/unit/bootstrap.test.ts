import { describe, expect, it } from 'vitest';
import { FAILURE_POLICY, renderEnvoyBootstrap, renderWasmFilter, type WasmFilterOptions } from '../../src/envoy/bootstrap.js';
import { expectGolden } from '../helpers/golden.js';

const filter: WasmFilterOptions = {
  name: 'header-authorization',
  namespace: 'istio-system',
  rootId: 'header-authorization',
  configuration: '{"header":"allow","value":"true"}',
  failStrategy: 'FAIL_CLOSE',
  wasmPath: '/tmp/plugin.wasm',
};

describe('renderWasmFilter (as istiod builds it from a WasmPlugin)', () => {
  it('names the filter <namespace>.<name>, uses pluginName as root_id and V8', () => {
    const cfg = (renderWasmFilter(filter) as { config: Record<string, any> }).config;
    expect(cfg.name).toBe('istio-system.header-authorization');
    expect(cfg.root_id).toBe('header-authorization');
    expect(cfg.vm_config.runtime).toBe('envoy.wasm.runtime.v8');
    expect(cfg.vm_config.vm_id).toBeUndefined();
    expect(cfg.configuration).toEqual({ '@type': 'type.googleapis.com/google.protobuf.StringValue', value: '{"header":"allow","value":"true"}' });
  });

  it('omits configuration when pluginConfig is empty', () => {
    const cfg = (renderWasmFilter({ ...filter, configuration: undefined }) as { config: Record<string, unknown> }).config;
    expect(cfg).not.toHaveProperty('configuration');
  });

  it.each([
    ['FAIL_CLOSE', 'FAIL_CLOSED'],
    ['FAIL_OPEN', 'FAIL_OPEN'],
    ['FAIL_RELOAD', 'FAIL_RELOAD'],
  ] as const)('maps failStrategy %s to failure_policy %s', (strategy, policy) => {
    expect(FAILURE_POLICY[strategy]).toBe(policy);
    const cfg = (renderWasmFilter({ ...filter, failStrategy: strategy }) as { config: Record<string, unknown> }).config;
    expect(cfg.failure_policy).toBe(policy);
  });

  it('passes vmConfig.env: INLINE values as key_values, HOST names as host_env_keys', () => {
    const cfg = (renderWasmFilter({ ...filter, env: { MODE: 'strict' }, hostEnvKeys: ['POD_NAME'] }) as { config: Record<string, any> }).config;
    expect(cfg.vm_config.environment_variables.key_values.MODE).toBe('strict');
    expect(cfg.vm_config.environment_variables.host_env_keys).toEqual(['POD_NAME']);
  });
});

describe('renderEnvoyBootstrap', () => {
  it('matches the golden bootstrap', () => {
    const bootstrap = renderEnvoyBootstrap({ listenerPort: 0, adminPort: 0, upstreamPort: 8000, filter });
    expectGolden('envoy-bootstrap.json', `${JSON.stringify(bootstrap, null, 2)}\n`);
  });

  it('puts the plugin before the router, on loopback only', () => {
    const text = JSON.stringify(renderEnvoyBootstrap({ listenerPort: 0, adminPort: 0, upstreamPort: 8000, filter }));
    expect(text.indexOf('istio-system.header-authorization')).toBeLessThan(text.indexOf('envoy.filters.http.router'));
    const addresses = [...text.matchAll(/"address":"([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(addresses)).toEqual(new Set(['127.0.0.1']));
  });
});
