// The Envoy bootstrap for the local test. The Wasm filter is configured the
// way istiod generates it from a WasmPlugin (pilot's WasmPlugin conversion):
//   name           <namespace>.<name>
//   root_id        spec.pluginName
//   configuration  StringValue holding the JSON of spec.pluginConfig
//                  (absent when pluginConfig is empty)
//   vm_config      runtime envoy.wasm.runtime.v8, no vm_id, the
//                  ISTIO_META_WASM_* environment variables
//   failure_policy FAIL_CLOSE -> FAIL_CLOSED, FAIL_OPEN -> FAIL_OPEN,
//                  FAIL_RELOAD -> FAIL_RELOAD
// so that what passes here is what the gateway will run. Only the code
// source differs: a local file instead of the oci:// image the agent fetches.
import type { FailStrategy } from '../inputs.js';

export const WASM_FILTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';
export const WASM_RUNTIME = 'envoy.wasm.runtime.v8';

export const FAILURE_POLICY: Record<FailStrategy, string> = {
  FAIL_CLOSE: 'FAIL_CLOSED',
  FAIL_OPEN: 'FAIL_OPEN',
  FAIL_RELOAD: 'FAIL_RELOAD',
};

export interface WasmFilterOptions {
  name: string;
  namespace: string;
  rootId: string;
  /** The JSON string of pluginConfig, or undefined for none. */
  configuration?: string;
  failStrategy: FailStrategy;
  wasmPath: string;
  /** vmConfig.env entries with valueFrom INLINE. */
  env?: Record<string, string>;
  /** vmConfig.env entries with valueFrom HOST. */
  hostEnvKeys?: string[];
}

/** The cluster every test request is routed to (the httpbin-like upstream). */
export const DEFAULT_UPSTREAM_CLUSTER = 'upstream';

/** A named cluster the plugin can call (dispatch_http_call, gRPC calls). */
export interface ExtraCluster {
  name: string;
  /** An IP address (a STATIC cluster) or a host name (resolved by Envoy: STRICT_DNS). */
  host: string;
  port: number;
  /** Speak HTTP/2 to it (gRPC). */
  http2?: boolean;
}

export interface BootstrapOptions {
  /** 0 lets the kernel pick; the runner reads the bound port from the admin API. */
  listenerPort: number;
  adminPort: number;
  upstreamPort: number;
  filter: WasmFilterOptions;
  /** More clusters, by name, for the plugin's own calls. */
  clusters?: ExtraCluster[];
}

const IP_ADDRESS = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)$/;

/** A cluster of one endpoint, as the bootstrap declares it. */
export function renderCluster(c: ExtraCluster): Record<string, unknown> {
  const isIp = IP_ADDRESS.test(c.host);
  return {
    name: c.name,
    type: isIp ? 'STATIC' : 'STRICT_DNS',
    connect_timeout: '2s',
    ...(isIp ? {} : { dns_lookup_family: 'V4_PREFERRED' }),
    ...(c.http2
      ? {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
        }
      : {}),
    load_assignment: {
      cluster_name: c.name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: c.host, port_value: c.port } } } }] }],
    },
  };
}

/** The typed_config of the HTTP filter, as istiod would send it over ECDS. */
export function renderWasmFilter(f: WasmFilterOptions): Record<string, unknown> {
  const keyValues: Record<string, string> = {
    // istiod always sets the resource version; a local run has none.
    ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION: 'local',
    ...(f.env ?? {}),
  };
  const vmConfig: Record<string, unknown> = {
    runtime: WASM_RUNTIME,
    code: { local: { filename: f.wasmPath } },
    environment_variables: {
      key_values: keyValues,
      ...(f.hostEnvKeys && f.hostEnvKeys.length > 0 ? { host_env_keys: f.hostEnvKeys } : {}),
    },
  };
  const config: Record<string, unknown> = {
    name: `${f.namespace}.${f.name}`,
    root_id: f.rootId,
    vm_config: vmConfig,
    failure_policy: FAILURE_POLICY[f.failStrategy],
  };
  if (f.configuration !== undefined) {
    config.configuration = { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: f.configuration };
  }
  return { '@type': WASM_FILTER_TYPE, config };
}

/**
 * A complete bootstrap: one listener with the plugin in front of the
 * upstream (cluster `upstream`), and the extra clusters the plugin calls.
 */
export function renderEnvoyBootstrap(o: BootstrapOptions): Record<string, unknown> {
  const loopback = (port: number) => ({ socket_address: { address: '127.0.0.1', port_value: port } });
  return {
    node: { id: 'asm-wasm-local-test', cluster: 'asm-wasm' },
    admin: { address: loopback(o.adminPort) },
    static_resources: {
      listeners: [
        {
          name: 'gateway',
          address: loopback(o.listenerPort),
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'gateway',
                    route_config: {
                      name: 'local',
                      virtual_hosts: [{ name: 'upstream', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: DEFAULT_UPSTREAM_CLUSTER, timeout: '10s' } }] }],
                    },
                    http_filters: [
                      { name: `${o.filter.namespace}.${o.filter.name}`, typed_config: renderWasmFilter(o.filter) },
                      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [
        {
          name: DEFAULT_UPSTREAM_CLUSTER,
          type: 'STATIC',
          connect_timeout: '2s',
          load_assignment: { cluster_name: DEFAULT_UPSTREAM_CLUSTER, endpoints: [{ lb_endpoints: [{ endpoint: { address: loopback(o.upstreamPort) } }] }] },
        },
        ...(o.clusters ?? []).map(renderCluster),
      ],
    },
  };
}
