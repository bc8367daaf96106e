// Reads <plugin-dir>/wasmplugin.yaml strictly. The file is a WasmPlugin or,
// with `kind: TrafficExtension`, a TrafficExtension (the kind decides the
// shape of the whole file, spec.wasm included, so it is said in the file and
// not by an input). Every key in it must be a field of that kind at that
// place (schema.ts): a misspelt key is an error that
// names the file, the line, the field's path and the nearest known field
// (`spec.seletor: not a WasmPlugin field; did you mean spec.selector?`).
// Nothing is dropped: what the file says is what the model holds, so a typo
// can no longer send the plugin to the default gateway without a word.
//
// Only the shape is checked here (known keys, mappings and lists where the
// API has them). Values (enums, names, limits) are checked once, on the
// resolved object, by validateWasmPlugin (resolve.ts), which points back at
// the line through `lineOf`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML, { LineCounter, isMap, isScalar, isSeq, type Node } from 'yaml';
import { UserError } from '../errors.js';
import { RESOURCE_KINDS, WASMPLUGIN_API_VERSION, type ObjectMeta, type ResourceKind } from './model.js';
import { fieldPlaces, manifestShape, type Shape } from './schema.js';

export const MANIFEST_FILE = 'wasmplugin.yaml';

/** wasmplugin.yaml as written: every field optional (the inputs and the pushed image complete it). */
export interface PluginManifest {
  apiVersion?: string;
  kind?: string;
  metadata?: Partial<Pick<ObjectMeta, 'name' | 'namespace' | 'labels' | 'annotations'>>;
  /** The spec of `kind`, as written (its shape was checked; its values are checked after resolving). */
  spec?: Record<string, any>;
}

export interface PluginFile {
  /** The file the manifest came from; undefined when the plugin has none. */
  file?: string;
  /** The kind the file declares; WasmPlugin when it names none. */
  kind: ResourceKind;
  manifest: PluginManifest;
  /** The line of a field (`spec.match[0].ports[1].number`) or of its nearest parent written in the file. */
  lineOf(field: string): number | undefined;
}

/** ObjectMeta fields the API server sets: a manifest copied from a live object has them. */
const SERVER_FIELDS: Record<string, string[]> = {
  '': ['status'],
  metadata: ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields', 'selfLink'],
};

/** ObjectMeta fields a user may set elsewhere but this action does not apply. */
const UNSUPPORTED_META = ['generateName', 'ownerReferences', 'finalizers'];

/** Reads <pluginDir>/wasmplugin.yaml; a plugin without one gets an empty manifest. */
export function readPluginFile(pluginDir: string): PluginFile {
  const file = path.join(pluginDir, MANIFEST_FILE);
  if (!fs.existsSync(file)) return { kind: 'WasmPlugin', manifest: {}, lineOf: () => undefined };
  return parsePluginManifest(fs.readFileSync(file, 'utf8'), file);
}

