// The one validation of the plugin model: a WasmPlugin or a TrafficExtension
// checked against what Istio accepts (the CRD's schema and CEL rules the API
// server enforces, and istiod's own validation webhook), with errors that
// name the field (`spec.match[0].ports[1].number`). It runs once, on the
// resolved object (resolve.ts), before anything is built or sent.
//
// Where it refuses what Istio would take, it does so on purpose, each for a
// reason given at the check: a label selector that can match no label, an
// image pull secret that can name no Secret, a sha256 that contradicts the
// digest in the url. test/integration/istio-validation.test.ts holds a
// corpus that compares this with the real API server and istiod.
import { UserError } from '../errors.js';
import {
  ENV_VALUE_SOURCES,
  EXECUTION_PHASES,
  FAIL_STRATEGIES,
  IMAGE_PULL_POLICIES,
  PLUGIN_PHASES,
  PLUGIN_TYPES,
  SPEC_FIELDS,
  TRAFFIC_EXTENSION_FIELDS,
  WASM_CONFIG_FIELDS,
  WORKLOAD_MODES,
  isObject,
  urlDigest,
  urlScheme,
  type ExtensionResource,
  type ObjectMeta,
} from './model.js';

export interface Validation {
  errors: string[];
  warnings: string[];
}

export interface ValidateOptions {
  /** Whether the url must be set; default true. The model for build and test has none yet. */
  requireUrl?: boolean;
}

type Err = (field: string, message: string) => void;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const KIND = /^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const SHA256_HEX = /^[a-f0-9]{64}$/;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** What istiod lets targetRefs point at, as `group/kind` (an empty group is core). */
const SUPPORTED_TARGETS = ['gateway.networking.k8s.io/Gateway', 'gateway.networking.k8s.io/GatewayClass', 'core/Service', 'networking.istio.io/ServiceEntry'];

const KNOWN_FIELDS = {
  WasmPlugin: new Set<string>(SPEC_FIELDS),
  TrafficExtension: new Set<string>(TRAFFIC_EXTENSION_FIELDS.filter((f) => f !== 'lua')),
};

/** Checks a WasmPlugin or TrafficExtension against Istio's rules. Pure. */
export function validateResource(resource: ExtensionResource, options: ValidateOptions = {}): Validation {
  const errors: string[] = [];
  const warnings: string[] = [];
  const err: Err = (field, message) => errors.push(`${field}: ${message}`);
  const kind = resource.kind;
  checkMetadata(resource.metadata ?? ({} as ObjectMeta), err);

  const spec = (resource.spec ?? {}) as Record<string, any>;
  for (const key of Object.keys(spec)) {
    if (!KNOWN_FIELDS[kind].has(key)) err(`spec.${key}`, key === 'lua' ? 'this action deploys Wasm; use spec.wasm' : `is not a ${kind} field`);
  }
  checkTargeting(spec, kind === 'WasmPlugin' ? ['selector', 'targetRef', 'targetRefs'] : ['selector', 'targetRefs'], err, warnings);

  if (kind === 'TrafficExtension') {
    if (!isObject(spec.wasm)) err('spec.wasm', 'is required (the Wasm module: url, pluginName, pluginConfig, …)');
    else {
      for (const key of Object.keys(spec.wasm)) {
        if (!(WASM_CONFIG_FIELDS as readonly string[]).includes(key)) err(`spec.wasm.${key}`, 'is not a field of a TrafficExtension\'s wasm');
      }
      checkWasm(spec.wasm, 'spec.wasm', options, err, warnings);
    }
  } else checkWasm(spec, 'spec', options, err, warnings);

  checkEnum('spec.phase', spec.phase, kind === 'WasmPlugin' ? PLUGIN_PHASES : EXECUTION_PHASES, err);
  if (spec.priority !== undefined && spec.priority !== null) {
    const p = spec.priority;
    if (typeof p !== 'number' || !Number.isInteger(p) || p < INT32_MIN || p > INT32_MAX) {
      err('spec.priority', `must be a 32-bit integer (${INT32_MIN} to ${INT32_MAX}), got ${JSON.stringify(p)}`);
    }
  }
  checkMatch(spec.match, err);
  return { errors, warnings };
}

