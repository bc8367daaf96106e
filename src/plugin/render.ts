// The views the pipeline takes of the one resolved resource: the Envoy
// filter the local test configures (as istiod would make it), the Wasm
// settings of either kind, and the same settings under WasmPlugin's field
// names for the code that reads a deployed extension's signals. Pure.
import {
  DEFAULT_FAIL_STRATEGY,
  WASM_CONFIG_FIELDS,
  sortKeys,
  type ExtensionResource,
  type FailStrategy,
  type PluginPhase,
  type WasmConfig,
  type WasmPlugin,
  type WasmPluginSpec,
} from './model.js';

/** The Wasm settings of either kind: WasmPlugin's spec, or TrafficExtension's spec.wasm. */
export function wasmOf(resource: ExtensionResource): WasmConfig {
  return resource.kind === 'TrafficExtension' ? (resource.spec?.wasm ?? {}) : (resource.spec ?? {});
}

/**
 * A TrafficExtension's settings under WasmPlugin's field names (istiod's
 * translation, run backwards): for the code that reads what a gateway runs
 * for a deployed extension (config dump, agent metrics, pods), which
 * compares the same settings for both kinds. Never applied. A WasmPlugin is
 * returned as it is.
 */
export function wasmPluginView(resource: ExtensionResource): WasmPlugin {
  if (resource.kind !== 'TrafficExtension') return resource;
  const { wasm, phase, ...rest } = resource.spec;
  const spec: WasmPluginSpec = { ...rest, ...pick(wasm) };
  if (phase !== undefined) spec.phase = (phase === 'UNSPECIFIED' ? 'UNSPECIFIED_PHASE' : phase) as PluginPhase;
  return { apiVersion: resource.apiVersion, kind: 'WasmPlugin', metadata: resource.metadata, spec };
}

function pick(wasm: WasmConfig | undefined): WasmConfig {
  const out: Record<string, unknown> = {};
  for (const key of WASM_CONFIG_FIELDS) if (wasm?.[key] !== undefined) out[key] = wasm[key];
  return out as WasmConfig;
}

/** What the local Envoy test configures the filter with, as istiod would from the resource. */
export interface FilterSettings {
  name: string;
  namespace: string;
  rootId: string;
  /** The JSON string of pluginConfig, or undefined for none. */
  configuration?: string;
  failStrategy: FailStrategy;
  /** vmConfig.env entries with valueFrom INLINE (the default). */
  env?: Record<string, string>;
  /** vmConfig.env entries with valueFrom HOST. */
  hostEnvKeys?: string[];
}

/**
 * The Envoy filter istiod makes of a WasmPlugin or a TrafficExtension (both
 * go through the same code in istiod: a WasmPlugin is first translated into
 * a TrafficExtension): name and namespace, root_id from pluginName,
 * configuration from pluginConfig, failStrategy (Istio's default when unset)
 * and vmConfig.env split into INLINE values and HOST keys. The local test
 * runs exactly this, so what is tested is what is deployed.
 */
export function filterSettings(resource: ExtensionResource): FilterSettings {
  const wasm = wasmOf(resource);
  const out: FilterSettings = {
    name: resource.metadata.name,
    namespace: resource.metadata.namespace,
    rootId: wasm.pluginName ?? '',
    configuration: pluginConfigJson(wasm.pluginConfig),
    failStrategy: wasm.failStrategy ?? DEFAULT_FAIL_STRATEGY,
  };
  if (wasm.vmConfig?.env?.length) {
    const env: Record<string, string> = {};
    const hostEnvKeys: string[] = [];
    for (const e of wasm.vmConfig.env) {
      if (e.valueFrom === 'HOST') hostEnvKeys.push(e.name);
      else env[e.name] = e.value ?? '';
    }
    out.env = env;
    out.hostEnvKeys = hostEnvKeys;
  }
  return out;
}

/**
 * The JSON Istio puts in the filter's `configuration`: istiod marshals the
 * pluginConfig Struct with protobuf's JSON marshaller, which writes map keys
 * in sorted order and no white space. An empty or absent pluginConfig gives
 * no configuration at all.
 */
export function pluginConfigJson(config: Record<string, unknown> | undefined): string | undefined {
  if (!config || Object.keys(config).length === 0) return undefined;
  return JSON.stringify(sortKeys(config));
}
