// The plugin model: the Istio WasmPlugin resource (extensions.istio.io/v1alpha1)
// as this action knows it. Its types name every field of the API; the one
// validation checks a WasmPlugin against the fields, enums and limits of
// Istio's API reference, with errors that name the field; and the two views
// the pipeline takes of the one object: the Envoy filter the local test
// configures, and the pluginConfig with its values hidden for anything a
// person reads (pluginConfig often carries a shared secret).
// Reference: https://istio.io/latest/docs/reference/config/proxy_extensions/wasm-plugin/
//
// read.ts reads wasmplugin.yaml into this model strictly; resolve.ts lays the
// inputs and the pushed image over it. Pure: no file system, no runner.
import { UserError } from '../errors.js';

export const WASMPLUGIN_GROUP = 'extensions.istio.io';
export const WASMPLUGIN_VERSION = 'v1alpha1';
export const WASMPLUGIN_API_VERSION = `${WASMPLUGIN_GROUP}/${WASMPLUGIN_VERSION}`;
export const WASMPLUGIN_RESOURCE = 'wasmplugins';
export const DEFAULT_NAMESPACE = 'istio-system';
export const DEFAULT_SELECTOR: Readonly<Record<string, string>> = { istio: 'ingressgateway' };

export const IMAGE_PULL_POLICIES = ['UNSPECIFIED_POLICY', 'IfNotPresent', 'Always'] as const;
export const PLUGIN_PHASES = ['UNSPECIFIED_PHASE', 'AUTHN', 'AUTHZ', 'STATS'] as const;
export const FAIL_STRATEGIES = ['FAIL_CLOSE', 'FAIL_OPEN', 'FAIL_RELOAD'] as const;
export const PLUGIN_TYPES = ['UNSPECIFIED_PLUGIN_TYPE', 'HTTP', 'NETWORK'] as const;
export const WORKLOAD_MODES = ['UNDEFINED', 'CLIENT', 'SERVER', 'CLIENT_AND_SERVER'] as const;
export const ENV_VALUE_SOURCES = ['INLINE', 'HOST'] as const;

export type ImagePullPolicy = (typeof IMAGE_PULL_POLICIES)[number];
export type PluginPhase = (typeof PLUGIN_PHASES)[number];
export type FailStrategy = (typeof FAIL_STRATEGIES)[number];
export type PluginType = (typeof PLUGIN_TYPES)[number];
export type WorkloadMode = (typeof WORKLOAD_MODES)[number];
export type EnvValueSource = (typeof ENV_VALUE_SOURCES)[number];

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

