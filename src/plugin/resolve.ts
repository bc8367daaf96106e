// The one place where the inputs meet wasmplugin.yaml: each input replaces
// the field it names, the pushed image gives url and sha256, and the result
// is checked once, by validateResource, on the very object that the test
// stage configures Envoy from and the deploy stage applies. The file's kind
// (WasmPlugin or TrafficExtension) decides where the fields go: the inputs
// name the same settings for both, and a TrafficExtension keeps its Wasm
// settings under spec.wasm. Nothing else is
// added, with one documented exception: a plugin that names neither a
// selector nor targetRef(s) gets the selector `istio: ingressgateway`, and
// the notes say so.
import * as path from 'node:path';
import type { Inputs } from '../inputs.js';
import { UserError } from '../errors.js';
import {
  DEFAULT_NAMESPACE,
  DEFAULT_SELECTOR,
  SPEC_FIELDS,
  TRAFFIC_EXTENSION_FIELDS,
  WASMPLUGIN_API_VERSION,
  WASM_CONFIG_FIELDS,
  isObject,
  urlDigest,
  urlScheme,
  type ExtensionResource,
  type ObjectMeta,
  type WasmConfig,
  type WasmPluginSpec,
} from './model.js';
import { MANIFEST_FILE, readPluginConfig, type PluginFile } from './read.js';
import { wasmOf } from './render.js';
import { assertValid } from './validate.js';

/** Fields the inputs can set; each replaces the file's value when given. */
export interface PluginOverrides {
  name?: string;
  namespace?: string;
  pluginName?: string;
  pluginConfig?: Record<string, unknown>;
  failStrategy?: string;
  /** Replaces the file's selector, targetRef and targetRefs. */
  selector?: Record<string, string>;
  /** Replaces the file's selector, targetRef and targetRefs. */
  targetRefs?: unknown;
  phase?: string;
  priority?: number;
  match?: unknown;
  imagePullPolicy?: string;
  imagePullSecret?: string;
  url?: string;
  sha256?: string;
}

/** The image the push stage pushed. */
export interface PushedImage {
  /** `oci://host/repo@sha256:…` */
  url: string;
  /** `sha256:…`, the manifest digest. */
  digest?: string;
}

export interface ResolveOptions {
  /** The folder name, the WasmPlugin's name when neither the file nor `name` gives one. */
  pluginDir: string;
  pushed?: PushedImage;
  /** Whether spec.url must be known (deploy); build and test run before there is an image. */
  requireUrl?: boolean;
}

/** Where a field's value came from, for messages and the summary. */
export type Origin = 'file' | 'push' | 'default' | `input \`${string}\``;

export interface ResolvedPlugin {
  /** The WasmPlugin or TrafficExtension: tested (filterSettings) and applied as it is. */
  object: ExtensionResource;
  /** Its Wasm settings (WasmPlugin's spec, TrafficExtension's spec.wasm): url, pluginName, pluginConfig, … */
  wasm: WasmConfig;
  warnings: string[];
  /** Values that came from neither the file nor an input (defaults), in words. */
  notes: string[];
  /** The origin of each field set: `metadata.name`, `spec.selector`, `spec.wasm.url` (TrafficExtension), … */
  origins: Record<string, Origin>;
}

/** The overrides the action's inputs give; reads the `plugin-config` file if it names one. */
export function overridesFromInputs(
  inputs: Partial<
    Pick<
      Inputs,
      | 'name'
      | 'namespace'
      | 'pluginName'
      | 'pluginConfig'
      | 'failStrategy'
      | 'selector'
      | 'targetRefs'
      | 'phase'
      | 'priority'
      | 'match'
      | 'imagePullPolicy'
      | 'imagePullSecret'
      | 'url'
      | 'sha256'
    >
  >,
  cwd = process.cwd(),
): PluginOverrides {
  const { pluginConfig, ...rest } = inputs;
  return { ...rest, pluginConfig: pluginConfig === undefined ? undefined : readPluginConfig(pluginConfig, cwd) };
}

const INPUT_OF: Record<string, string> = {
  'metadata.name': 'name',
  'metadata.namespace': 'namespace',
  'spec.pluginName': 'plugin-name',
  'spec.pluginConfig': 'plugin-config',
  'spec.failStrategy': 'fail-strategy',
  'spec.selector': 'selector',
  'spec.targetRefs': 'target-refs',
  'spec.phase': 'phase',
  'spec.priority': 'priority',
  'spec.match': 'match',
  'spec.imagePullPolicy': 'image-pull-policy',
  'spec.imagePullSecret': 'image-pull-secret',
  'spec.url': 'url',
  'spec.sha256': 'sha256',
};

