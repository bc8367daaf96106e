import { describe, expect, it } from 'vitest';
import { DEFAULT_UPSTREAM_CLUSTER, FAILURE_POLICY, renderEnvoyBootstrap, renderWasmFilter, type WasmFilterOptions } from '../../src/envoy/bootstrap.js';
import { envoySaid, explainStartFailure, findTraps, quoteTrap } from '../../src/envoy/process.js';
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

describe('renderEnvoyBootstrap with the upstreams of a test file', () => {
  const clusters = [
    { name: 'authz', host: '127.0.0.1', port: 9001 },
    { name: 'ratings', host: '127.0.0.1', port: 9002, http2: true },
    { name: 'billing', host: 'billing.internal', port: 8080 },
  ];

  it('matches the golden bootstrap', () => {
    const bootstrap = renderEnvoyBootstrap({ listenerPort: 0, adminPort: 0, upstreamPort: 8000, filter, clusters });
    expectGolden('envoy-bootstrap-upstreams.json', `${JSON.stringify(bootstrap, null, 2)}\n`);
  });

  it('keeps the default cluster, routes test requests to it, and adds one cluster per upstream', () => {
    const b = renderEnvoyBootstrap({ listenerPort: 0, adminPort: 0, upstreamPort: 8000, filter, clusters }) as any;
    const all = b.static_resources.clusters as Array<Record<string, any>>;
    expect(all.map((c) => c.name)).toEqual([DEFAULT_UPSTREAM_CLUSTER, 'authz', 'ratings', 'billing']);
    expect(DEFAULT_UPSTREAM_CLUSTER).toBe('upstream');
    expect(JSON.stringify(b.static_resources.listeners)).toContain('"cluster":"upstream"');
    expect(all[1]).toMatchObject({ type: 'STATIC', load_assignment: { cluster_name: 'authz' } });
    expect(all[1].typed_extension_protocol_options).toBeUndefined();
    // gRPC needs HTTP/2 to the upstream.
    expect(all[2].typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config).toEqual({ http2_protocol_options: {} });
    // A host name is resolved by Envoy; a STATIC cluster takes IP addresses only.
    expect(all[3].type).toBe('STRICT_DNS');
  });
});

// Envoy 1.40.0's own log lines, captured by running it on broken modules
// built with AssemblyScript 0.14.13 and @solo-io/proxy-runtime 0.1.8.
const MISSING_IMPORT = [
  '[2026-12-01 21:49:30.529][26482][error][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] Failed to load Wasm module due to a missing import: env.not_provided_by_envoy',
  '[2026-12-01 21:49:30.529][26482][error][wasm] [source/extensions/common/wasm/wasm.cc:104] Wasm VM failed Failed to initialize Wasm code',
  '[2026-12-01 21:49:30.548][26482][critical][wasm] [source/extensions/common/wasm/wasm.cc:626] Plugin istio-system.header-authorization failed to load',
  '[2026-12-01 21:49:30.548][26482][critical][wasm] [source/extensions/common/wasm/wasm.cc:479] Plugin configured to fail closed failed to load',
].join('\n');

const CONFIGURE_TRAP = [
  '[2026-12-01 21:49:32.823][26512][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log header-authorization: x: onStart',
  '[2026-12-01 21:49:32.833][26512][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log header-authorization: x: onConfigure',
  '[2026-12-01 21:49:32.834][26512][error][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] Function: proxy_on_configure failed: Uncaught RuntimeError: unreachable',
  'Proxy-Wasm plugin in-VM backtrace:',
  '  0:  0x4bc9 - configure-trap/index/Root#onConfigure',
  '  1:  0x4c16 - ~lib/@solo-io/proxy-runtime/runtime/RootContext#onConfigure@virtual',
  '  2:  0x353a - ~lib/@solo-io/proxy-runtime/exports/proxy_on_configure',
  '[2026-12-01 21:49:32.834][26512][error][wasm] [source/extensions/common/wasm/wasm.cc:104] Wasm VM failed Failed to configure base Wasm plugin',
  '[2026-12-01 21:49:32.839][26512][critical][wasm] [source/extensions/common/wasm/wasm.cc:626] Plugin istio-system.header-authorization failed to load',
  '[2026-12-01 21:49:32.839][26512][critical][wasm] [source/extensions/common/wasm/wasm.cc:479] Plugin configured to fail closed failed to load',
].join('\n');

const CONFIGURE_FALSE = [
  '[2026-12-01 21:49:34.785][26546][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log header-authorization: x: onStart',
  '[2026-12-01 21:49:34.785][26546][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log header-authorization: x: onConfigure',
  '[2026-12-01 21:49:34.785][26546][error][wasm] [source/extensions/common/wasm/wasm.cc:104] Wasm VM failed Failed to configure base Wasm plugin',
  '[2026-12-01 21:49:34.787][26546][critical][wasm] [source/extensions/common/wasm/wasm.cc:626] Plugin istio-system.header-authorization failed to load',
  '[2026-12-01 21:49:34.787][26546][critical][wasm] [source/extensions/common/wasm/wasm.cc:479] Plugin configured to fail closed failed to load',
].join('\n');

