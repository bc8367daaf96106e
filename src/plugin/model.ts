// The plugin model: the two Istio resources this action deploys a Wasm module
// as, both extensions.istio.io/v1alpha1:
// - WasmPlugin, the long-standing API;
// - TrafficExtension, the newer one that istiod of the 1.31 line translates
//   every WasmPlugin into (its Wasm settings live under spec.wasm, and it
//   may carry Lua instead of Wasm).
// This file holds their types and the names of every field, the enums, the
// URL rules both share, and the one privacy rule (pluginConfig values are
// never shown). validate.ts checks a resource against Istio's rules,
// schema.ts holds the shapes read.ts reads wasmplugin.yaml with, render.ts
// the views the pipeline takes of the one object. Pure: no file system, no
// runner.
// References: https://istio.io/latest/docs/reference/config/proxy_extensions/wasm-plugin/
// and the TrafficExtension CRD in Istio's crd-all.gen.yaml.

export const WASMPLUGIN_GROUP = 'extensions.istio.io';
export const WASMPLUGIN_VERSION = 'v1alpha1';
export const WASMPLUGIN_API_VERSION = `${WASMPLUGIN_GROUP}/${WASMPLUGIN_VERSION}`;
export const WASMPLUGIN_RESOURCE = 'wasmplugins';
export const TRAFFIC_EXTENSION_RESOURCE = 'trafficextensions';
export const DEFAULT_NAMESPACE = 'istio-system';
export const DEFAULT_SELECTOR: Readonly<Record<string, string>> = { istio: 'ingressgateway' };

/** The kinds wasmplugin.yaml may name; both live in WASMPLUGIN_API_VERSION. */
export const RESOURCE_KINDS = ['WasmPlugin', 'TrafficExtension'] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];
/** The plural resource name of each kind (the URL path segment). */
export const KIND_RESOURCE: Readonly<Record<ResourceKind, string>> = { WasmPlugin: WASMPLUGIN_RESOURCE, TrafficExtension: TRAFFIC_EXTENSION_RESOURCE };

export const IMAGE_PULL_POLICIES = ['UNSPECIFIED_POLICY', 'IfNotPresent', 'Always'] as const;
/** WasmPlugin's phase (PluginPhase). */
export const PLUGIN_PHASES = ['UNSPECIFIED_PHASE', 'AUTHN', 'AUTHZ', 'STATS'] as const;
/** TrafficExtension's phase (ExecutionPhase): the same values, its unset one spelt UNSPECIFIED. */
export const EXECUTION_PHASES = ['UNSPECIFIED', 'AUTHN', 'AUTHZ', 'STATS'] as const;
export const FAIL_STRATEGIES = ['FAIL_CLOSE', 'FAIL_OPEN', 'FAIL_RELOAD'] as const;
export const PLUGIN_TYPES = ['UNSPECIFIED_PLUGIN_TYPE', 'HTTP', 'NETWORK'] as const;
export const WORKLOAD_MODES = ['UNDEFINED', 'CLIENT', 'SERVER', 'CLIENT_AND_SERVER'] as const;
export const ENV_VALUE_SOURCES = ['INLINE', 'HOST'] as const;

export type ImagePullPolicy = (typeof IMAGE_PULL_POLICIES)[number];
export type PluginPhase = (typeof PLUGIN_PHASES)[number];
export type ExecutionPhase = (typeof EXECUTION_PHASES)[number];
export type FailStrategy = (typeof FAIL_STRATEGIES)[number];
export type PluginType = (typeof PLUGIN_TYPES)[number];
export type WorkloadMode = (typeof WORKLOAD_MODES)[number];
export type EnvValueSource = (typeof ENV_VALUE_SOURCES)[number];

/** Istio's default failStrategy when a resource sets none. */
export const DEFAULT_FAIL_STRATEGY: FailStrategy = 'FAIL_CLOSE';