/** The Wasm settings, which a TrafficExtension keeps under spec.wasm. */
const WASM_FIELDS = new Set<string>(WASM_CONFIG_FIELDS);

const given = (v: unknown) => v !== undefined && v !== null && v !== '';

/**
 * wasmplugin.yaml + inputs (+ the pushed image) → the WasmPlugin or
 * TrafficExtension. Pure: the file was read by read.ts, the inputs parsed by
 * inputs.ts. Throws a UserError listing every invalid field, each pointing
 * at the file line or the input it came from.
 */
export function resolvePlugin(source: PluginFile, overrides: PluginOverrides, options: ResolveOptions): ResolvedPlugin {
  const kind = source.kind;
  const manifest = structuredClone(source.manifest);
  const fileMeta = manifest.metadata ?? {};
  const fileSpec = (manifest.spec ?? {}) as Record<string, unknown>;
  const origins: Record<string, Origin> = {};
  const notes: string[] = [];
  const fileName = source.file ? path.basename(source.file) : MANIFEST_FILE;
  // Where a setting lives in this kind: `spec.url`, or `spec.wasm.url` in a TrafficExtension.
  const at = (field: string) => (kind === 'TrafficExtension' && WASM_FIELDS.has(field) ? `spec.wasm.${field}` : `spec.${field}`);

  // Every setting by its name, wherever the kind keeps it.
  const written: Record<string, unknown> =
    kind === 'TrafficExtension' ? { ...fileSpec, wasm: undefined, ...(isObject(fileSpec.wasm) ? fileSpec.wasm : {}) } : fileSpec;
  const spec: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(written)) {
    if (given(value)) {
      spec[key] = value;
      origins[at(key)] = 'file';
    }
  }
  const override = (field: keyof WasmPluginSpec, value: unknown) => {
    if (value === undefined) return;
    spec[field] = structuredClone(value);
    origins[at(field)] = `input \`${INPUT_OF[`spec.${field}`]}\``;
  };

  // Targeting is one choice: an input selector or targetRefs replaces
  // whatever the file targets (selector, targetRef or targetRefs).
  if (overrides.selector !== undefined || overrides.targetRefs !== undefined) {
    for (const key of ['selector', 'targetRef', 'targetRefs'] as const) {
      delete spec[key];
      delete origins[at(key)];
    }
    if (overrides.selector !== undefined) override('selector', { matchLabels: overrides.selector });
    override('targetRefs', overrides.targetRefs);
  }
  override('pluginName', overrides.pluginName);
  override('pluginConfig', overrides.pluginConfig);
  override('failStrategy', overrides.failStrategy);
  override('phase', overrides.phase);
  override('priority', overrides.priority);
  override('match', overrides.match);
  override('imagePullPolicy', overrides.imagePullPolicy);
  override('imagePullSecret', overrides.imagePullSecret);

  // url: the input, else the pushed image, else the file. sha256: the input,
  // else the pushed digest, else the file, else the digest an oci:// url is
  // pinned to.
  const [urlAt, shaAt] = [at('url'), at('sha256')];
  const fileSha = spec.sha256;
  if (overrides.url !== undefined) override('url', overrides.url.trim());
  else if (options.pushed) {
    spec.url = options.pushed.url;
    origins[urlAt] = 'push';
  }
  if (overrides.sha256 !== undefined) override('sha256', overrides.sha256.trim());
  else if (options.pushed && origins[urlAt] === 'push') {
    const digest = options.pushed.digest?.replace(/^sha256:/, '') ?? urlDigest(options.pushed.url);
    if (digest) {
      spec.sha256 = digest;
      origins[shaAt] = 'push';
    }
  } else if (fileSha === undefined && typeof spec.url === 'string' && urlScheme(spec.url) === 'oci' && urlDigest(spec.url)) {
    spec.sha256 = urlDigest(spec.url);
    origins[shaAt] = origins[urlAt];
  }
  if (origins[urlAt] === 'push' && (given(written.url) || given(written.sha256))) {
    notes.push(`${urlAt} and ${shaAt} are the pushed image's; the ones in ${fileName} are not used`);
  }

  if (!spec.pluginName) {
    throw new UserError(
      `no plugin name: set ${at('pluginName')} in ${source.file ?? path.join(options.pluginDir, MANIFEST_FILE)} or the \`plugin-name\` input to the root id your plugin registers (Istio passes it to Envoy as root_id)`,
    );
  }
  if (spec.selector === undefined && spec.targetRef === undefined && spec.targetRefs === undefined) {
    spec.selector = { matchLabels: { ...DEFAULT_SELECTOR } };
    origins['spec.selector'] = 'default';
    notes.push(
      `spec.selector: neither ${fileName} nor the inputs set a selector or targetRefs, so the plugin applies to the default selector ${Object.entries(DEFAULT_SELECTOR)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')}`,
    );
  }

  const metadata: ObjectMeta = { name: '', namespace: '' };
  if (overrides.name !== undefined) {
    metadata.name = overrides.name;
    origins['metadata.name'] = 'input `name`';
  } else if (given(fileMeta.name)) {
    metadata.name = fileMeta.name as string;
    origins['metadata.name'] = 'file';
  } else {
    metadata.name = path.basename(path.resolve(options.pluginDir));
    origins['metadata.name'] = 'default';
    notes.push(`metadata.name: neither ${fileName} nor the \`name\` input names the ${kind}, so it is named after the plugin folder: ${metadata.name}`);
  }
  if (overrides.namespace !== undefined) {
    metadata.namespace = overrides.namespace;
    origins['metadata.namespace'] = 'input `namespace`';
  } else if (given(fileMeta.namespace)) {
    metadata.namespace = fileMeta.namespace as string;
    origins['metadata.namespace'] = 'file';
  } else {
    metadata.namespace = DEFAULT_NAMESPACE;
    origins['metadata.namespace'] = 'default';
    notes.push(`metadata.namespace: not set, so ${DEFAULT_NAMESPACE}`);
  }
  for (const key of ['labels', 'annotations'] as const) {
    if (fileMeta[key] !== undefined && fileMeta[key] !== null) {
      metadata[key] = fileMeta[key];
      origins[`metadata.${key}`] = 'file';
    }
  }

  const object = build(kind, metadata, spec);
  const warnings = assertValid(object, {
    requireUrl: options.requireUrl ?? false,
    where: (error) => {
      const field = error.slice(0, error.indexOf(': '));
      const top = /^(metadata|spec)(\.wasm)?\.[A-Za-z0-9]+/.exec(field)?.[0] ?? field;
      const origin = origins[top];
      if (origin === 'file' && source.file) return `${source.file}:${source.lineOf(field) ?? 1}: ${error}`;
      if (origin?.startsWith('input')) return `${origin}: ${error}`;
      if (origin === 'push') return `the pushed image: ${error}`;
      // Not set anywhere (a required field): the file is where it would go.
      if (origin === undefined && source.file) return `${source.file}: ${error}`;
      return error;
    },
  });
  return { object, wasm: wasmOf(object), warnings, notes, origins };
}