const START_FALSE = [
  '[2026-12-01 21:49:36.916][26576][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log header-authorization: x: onStart',
  '[2026-12-01 21:49:36.916][26576][error][wasm] [source/extensions/common/wasm/wasm.cc:104] Wasm VM failed Failed to start base Wasm',
  '[2026-12-01 21:49:36.918][26576][critical][wasm] [source/extensions/common/wasm/wasm.cc:626] Plugin istio-system.header-authorization failed to load',
  '[2026-12-01 21:49:36.918][26576][critical][wasm] [source/extensions/common/wasm/wasm.cc:479] Plugin configured to fail closed failed to load',
].join('\n');

const START_TRAP = [
  '[2026-12-01 21:49:39.280][26606][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log header-authorization: x: onStart',
  '[2026-12-01 21:49:39.280][26606][error][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] Function: proxy_on_vm_start failed: Uncaught RuntimeError: unreachable',
  '[2026-12-01 21:49:39.280][26606][error][wasm] [source/extensions/common/wasm/wasm.cc:104] Wasm VM failed Failed to start base Wasm',
  '[2026-12-01 21:49:39.282][26606][critical][wasm] [source/extensions/common/wasm/wasm.cc:626] Plugin istio-system.header-authorization failed to load',
  '[2026-12-01 21:49:39.282][26606][critical][wasm] [source/extensions/common/wasm/wasm.cc:479] Plugin configured to fail closed failed to load',
].join('\n');

const CONFIGURE_ABORT = [
  '[2026-12-01 21:49:41.108][26654][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log header-authorization: x: onStart',
  '[2026-12-01 21:49:41.108][26654][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log header-authorization: x: onConfigure',
  '[2026-12-01 21:49:41.108][26654][critical][wasm] [source/extensions/common/wasm/context.cc:1160] wasm log header-authorization: bad config here at: configure-abort/index.ts(20:36)',
  '[2026-12-01 21:49:41.108][26654][error][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] Function: proxy_on_configure failed: Uncaught RuntimeError: unreachable',
  '[2026-12-01 21:49:41.108][26654][error][wasm] [source/extensions/common/wasm/wasm.cc:104] Wasm VM failed Failed to configure base Wasm plugin',
  '[2026-12-01 21:49:41.116][26654][critical][wasm] [source/extensions/common/wasm/wasm.cc:626] Plugin istio-system.header-authorization failed to load',
  '[2026-12-01 21:49:41.116][26654][critical][wasm] [source/extensions/common/wasm/wasm.cc:479] Plugin configured to fail closed failed to load',
].join('\n');

const REFERENCE_REJECT = [
  '[2026-12-01 21:49:43.410][26705][error][wasm] [source/extensions/common/wasm/context.cc:1157] wasm log header-authorization: wasm-as: rejected configuration: pluginConfig.denyStatus must be an integer HTTP status from 200 to 599',
  '[2026-12-01 21:49:43.410][26705][error][wasm] [source/extensions/common/wasm/wasm.cc:104] Wasm VM failed Failed to configure base Wasm plugin',
  '[2026-12-01 21:49:43.419][26705][critical][wasm] [source/extensions/common/wasm/wasm.cc:626] Plugin istio-system.header-authorization failed to load',
  '[2026-12-01 21:49:43.419][26705][critical][wasm] [source/extensions/common/wasm/wasm.cc:479] Plugin configured to fail closed failed to load',
].join('\n');