function checkMetadata(meta: ObjectMeta, err: Err): void {
  if (!meta.name) err('metadata.name', 'is required');
  else if (meta.name.length > 253 || !DNS1123_SUBDOMAIN.test(meta.name)) {
    err('metadata.name', `"${meta.name}" is not a valid name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters`);
  }
  if (!meta.namespace) err('metadata.namespace', 'is required');
  else if (meta.namespace.length > 63 || !DNS1123_LABEL.test(meta.namespace)) {
    err('metadata.namespace', `"${meta.namespace}" is not a valid namespace: lower-case letters, digits and '-', at most 63 characters`);
  }
  checkLabels('metadata.labels', meta.labels, err, false);
}

/** selector, targetRef, targetRefs: at most one of them. */
function checkTargeting(spec: Record<string, any>, keys: string[], err: Err, warnings: string[]): void {
  const set = keys.filter((k) => spec[k] !== undefined);
  if (set.length > 1) err(`spec.${set[1]}`, `only one of selector or targetRefs can be set (both spec.${set[0]} and spec.${set[1]} are)`);
  if (spec.selector !== undefined) {
    const labels = isObject(spec.selector) ? (spec.selector.matchLabels ?? {}) : undefined;
    if (!isObject(labels)) err('spec.selector.matchLabels', 'must be a map of label names to values');
    else if (Object.keys(labels).length === 0) {
      // Istio takes it (with a warning) and applies the extension to every
      // workload of the namespace, the whole mesh in the root namespace. It
      // is also the only way to say that here: no selector at all gets the
      // default one.
      warnings.push('spec.selector: has no labels, so it selects every workload in the namespace (every workload of the mesh in its root namespace)');
    } else {
      if (Object.keys(labels).length > 4096) err('spec.selector.matchLabels', 'has more than 4096 labels');
      checkLabels('spec.selector.matchLabels', labels, err, true);
    }
  }
  const refs = spec.targetRefs;
  if (refs !== undefined) {
    if (!Array.isArray(refs)) err('spec.targetRefs', 'must be a list');
    else {
      if (refs.length > 16) err('spec.targetRefs', `has ${refs.length} entries; at most 16 are allowed`);
      refs.forEach((ref, i) => checkTargetRef(`spec.targetRefs[${i}]`, ref, err));
    }
  }
  if (spec.targetRef !== undefined) checkTargetRef('spec.targetRef', spec.targetRef, err);
}

