// The plugin's deployment settings: what the WasmPlugin will say, and so what
// the local Envoy test configures. They come from <plugin-dir>/wasmplugin.yaml
// (a WasmPlugin without url/sha256, which the pipeline fills in), and inputs
// override them. Test and deploy read this one source, so what was tested is
// what is deployed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { UserError } from './errors.js';
import { FAIL_STRATEGIES, type FailStrategy, type Inputs } from './inputs.js';

export const MANIFEST_FILE = 'wasmplugin.yaml';

export interface PluginSpec {
  name: string;
  namespace: string;
  /** spec.pluginName: Envoy's root_id. */
  pluginName: string;
  /** spec.pluginConfig, or undefined when none is set. */
  pluginConfig?: Record<string, unknown>;
  failStrategy: FailStrategy;
  /** The rest of spec from the manifest (phase, priority, selector…), kept for deploy. */
  spec: Record<string, unknown>;
  /** Where the manifest came from, for messages. */
  source?: string;
}

const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads `plugin-config`: a path to a YAML/JSON file, or inline YAML/JSON.
 * It must be a mapping, as WasmPlugin.spec.pluginConfig is a Struct.
 */
export function readPluginConfig(value: string, cwd = process.cwd()): Record<string, unknown> {
  const trimmed = value.trim();
  const looksInline = /^[{[]/.test(trimmed) || trimmed.includes('\n') || /^[\w-]+\s*:/.test(trimmed);
  const file = path.resolve(cwd, trimmed);
  let text = trimmed;
  let where = 'inline value';
  if (!looksInline) {
    if (!fs.existsSync(file)) {
      throw new UserError(`input \`plugin-config\`: ${file} does not exist; give a YAML/JSON file or an inline mapping such as '{"header": "allow"}'`);
    }
    text = fs.readFileSync(file, 'utf8');
    where = file;
  }
  let parsed: unknown;
  try {
    parsed = YAML.parse(text);
  } catch (err) {
    throw new UserError(`input \`plugin-config\` (${where}) is not valid YAML or JSON: ${(err as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isObject(parsed)) {
    throw new UserError(`input \`plugin-config\` (${where}) must be a mapping (WasmPlugin.spec.pluginConfig is an object)`);
  }
  return parsed;
}

/** Loads wasmplugin.yaml (if any) and applies the inputs over it. */
export function loadPluginSpec(inputs: Pick<Inputs, 'pluginDir' | 'name' | 'namespace' | 'pluginName' | 'pluginConfig' | 'failStrategy'>): PluginSpec {
  const file = path.join(inputs.pluginDir, MANIFEST_FILE);
  let metadata: Record<string, unknown> = {};
  let spec: Record<string, unknown> = {};
  let source: string | undefined;
  if (fs.existsSync(file)) {
    source = file;
    let doc: unknown;
    try {
      doc = YAML.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new UserError(`${file} is not valid YAML: ${(err as Error).message}`);
    }
    if (!isObject(doc)) throw new UserError(`${file} must be a WasmPlugin manifest (a mapping with metadata and spec)`);
    if (doc.kind !== undefined && doc.kind !== 'WasmPlugin') {
      throw new UserError(`${file} has kind ${String(doc.kind)}; it must describe a WasmPlugin`);
    }
    metadata = isObject(doc.metadata) ? doc.metadata : {};
    spec = isObject(doc.spec) ? { ...doc.spec } : {};
  }

  const name = inputs.name ?? (metadata.name as string | undefined) ?? path.basename(inputs.pluginDir);
  if (!NAME_RE.test(name) || name.length > 253) {
    throw new UserError(`WasmPlugin name "${name}" is not a valid Kubernetes name (lowercase letters, digits, '-' and '.'); set the \`name\` input`);
  }
  const namespace = inputs.namespace ?? (metadata.namespace as string | undefined) ?? 'istio-system';
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace) || namespace.length > 63) {
    throw new UserError(`namespace "${namespace}" is not a valid Kubernetes namespace; set the \`namespace\` input`);
  }

  const pluginName = inputs.pluginName ?? (spec.pluginName as string | undefined);
  if (!pluginName) {
    throw new UserError(
      `no plugin name: set spec.pluginName in ${file} or the \`plugin-name\` input to the root id your plugin registers (Istio passes it to Envoy as root_id)`,
    );
  }

  let pluginConfig: Record<string, unknown> | undefined;
  if (inputs.pluginConfig !== undefined) {
    pluginConfig = readPluginConfig(inputs.pluginConfig);
  } else if (spec.pluginConfig !== undefined) {
    if (!isObject(spec.pluginConfig)) throw new UserError(`${file}: spec.pluginConfig must be a mapping`);
    pluginConfig = spec.pluginConfig;
  }

  const failStrategy = inputs.failStrategy ?? (spec.failStrategy as FailStrategy | undefined) ?? 'FAIL_CLOSE';
  if (!(FAIL_STRATEGIES as readonly string[]).includes(failStrategy)) {
    throw new UserError(`${file}: spec.failStrategy must be one of ${FAIL_STRATEGIES.join(', ')}, got "${failStrategy}"`);
  }

  delete spec.pluginName;
  delete spec.pluginConfig;
  delete spec.failStrategy;
  return { name, namespace, pluginName, pluginConfig, failStrategy, spec, source };
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