export interface WasmPluginSpec {
  selector?: { matchLabels: Record<string, string> };
  /** Deprecated in Istio in favour of targetRefs, still served. */
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
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
  phase?: PluginPhase;
  priority?: number | null;
  failStrategy?: FailStrategy;
  vmConfig?: { env?: EnvVar[] };
  match?: TrafficSelector[];
  type?: PluginType;
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

export interface Validation {
  errors: string[];
  warnings: string[];
}

export interface ValidateOptions {
  /** Whether spec.url must be set; default true. The model for build and test has none yet. */
  requireUrl?: boolean;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const KIND = /^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const C_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SHA256_HEX = /^[a-f0-9]{64}$/;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** The resources Istio's reference lists for targetRefs, as `group/kind`. */
const SUPPORTED_TARGETS = [
  'gateway.networking.k8s.io/Gateway',
  'gateway.networking.k8s.io/GatewayClass',
  '/Service',
  'core/Service',
  'networking.istio.io/ServiceEntry',
];

/** spec's fields, in the order of the API reference (objects are built in it). */
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

const KNOWN_SPEC_FIELDS = new Set<string>(SPEC_FIELDS);

/** The digest an `oci://…@sha256:<hex>` URL is pinned to, if any. */
export function urlDigest(url: string): string | undefined {
  return /@sha256:([a-fA-F0-9]{64})$/.exec(url.trim())?.[1]?.toLowerCase();
}

/** The scheme of a WasmPlugin url; Istio reads a URL without one as oci. */
export function urlScheme(url: string): string {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(url.trim());
  return m ? m[1].toLowerCase() : 'oci';
}

/** Says what `sha256` means for this URL, for the job summary. */
export function describeSha256(url: string): string {
  return urlScheme(url) === 'oci'
    ? 'the OCI image manifest digest (the @sha256: part of an oci:// reference), not the SHA-256 of the .wasm file'
    : 'the SHA-256 of the .wasm file the URL serves';
}

/**
 * Checks a WasmPlugin against the fields, enums and limits of Istio's API
 * reference. Pure. Errors name the field (`spec.match[0].ports[1].number`).
 */
export function validateWasmPlugin(plugin: WasmPlugin, options: ValidateOptions = {}): Validation {
  const errors: string[] = [];
  const warnings: string[] = [];
  const err = (field: string, message: string) => errors.push(`${field}: ${message}`);
  const meta = plugin.metadata ?? ({} as ObjectMeta);

  if (!meta.name) err('metadata.name', 'is required (the WasmPlugin name)');
  else if (meta.name.length > 253 || !DNS1123_SUBDOMAIN.test(meta.name)) {
    err('metadata.name', `"${meta.name}" is not a valid name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters`);
  }
  if (!meta.namespace) err('metadata.namespace', 'is required');
  else if (meta.namespace.length > 63 || !DNS1123_LABEL.test(meta.namespace)) {
    err('metadata.namespace', `"${meta.namespace}" is not a valid namespace: lower-case letters, digits and '-', at most 63 characters`);
  }
  checkLabels('metadata.labels', meta.labels, err, false);

  const spec = (plugin.spec ?? {}) as WasmPluginSpec & Record<string, unknown>;
  for (const key of Object.keys(spec)) {
    if (!KNOWN_SPEC_FIELDS.has(key)) err(`spec.${key}`, 'is not a WasmPlugin field');
  }

  // selector / targetRefs
  const targeting = ['selector', 'targetRef', 'targetRefs'].filter((k) => spec[k] !== undefined);
  if (targeting.length > 1) {
    err(`spec.${targeting[1]}`, `only one of selector or targetRefs can be set (both spec.${targeting[0]} and spec.${targeting[1]} are)`);
  }
  if (spec.selector !== undefined) {
    if (!isObject(spec.selector) || !isObject(spec.selector.matchLabels)) {
      err('spec.selector.matchLabels', 'must be a map of label names to values');
    } else {
      const labels = spec.selector.matchLabels;
      if (Object.keys(labels).length > 4096) err('spec.selector.matchLabels', 'has more than 4096 labels');
      checkLabels('spec.selector.matchLabels', labels, err, true);
    }
  }
  const refs = spec.targetRefs;
  if (refs !== undefined) {
    if (!Array.isArray(refs)) err('spec.targetRefs', 'must be a list');
    else {
      if (refs.length > 16) err('spec.targetRefs', `has ${refs.length} entries; at most 16 are allowed`);
      refs.forEach((ref, i) => checkTargetRef(`spec.targetRefs[${i}]`, ref, err, warnings));
    }
  }
  if (spec.targetRef !== undefined) checkTargetRef('spec.targetRef', spec.targetRef, err, warnings);

  // url and sha256
  const url = spec.url;
  if (url === undefined && options.requireUrl === false) {
    // Not known yet: the push stage or the `url` input gives it.
  } else if (typeof url !== 'string' || !url.trim()) err('spec.url', 'is required (oci://…, https://… or file://…)');
  else {
    const scheme = urlScheme(url);
    if (!['oci', 'http', 'https', 'file'].includes(scheme)) {
      err('spec.url', `scheme "${scheme}://" is not supported: use oci://, http://, https:// or file://`);
    }
    const digest = urlDigest(url);
    if (scheme === 'oci' && !digest) {
      warnings.push(
        `spec.url: ${url} is a tag, not a digest: Istio does not pull a tag again when it moves, only when the WasmPlugin changes. Pin it with @sha256:<manifest digest>`,
      );
    }
    if (typeof spec.sha256 === 'string' && SHA256_HEX.test(spec.sha256) && digest && spec.sha256 !== digest) {
      err(
        'spec.sha256',
        `${spec.sha256} does not match the digest in spec.url (${digest}): for an oci:// URL, sha256 is the image manifest digest, not the SHA-256 of the .wasm file`,
      );
    }
  }
  if (spec.sha256 !== undefined) {
    if (typeof spec.sha256 !== 'string' || !SHA256_HEX.test(spec.sha256)) {
      const hint = typeof spec.sha256 === 'string' && /^[A-Fa-f0-9]{64}$/.test(spec.sha256) ? ' (use lower-case hex)' : '';
      const hint2 = typeof spec.sha256 === 'string' && spec.sha256.startsWith('sha256:') ? ' (without the "sha256:" prefix)' : '';
      err('spec.sha256', `must be 64 hexadecimal digits${hint}${hint2}, got "${String(spec.sha256)}"`);
    }
  }

  checkEnum('spec.imagePullPolicy', spec.imagePullPolicy, IMAGE_PULL_POLICIES, err);
  if (spec.imagePullSecret !== undefined) {
    const s = spec.imagePullSecret;
    if (typeof s !== 'string' || s.length < 1 || s.length > 253 || !DNS1123_SUBDOMAIN.test(s)) {
      err('spec.imagePullSecret', `"${String(s)}" is not a valid Secret name (lower-case letters, digits, '-' and '.', at most 253 characters)`);
    }
  }
  if (spec.verificationKey !== undefined && (typeof spec.verificationKey !== 'string' || !spec.verificationKey.trim())) {
    err('spec.verificationKey', 'must be a non-empty string (a public key)');
  }
  if (spec.pluginConfig !== undefined && !isObject(spec.pluginConfig)) {
    err('spec.pluginConfig', 'must be a map (YAML or JSON object), not a list or a scalar');
  }
  if (spec.pluginName !== undefined) {
    const n = spec.pluginName;
    if (typeof n !== 'string' || n.length < 1 || n.length > 256) err('spec.pluginName', 'must be 1 to 256 characters');
  }
  checkEnum('spec.phase', spec.phase, PLUGIN_PHASES, err);
  if (spec.priority !== undefined && spec.priority !== null) {
    const p = spec.priority;
    if (typeof p !== 'number' || !Number.isInteger(p) || p < INT32_MIN || p > INT32_MAX) {
      err('spec.priority', `must be a 32-bit integer, got ${JSON.stringify(p)}`);
    }
  }
  checkEnum('spec.failStrategy', spec.failStrategy, FAIL_STRATEGIES, err);
  if (spec.failStrategy === undefined || spec.failStrategy === 'FAIL_CLOSE') {
    warnings.push(
      'spec.failStrategy: ' +
        (spec.failStrategy === undefined ? 'not set, so Istio fails closed' : 'FAIL_CLOSE') +
        ': if the gateway cannot fetch or start the plugin, it answers every request it applies to with an error. Verification after the apply is the guard',
    );
  }
  checkEnum('spec.type', spec.type, PLUGIN_TYPES, err);

  // vmConfig.env
  if (spec.vmConfig !== undefined) {
    if (!isObject(spec.vmConfig)) err('spec.vmConfig', 'must be a map');
    else if (spec.vmConfig.env !== undefined) {
      const env = spec.vmConfig.env;
      if (!Array.isArray(env)) err('spec.vmConfig.env', 'must be a list');
      else {
        if (env.length > 256) err('spec.vmConfig.env', `has ${env.length} entries; at most 256 are allowed`);
        const names = new Set<string>();
        env.forEach((e, i) => {
          const f = `spec.vmConfig.env[${i}]`;
          if (!isObject(e)) return err(f, 'must be a map with name and value or valueFrom');
          if (typeof e.name !== 'string' || !e.name) err(`${f}.name`, 'is required');
          else {
            if (e.name.length > 256) err(`${f}.name`, 'is longer than 256 characters');
            else if (!C_IDENTIFIER.test(e.name)) err(`${f}.name`, `"${e.name}" is not a C identifier (letters, digits, '_', not starting with a digit)`);
            if (names.has(e.name)) err(`${f}.name`, `"${e.name}" is set twice`);
            names.add(e.name);
          }
          checkEnum(`${f}.valueFrom`, e.valueFrom, ENV_VALUE_SOURCES, err);
          if (e.value !== undefined) {
            if (typeof e.value !== 'string') err(`${f}.value`, 'must be a string');
            else if (e.value.length > 2048) err(`${f}.value`, 'is longer than 2048 characters');
            if (e.valueFrom === 'HOST') err(`${f}.value`, 'may only be set when valueFrom is INLINE (HOST reads the proxy\'s own variable)');
          }
        });
      }
    }
  }

  // match
  if (spec.match !== undefined) {
    if (!Array.isArray(spec.match)) err('spec.match', 'must be a list');
    else {
      spec.match.forEach((m, i) => {
        const f = `spec.match[${i}]`;
        if (!isObject(m)) return err(f, 'must be a map with mode and/or ports');
        checkEnum(`${f}.mode`, m.mode, WORKLOAD_MODES, err);
        if (m.ports !== undefined) {
          if (!Array.isArray(m.ports)) return err(`${f}.ports`, 'must be a list of {number: <port>}');
          const seen = new Set<number>();
          m.ports.forEach((p, j) => {
            const n = isObject(p) ? p.number : undefined;
            if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) {
              err(`${f}.ports[${j}].number`, `must be a port number from 1 to 65535, got ${JSON.stringify(n)}`);
            } else {
              if (seen.has(n)) err(`${f}.ports[${j}].number`, `port ${n} is listed twice`);
              seen.add(n);
            }
          });
        }
      });
    }
  }
  return { errors, warnings };
}

function isObject(value: unknown): value is Record<string, any> {
  return !!value && typeof value === 'object' && !Array.isArray(value);
}

function checkEnum(field: string, value: unknown, allowed: readonly string[], err: (f: string, m: string) => void): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || !allowed.includes(value)) {
    err(field, `${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
  }
}

function checkLabels(
  field: string,
  labels: Record<string, unknown> | undefined,
  err: (f: string, m: string) => void,
  selector: boolean,
): void {
  if (labels === undefined) return;
  if (!isObject(labels)) return err(field, 'must be a map of strings');
  for (const [key, value] of Object.entries(labels)) {
    const f = `${field}["${key}"]`;
    if (selector && key.includes('*')) err(f, 'wildcards are not allowed in label keys');
    const slash = key.lastIndexOf('/');
    const prefix = slash >= 0 ? key.slice(0, slash) : '';
    const name = slash >= 0 ? key.slice(slash + 1) : key;
    if (!name) err(f, 'label key must not be empty');
    else if (name.length > 63 || !LABEL_NAME.test(name)) err(f, `"${key}" is not a valid label key`);
    else if (slash >= 0 && (!prefix || prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) err(f, `the prefix of "${key}" is not a DNS subdomain`);
    if (typeof value !== 'string') err(f, `value must be a string, got ${JSON.stringify(value)} (quote it in YAML)`);
    else {
      if (selector && value.includes('*')) err(f, 'wildcards are not allowed in label values');
      if (value.length > 63 || (value !== '' && !LABEL_NAME.test(value))) {
        err(f, `"${value}" is not a valid label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)`);
      }
    }
  }
}

function checkTargetRef(field: string, ref: unknown, err: (f: string, m: string) => void, warnings: string[]): void {
  if (!isObject(ref)) return err(field, 'must be a map with group, kind and name');
  const group = ref.group ?? '';
  if (typeof group !== 'string' || group.length > 253 || (group !== '' && !DNS1123_SUBDOMAIN.test(group))) {
    err(`${field}.group`, `"${String(group)}" is not an API group`);
  }
  if (typeof ref.kind !== 'string' || !ref.kind) err(`${field}.kind`, 'is required');
  else if (ref.kind.length > 63 || !KIND.test(ref.kind)) err(`${field}.kind`, `"${ref.kind}" is not a kind`);
  if (typeof ref.name !== 'string' || !ref.name) err(`${field}.name`, 'is required');
  else if (ref.name.length > 253) err(`${field}.name`, 'is longer than 253 characters');
  if (ref.namespace !== undefined && typeof ref.namespace !== 'string') err(`${field}.namespace`, 'must be a string');
  for (const key of Object.keys(ref)) {
    if (!['group', 'kind', 'name', 'namespace'].includes(key)) err(`${field}.${key}`, 'is not a targetRef field (group, kind, name, namespace)');
  }
  if (typeof ref.kind === 'string' && !SUPPORTED_TARGETS.includes(`${group}/${ref.kind}`)) {
    warnings.push(
      `${field}: ${group || 'core'}/${ref.kind} is not one of the targets Istio documents for WasmPlugin (Gateway and GatewayClass in gateway.networking.k8s.io, Service, ServiceEntry in networking.istio.io)`,
    );
  }
}


/** Throws a UserError listing every problem; returns the warnings. `where` prefixes each message (a file:line, an input). */
export function assertValid(plugin: WasmPlugin, options: ValidateOptions & { where?: (error: string) => string } = {}): string[] {
  const { errors, warnings } = validateWasmPlugin(plugin, options);
  if (errors.length) {
    const shown = errors.map((e) => options.where?.(e) ?? e);
    const meta = plugin.metadata ?? ({} as ObjectMeta);
    throw new UserError(
      `the WasmPlugin ${meta.namespace}/${meta.name} is not valid (${errors.length} problem${errors.length > 1 ? 's' : ''}): ${shown[0]}`,
      shown.join('\n'),
    );
  }
  return warnings;
}

/** Istio's failStrategy when the WasmPlugin sets none. */
export const DEFAULT_FAIL_STRATEGY: FailStrategy = 'FAIL_CLOSE';

/** What the local Envoy test configures the filter with, as istiod would from this WasmPlugin. */
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
 * The Envoy filter istiod makes of a WasmPlugin: name and namespace, root_id
 * from pluginName, configuration from pluginConfig, failStrategy (Istio's
 * default when unset) and vmConfig.env split into INLINE values and HOST keys.
 * The local test runs exactly this, so what is tested is what is deployed.
 */
export function filterSettings(plugin: WasmPlugin): FilterSettings {
  const spec = plugin.spec;
  const out: FilterSettings = {
    name: plugin.metadata.name,
    namespace: plugin.metadata.namespace,
    rootId: spec.pluginName ?? '',
    configuration: pluginConfigJson(spec.pluginConfig),
    failStrategy: spec.failStrategy ?? DEFAULT_FAIL_STRATEGY,
  };
  if (spec.vmConfig?.env?.length) {
    const env: Record<string, string> = {};
    const hostEnvKeys: string[] = [];
    for (const e of spec.vmConfig.env) {
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

function sortKeys(value: unknown): unknown {
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