/** Parses the text of a wasmplugin.yaml strictly; `file` names it in messages. */
export function parsePluginManifest(text: string, file: string): PluginFile {
  const lines = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new UserError(`${file}:${lines.linePos(e.pos[0]).line}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const lineAt = new Map<string, number>();
  const problems: string[] = [];
  const lineOfNode = (node: Node | null | undefined) => (node?.range ? lines.linePos(node.range[0]).line : 1);
  const fail = (where: string, line: number, message: string) => problems.push(`${file}:${line}: ${where ? `${where}: ` : ''}${message}`);

  const root = doc.contents as Node | null;
  if (root === null || (isScalar(root) && (root.value === null || root.value === undefined))) {
    throw new UserError(`${file}: is empty; write the WasmPlugin the plugin is deployed as (metadata and spec), or delete the file`);
  }
  // The kind first: it decides which fields exist.
  const kindNode = isMap(root) ? root.items.find((p) => isScalar(p.key) && p.key.value === 'kind') : undefined;
  const declared = kindNode && isScalar(kindNode.value) ? kindNode.value.value : undefined;
  const kind: ResourceKind = (RESOURCE_KINDS as readonly unknown[]).includes(declared) ? (declared as ResourceKind) : 'WasmPlugin';
  if (kindNode && kind !== declared) {
    fail('kind', lineOfNode(kindNode.key as Node), `must be ${RESOURCE_KINDS.join(' or ')}, got ${JSON.stringify(declared ?? null)}`);
  }
  walk(root, { kind: 'fields', ...manifestShape(kind) }, '', lineOfNode(root));

  function walk(node: Node, shape: Shape, where: string, keyLine: number): void {
    lineAt.set(where, keyLine);
    if (shape.kind === 'scalar') return;
    if (shape.kind === 'free' || shape.kind === 'fields') {
      if (!isMap(node)) {
        fail(where, keyLine, where ? 'must be a mapping' : `must be a ${kind} manifest: a mapping with metadata and spec`);
        return;
      }
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const line = lineOfNode(pair.key as Node);
        const here = where ? `${where}.${key}` : key;
        if (shape.kind === 'free') {
          lineAt.set(here, line);
          continue;
        }
        const known = shape.fields[key];
        if (known) {
          if (pair.value !== null && pair.value !== undefined) walk(pair.value as Node, known, here, line);
          else lineAt.set(here, line);
          continue;
        }
        fail(here, line, unknownField(kind, where, key, Object.keys(shape.fields)));
      }
      return;
    }
    if (!isSeq(node)) {
      fail(where, keyLine, 'must be a list');
      return;
    }
    node.items.forEach((item, i) => walk(item as Node, shape.item, `${where}[${i}]`, lineOfNode(item as Node)));
  }

  const manifest = doc.toJS() as PluginManifest;
  if (manifest.apiVersion !== undefined && manifest.apiVersion !== WASMPLUGIN_API_VERSION) {
    fail('apiVersion', lineAt.get('apiVersion') ?? 1, `must be ${WASMPLUGIN_API_VERSION} (the WasmPlugin API this action applies), got ${JSON.stringify(manifest.apiVersion)}`);
  }
  if (manifest.spec?.lua !== undefined) {
    fail('spec.lua', lineAt.get('spec.lua') ?? 1, 'this action builds, tests and deploys a Wasm module: a Lua TrafficExtension is not one; use spec.wasm');
  }
  if (problems.length) {
    throw new UserError(
      problems.length === 1 ? problems[0] : `${problems[0]} (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''} in ${file})`,
      problems.length > 1 ? problems.join('\n') : undefined,
    );
  }
  for (const key of ['metadata', 'spec'] as const) {
    if (manifest[key] === null) delete manifest[key];
  }
  return {
    file,
    kind,
    manifest,
    lineOf(field: string): number | undefined {
      // The field itself, else the nearest parent the file has.
      let f = field.replace(/\["([^"]*)"\]/g, '.$1');
      for (;;) {
        const line = lineAt.get(f);
        if (line !== undefined) return line;
        const up = f.replace(/(\.[^.[\]]*|\[\d+\])$/, '');
        if (up === f || !up) return undefined;
        f = up;
      }
    },
  };
}

/** The message for a key that `kind` does not have at `parent`. */
function unknownField(kind: ResourceKind, parent: string, key: string, known: string[]): string {
  const full = (k: string) => (parent ? `${parent}.${k}` : k);
  if ((SERVER_FIELDS[parent] ?? []).includes(key)) {
    return 'is set by the API server, not by a manifest (was the file copied from a live object?); remove it';
  }
  if (parent === 'metadata' && UNSUPPORTED_META.includes(key)) {
    return 'is not applied by this action (it applies metadata name, namespace, labels and annotations); remove it';
  }
  const near = nearest(key, known);
  if (near) return `not a ${kind} field; did you mean ${full(near)}?`;
  // A field written at the wrong level: `pluginName` at the top, `name` under
  // spec, a Wasm setting outside a TrafficExtension's spec.wasm.
  const elsewhere = misplaced(kind, parent, key);
  if (elsewhere) return `not a ${kind} field here; did you mean ${elsewhere}?`;
  if (kind === 'WasmPlugin' && parent === 'spec' && key === 'wasm') {
    return 'not a WasmPlugin field: spec.wasm is a TrafficExtension\'s; write kind: TrafficExtension, or put its fields directly under spec';
  }
  return `not a ${kind} field; the fields of ${parent || `a ${kind}`} are ${known.join(', ')}`;
}

function misplaced(kind: ResourceKind, parent: string, key: string): string | undefined {
  for (const [where, f] of fieldPlaces(kind)) {
    if (where !== parent && key in f) return where ? `${where}.${key}` : key;
  }
  return undefined;
}

/** The known name closest to `key` by edit distance (case-insensitive), if it is close enough to be a typo. */
export function nearest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  // One edit in a short name, up to a third of a longer one.
  const limit = Math.max(1, Math.min(3, Math.floor(Math.max(key.length, best?.length ?? 0) / 3)));
  return bestDistance <= limit ? best : undefined;
}

/** Damerau-Levenshtein (optimal string alignment) distance: a swap of two letters is one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads the `plugin-config` input: a path to a YAML/JSON file, or inline
 * YAML/JSON. It must be a mapping, as WasmPlugin.spec.pluginConfig is a
 * Struct. Messages never quote the content: it is often a secret.
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
    parsed = YAML.parse(text, { prettyErrors: false });
  } catch (err) {
    const pos = (err as { linePos?: { line: number; col: number }[] }).linePos?.[0];
    // The parser's message can quote the text; only its position is shown.
    throw new UserError(`input \`plugin-config\` (${where}) is not valid YAML or JSON${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isObject(parsed)) {
    throw new UserError(`input \`plugin-config\` (${where}) must be a mapping (WasmPlugin.spec.pluginConfig is an object)`);
  }
  return parsed;
}