describe('explainStartFailure quotes Envoy', () => {
  it('a missing import: names it and quotes Envoy', () => {
    expect(explainStartFailure(MISSING_IMPORT)).toBe(
      'the module imports env.not_provided_by_envoy, which this Envoy does not provide (a host function of another proxy or SDK, or a missing --use flag); ' +
        'Envoy: "Failed to load Wasm module due to a missing import: env.not_provided_by_envoy"',
    );
  });

  it('a trap in proxy_on_configure: the function, Envoy\'s line and the backtrace', () => {
    expect(explainStartFailure(CONFIGURE_TRAP)).toBe(
      'the plugin trapped in proxy_on_configure while applying its configuration (plugin-config / spec.pluginConfig); its last log line: x: onConfigure; ' +
        'Envoy: "Function: proxy_on_configure failed: Uncaught RuntimeError: unreachable", backtrace: 0:  0x4bc9 - configure-trap/index/Root#onConfigure < ' +
        '1:  0x4c16 - ~lib/@solo-io/proxy-runtime/runtime/RootContext#onConfigure@virtual < 2:  0x353a - ~lib/@solo-io/proxy-runtime/exports/proxy_on_configure',
    );
  });

  it('an abort in proxy_on_configure: the plugin\'s own message and Envoy\'s line', () => {
    expect(explainStartFailure(CONFIGURE_ABORT)).toBe(
      'the plugin trapped in proxy_on_configure while applying its configuration (plugin-config / spec.pluginConfig); its last log line: bad config here at: configure-abort/index.ts(20:36); ' +
        'Envoy: "Function: proxy_on_configure failed: Uncaught RuntimeError: unreachable"',
    );
  });

  it('proxy_on_configure returned false', () => {
    expect(explainStartFailure(CONFIGURE_FALSE)).toBe(
      'the plugin rejected its configuration (plugin-config / spec.pluginConfig): x: onConfigure (proxy_on_configure returned false; Envoy: "Wasm VM failed Failed to configure base Wasm plugin")',
    );
    expect(explainStartFailure(REFERENCE_REJECT)).toMatch(
      /^the plugin rejected its configuration \(plugin-config \/ spec\.pluginConfig\): wasm-as: rejected configuration: pluginConfig\.denyStatus must be an integer HTTP status from 200 to 599 \(proxy_on_configure returned false; Envoy: "Wasm VM failed Failed to configure base Wasm plugin"\)$/,
    );
  });

  it('a trap in proxy_on_vm_start', () => {
    expect(explainStartFailure(START_TRAP)).toBe(
      'the plugin trapped in proxy_on_vm_start while its VM started; its last log line: x: onStart; Envoy: "Function: proxy_on_vm_start failed: Uncaught RuntimeError: unreachable"',
    );
  });

  it('proxy_on_vm_start returned false', () => {
    expect(explainStartFailure(START_FALSE)).toBe('the plugin failed to start in Envoy: x: onStart (proxy_on_vm_start returned false; Envoy: "Wasm VM failed Failed to start base Wasm")');
  });

  it('a root id the plugin does not register: the first trap is quoted', () => {
    const log = [
      '[2026-12-01 21:46:05.078][23218][critical][wasm] [source/extensions/common/wasm/context.cc:1160] wasm log nope: Missing root context factory for root id: nope at: ~lib/@solo-io/proxy-runtime/runtime.ts(991:5)',
      '[2026-12-01 21:46:05.078][23218][error][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] Function: proxy_on_context_create failed: Uncaught RuntimeError: unreachable',
      '[2026-12-01 21:46:05.078][23218][critical][wasm] [source/extensions/common/wasm/context.cc:1160] wasm log nope: Key does not exist at: ~lib/map.ts(104:17)',
      '[2026-12-01 21:46:05.078][23218][error][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] Function: proxy_on_vm_start failed: Uncaught RuntimeError: unreachable',
      '[2026-12-01 21:46:05.078][23218][error][wasm] [source/extensions/common/wasm/wasm.cc:104] Wasm VM failed Failed to start base Wasm',
    ].join('\n');
    expect(explainStartFailure(log)).toBe(
      'the plugin does not register root id "nope" (it said: Missing root context factory for root id: nope at: ~lib/@solo-io/proxy-runtime/runtime.ts(991:5)); ' +
        'set plugin-name (spec.pluginName) to the name the plugin registers; ' +
        'it trapped in proxy_on_context_create: Envoy: "Function: proxy_on_context_create failed: Uncaught RuntimeError: unreachable"',
    );
  });

  it('something else: Envoy\'s last critical line', () => {
    expect(explainStartFailure('[2026-12-01 21:00:00.000][1][critical][main] [source/server/server.cc:449] error initializing configuration: bad\n')).toBe(
      'Envoy failed to start: error initializing configuration: bad',
    );
    expect(explainStartFailure('')).toBe('Envoy exited before it was ready');
  });
});

describe('findTraps', () => {
  it('finds each trap with its function, Envoy\'s words and the backtrace under it', () => {
    const traps = findTraps(CONFIGURE_TRAP);
    expect(traps).toHaveLength(1);
    expect(traps[0]).toMatchObject({ fn: 'proxy_on_configure', line: 'Function: proxy_on_configure failed: Uncaught RuntimeError: unreachable' });
    expect(traps[0].backtrace).toHaveLength(3);
    expect(CONFIGURE_TRAP.slice(traps[0].end)).toMatch(/^\n\[.*Wasm VM failed/);
  });

  it('shortens a long backtrace', () => {
    const frames = Array.from({ length: 9 }, (_, i) => `  ${i}:  0x${i}0 - f${i}`);
    const [t] = findTraps(['[t][1][error][wasm] [x.cc:1] Function: proxy_on_tick failed: Uncaught RuntimeError: unreachable', 'Proxy-Wasm plugin in-VM backtrace:', ...frames].join('\n'));
    expect(quoteTrap(t)).toBe('Envoy: "Function: proxy_on_tick failed: Uncaught RuntimeError: unreachable", backtrace: 0:  0x00 - f0 < 1:  0x10 - f1 < 2:  0x20 - f2 < 3:  0x30 - f3 < 4:  0x40 - f4 < 5:  0x50 - f5 < … (3 more)');
  });

  it('envoySaid drops the time, thread, level, logger and source', () => {
    expect(envoySaid('[2026-12-01 21:49:30.529][26482][error][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] Failed to load')).toBe('Failed to load');
  });
});