/** The Wasm settings, at `at` (WasmPlugin's spec, TrafficExtension's spec.wasm). */
function checkWasm(w: Record<string, any>, at: string, options: ValidateOptions, err: Err, warnings: string[]): void {
  const url = w.url;
  if (url === undefined && options.requireUrl === false) {
    // Not known yet: the push stage or the `url` input gives it.
  } else if (typeof url !== 'string' || !url.trim()) err(`${at}.url`, 'is required (oci://…, https://… or file://…)');
  else {
    const scheme = urlScheme(url);
    if (!['oci', 'http', 'https', 'file'].includes(scheme)) {
      const hint = url.includes('://') ? '' : `; Istio reads what comes before the first ":" as the scheme, so write oci://${url.trim()}`;
      err(`${at}.url`, `scheme "${scheme}:" is not supported: use oci://, http://, https:// or file://${hint}`);
    }
    const digest = urlDigest(url);
    if (scheme === 'oci' && !digest) {
      warnings.push(
        `${at}.url: ${url} is a tag, not a digest: Istio does not pull a tag again when it moves, only when the resource changes. Pin it with @sha256:<manifest digest>`,
      );
    }
    // Refused on purpose: Istio takes it, and the gateway then fails every fetch with a checksum mismatch.
    if (typeof w.sha256 === 'string' && SHA256_HEX.test(w.sha256) && digest && w.sha256 !== digest) {
      err(
        `${at}.sha256`,
        `${w.sha256} does not match the digest in ${at}.url (${digest}): for an oci:// URL, sha256 is the image manifest digest, not the SHA-256 of the .wasm file`,
      );
    }
  }
  if (w.sha256 !== undefined && (typeof w.sha256 !== 'string' || !SHA256_HEX.test(w.sha256))) {
    const s = typeof w.sha256 === 'string' ? w.sha256 : '';
    const hint = /^[A-Fa-f0-9]{64}$/.test(s) ? ' (use lower-case hex)' : s.startsWith('sha256:') ? ' (without the "sha256:" prefix)' : '';
    err(`${at}.sha256`, `must be 64 hexadecimal digits${hint}, got "${String(w.sha256)}"`);
  }
  checkEnum(`${at}.imagePullPolicy`, w.imagePullPolicy, IMAGE_PULL_POLICIES, err);
  if (w.imagePullSecret !== undefined) {
    // Istio checks only the length; refused on purpose: a Secret's name is a
    // DNS subdomain, so any other name pulls without credentials.
    const s = w.imagePullSecret;
    if (typeof s !== 'string' || s.length < 1 || s.length > 253 || !DNS1123_SUBDOMAIN.test(s)) {
      err(`${at}.imagePullSecret`, `"${String(s)}" is not a valid Secret name (lower-case letters, digits, '-' and '.', at most 253 characters)`);
    }
  }
  if (w.verificationKey !== undefined && typeof w.verificationKey !== 'string') err(`${at}.verificationKey`, 'must be a string (a public key)');
  if (w.pluginConfig !== undefined && !isObject(w.pluginConfig)) err(`${at}.pluginConfig`, 'must be a map (YAML or JSON object), not a list or a scalar');
  if (w.pluginName !== undefined) {
    const n = w.pluginName;
    if (typeof n !== 'string' || n.length < 1 || n.length > 256) err(`${at}.pluginName`, 'must be 1 to 256 characters');
  }
  checkEnum(`${at}.failStrategy`, w.failStrategy, FAIL_STRATEGIES, err);
  if (w.failStrategy === undefined || w.failStrategy === 'FAIL_CLOSE') {
    warnings.push(
      `${at}.failStrategy: ` +
        (w.failStrategy === undefined ? 'not set, so Istio fails closed' : 'FAIL_CLOSE') +
        ': if the gateway cannot fetch or start the plugin, it answers every request it applies to with an error. Verification after the apply is the guard',
    );
  }
  checkEnum(`${at}.type`, w.type, PLUGIN_TYPES, err);
  if (w.vmConfig !== undefined) {
    if (!isObject(w.vmConfig)) err(`${at}.vmConfig`, 'must be a map');
    else if (w.vmConfig.env !== undefined) checkEnv(w.vmConfig.env, `${at}.vmConfig.env`, err);
  }
}

function checkEnv(env: unknown, at: string, err: Err): void {
  if (!Array.isArray(env)) return err(at, 'must be a list');
  if (env.length > 256) err(at, `has ${env.length} entries; at most 256 are allowed`);
  const names = new Set<string>();
  env.forEach((e, i) => {
    const f = `${at}[${i}]`;
    if (!isObject(e)) return err(f, 'must be a map with name and value or valueFrom');
    if (typeof e.name !== 'string' || !e.name) err(`${f}.name`, 'is required');
    else {
      if (e.name.length > 256) err(`${f}.name`, 'is longer than 256 characters');
      if (names.has(e.name)) err(`${f}.name`, `"${e.name}" is set twice`);
      names.add(e.name);
    }
    checkEnum(`${f}.valueFrom`, e.valueFrom, ENV_VALUE_SOURCES, err);
    if (e.value !== undefined) {
      if (typeof e.value !== 'string') err(`${f}.value`, 'must be a string');
      else if (e.value.length > 2048) err(`${f}.value`, 'is longer than 2048 characters');
      if (e.valueFrom === 'HOST') err(`${f}.value`, "may only be set when valueFrom is INLINE (HOST reads the proxy's own variable)");
    }
  });
}