/** The object of `kind` from the settings, each field in the order of the API reference. */
function build(kind: PluginFile['kind'], metadata: ObjectMeta, settings: Record<string, unknown>): ExtensionResource {
  const ordered = (keys: readonly string[]) => {
    const out: Record<string, unknown> = {};
    for (const key of keys) if (settings[key] !== undefined) out[key] = settings[key];
    return out;
  };
  // Keys no field list has (a spec.wasm in a WasmPlugin, say) stay, for validation to name.
  const extra = Object.fromEntries(
    Object.entries(settings).filter(([k]) => !(SPEC_FIELDS as readonly string[]).includes(k) && !(TRAFFIC_EXTENSION_FIELDS as readonly string[]).includes(k)),
  );
  if (kind === 'TrafficExtension') {
    const top = ordered(TRAFFIC_EXTENSION_FIELDS.filter((f) => f !== 'wasm' && f !== 'lua'));
    // A targetRef (WasmPlugin's singular field) given for a TrafficExtension is kept for validation to refuse.
    if (settings.targetRef !== undefined) top.targetRef = settings.targetRef;
    return { apiVersion: WASMPLUGIN_API_VERSION, kind, metadata, spec: { ...top, ...extra, wasm: ordered(WASM_CONFIG_FIELDS) } as never };
  }
  return { apiVersion: WASMPLUGIN_API_VERSION, kind: 'WasmPlugin', metadata, spec: { ...ordered(SPEC_FIELDS), ...extra } as WasmPluginSpec };
}