export interface PolicyTargetReference {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface PortSelector {
  number: number;
}

export interface TrafficSelector {
  mode?: WorkloadMode;
  ports?: PortSelector[];
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: EnvValueSource;
}

/** The Wasm module and how Envoy runs it: TrafficExtension's spec.wasm, and the same fields at the top of WasmPlugin's spec. */
export interface WasmConfig {
  /**
   * `oci://…@sha256:…`, `https://…/plugin.wasm`, `file://…`. Required by the
   * API; absent only in the model the build and test stages use, before there
   * is an image.
   */
  url?: string;
  /**
   * For `oci://`, the image manifest digest (the one in the URL after
   * `@sha256:`); for `http(s)://` and `file://`, the SHA-256 of the .wasm file.
   */
  sha256?: string;
  imagePullPolicy?: ImagePullPolicy;
  imagePullSecret?: string;
  /** Public key to verify the image signature with. */
  verificationKey?: string;
  pluginConfig?: Record<string, unknown>;
  pluginName?: string;
  failStrategy?: FailStrategy;
  vmConfig?: { env?: EnvVar[] };
  type?: PluginType;
}

export interface WasmPluginSpec extends WasmConfig {
  selector?: { matchLabels: Record<string, string> };
  /** Deprecated in Istio in favour of targetRefs, still served. */
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  phase?: PluginPhase;
  priority?: number | null;
  match?: TrafficSelector[];
}

export interface TrafficExtensionSpec {
  selector?: { matchLabels: Record<string, string> };
  targetRefs?: PolicyTargetReference[];
  phase?: ExecutionPhase;
  priority?: number | null;
  match?: TrafficSelector[];
  /** Required here: this action deploys Wasm (the API's alternative, `lua`, is refused). */
  wasm: WasmConfig;
}

export interface ObjectMeta {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  managedFields?: unknown[];
  [key: string]: unknown;
}

export interface WasmPlugin {
  apiVersion: typeof WASMPLUGIN_API_VERSION;
  kind: 'WasmPlugin';
  metadata: ObjectMeta;
  spec: WasmPluginSpec;
  status?: unknown;
}

export interface TrafficExtension {
  apiVersion: typeof WASMPLUGIN_API_VERSION;
  kind: 'TrafficExtension';
  metadata: ObjectMeta;
  spec: TrafficExtensionSpec;
  status?: unknown;
}

/** What the deploy stage applies: either kind. */
export type ExtensionResource = WasmPlugin | TrafficExtension;

/** The fields of WasmConfig, in the order of Istio's API reference. */
export const WASM_CONFIG_FIELDS = [
  'url',
  'sha256',
  'imagePullPolicy',
  'imagePullSecret',
  'verificationKey',
  'pluginConfig',
  'pluginName',
  'failStrategy',
  'vmConfig',
  'type',
] as const satisfies readonly (keyof WasmConfig)[];

/** WasmPlugin's spec fields, in the order of the API reference (objects are built in it). */
export const SPEC_FIELDS = [
  'selector',
  'targetRef',
  'targetRefs',
  'url',
  'sha256',
  'imagePullPolicy',
  'imagePullSecret',
  'verificationKey',
  'pluginConfig',
  'pluginName',
  'phase',
  'priority',
  'failStrategy',
  'vmConfig',
  'match',
  'type',
] as const satisfies readonly (keyof WasmPluginSpec)[];

/** TrafficExtension's spec fields, in the order of its CRD (`lua` is the API's, refused here). */
export const TRAFFIC_EXTENSION_FIELDS = ['selector', 'targetRefs', 'phase', 'priority', 'match', 'wasm', 'lua'] as const;

/** The digest an `oci://…@sha256:<hex>` URL is pinned to, if any. */
export function urlDigest(url: string): string | undefined {
  return /@sha256:([a-fA-F0-9]{64})$/.exec(url.trim())?.[1]?.toLowerCase();
}

/**
 * The scheme of a Wasm url as Istio reads it: the API server's CEL rule and
 * istiod parse the url as a request URI (Go's url.ParseRequestURI), where
 * whatever precedes the first `:` is the scheme if it can be one: `ftp:/x`
 * has the scheme ftp, and so has `registry.example.com:5000/repo` the scheme
 * `registry.example.com` (the corpus shows Istio refusing it). A url without
 * one is oci.
 */
export function urlScheme(url: string): string {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(url.trim());
  return m ? m[1].toLowerCase() : 'oci';
}

/** Says what `sha256` means for this URL, for the job summary. */
export function describeSha256(url: string): string {
  return urlScheme(url) === 'oci'
    ? 'the OCI image manifest digest (the @sha256: part of an oci:// reference), not the SHA-256 of the .wasm file'
    : 'the SHA-256 of the .wasm file the URL serves';
}

export function isObject(value: unknown): value is Record<string, any> {
  return !!value && typeof value === 'object' && !Array.isArray(value);
}

/** A deep copy with every mapping's keys sorted (as protobuf's JSON marshaller writes a Struct). */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isObject(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
    return out;
  }
  return value;
}

/** What a hidden pluginConfig value is shown as. */
export const HIDDEN = '(hidden)';
/** A hidden pluginConfig value that differs from the live one (in a diff's new side). */
export const HIDDEN_CHANGED = '(hidden, changed)';

/**
 * pluginConfig with every value hidden, keys kept: what logs, summaries and
 * --json output show. pluginConfig is where a plugin's shared secrets live
 * (the reference plugin's `value` is one), and a job log or summary is read
 * by everyone with access to the repository.
 */
export function hidePluginConfig(config: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.keys(config).map((k) => [k, HIDDEN]));
}

/** A deep copy of any value with every `pluginConfig` mapping in it hidden (for --json output). */
export function withPluginConfigHidden<T>(value: T): T {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (isObject(v)) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === 'pluginConfig' && isObject(x) ? hidePluginConfig(x) : walk(x)]));
    }
    return v;
  };
  return walk(value) as T;
}

/** The top-level pluginConfig keys whose value differs between two configs (added, removed or changed), sorted. */
export function changedPluginConfigKeys(before: unknown, after: unknown): string[] {
  const a = isObject(before) ? before : {};
  const b = isObject(after) ? after : {};
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => !(k in a && k in b && JSON.stringify(sortKeys(a[k])) === JSON.stringify(sortKeys(b[k])))).sort();
}