function checkMatch(match: unknown, err: Err): void {
  if (match === undefined) return;
  if (!Array.isArray(match)) return err('spec.match', 'must be a list');
  match.forEach((m, i) => {
    const f = `spec.match[${i}]`;
    if (!isObject(m)) return err(f, 'must be a map with mode and/or ports');
    checkEnum(`${f}.mode`, m.mode, WORKLOAD_MODES, err);
    if (m.ports === undefined) return;
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
  });
}

function checkEnum(field: string, value: unknown, allowed: readonly string[], err: Err): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || !allowed.includes(value)) err(field, `${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
}

/**
 * Label keys and values as Kubernetes defines them. For a selector Istio
 * checks only for wildcards, empty keys and 63 characters; the full syntax is
 * refused on purpose: a workload's labels follow it, so a selector outside it
 * matches no workload at all.
 */
function checkLabels(field: string, labels: Record<string, unknown> | undefined, err: Err, selector: boolean): void {
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

function checkTargetRef(field: string, ref: unknown, err: Err): void {
  if (!isObject(ref)) return err(field, 'must be a map with group, kind and name');
  const group = ref.group ?? '';
  const groupOk = typeof group === 'string' && group.length <= 253 && (group === '' || DNS1123_SUBDOMAIN.test(group));
  if (!groupOk) err(`${field}.group`, `"${String(group)}" is not an API group`);
  if (typeof ref.kind !== 'string' || !ref.kind) err(`${field}.kind`, 'is required');
  else if (ref.kind.length > 63 || !KIND.test(ref.kind)) err(`${field}.kind`, `"${ref.kind}" is not a kind`);
  else if (groupOk && !SUPPORTED_TARGETS.includes(`${group || 'core'}/${ref.kind}`)) {
    err(
      field,
      `${group || 'core'}/${ref.kind} cannot be targeted: Istio takes a Gateway or GatewayClass (group gateway.networking.k8s.io), a Service (group "" or core) or a ServiceEntry (networking.istio.io)`,
    );
  }
  if (typeof ref.name !== 'string' || !ref.name) err(`${field}.name`, 'is required');
  else if (ref.name.length > 253) err(`${field}.name`, 'is longer than 253 characters');
  if (ref.namespace !== undefined) {
    if (typeof ref.namespace !== 'string') err(`${field}.namespace`, 'must be a string');
    else if (ref.namespace !== '') err(`${field}.namespace`, `"${ref.namespace}": Istio does not support targeting another namespace; leave it out (the target is in the resource's own namespace)`);
  }
  for (const key of Object.keys(ref)) {
    if (!['group', 'kind', 'name', 'namespace'].includes(key)) err(`${field}.${key}`, 'is not a targetRef field (group, kind, name, namespace)');
  }
}

/** Throws a UserError listing every problem; returns the warnings. `where` prefixes each message (a file:line, an input). */
export function assertValid(resource: ExtensionResource, options: ValidateOptions & { where?: (error: string) => string } = {}): string[] {
  const { errors, warnings } = validateResource(resource, options);
  if (errors.length) {
    const shown = errors.map((e) => options.where?.(e) ?? e);
    const meta = resource.metadata ?? ({} as ObjectMeta);
    throw new UserError(
      `the ${resource.kind} ${meta.namespace}/${meta.name} is not valid (${errors.length} problem${errors.length > 1 ? 's' : ''}): ${shown[0]}`,
      shown.join('\n'),
    );
  }
  return warnings;
}
