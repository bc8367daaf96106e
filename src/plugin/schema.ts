// The shape of each kind as wasmplugin.yaml may write it: which keys exist
// where, and which are mappings or lists. read.ts walks the file against it,
// so a key that is not a field at its place is an error with its line and
// the nearest field. Values are checked later, once, by validate.ts.
import { SPEC_FIELDS, TRAFFIC_EXTENSION_FIELDS, WASM_CONFIG_FIELDS, type ResourceKind } from './model.js';

export type Shape =
  | { kind: 'scalar' }
  /** A mapping that takes any key (labels, pluginConfig). */
  | { kind: 'free' }
  | { kind: 'fields'; fields: Record<string, Shape> }
  | { kind: 'list'; item: Shape };

const scalar: Shape = { kind: 'scalar' };
const free: Shape = { kind: 'free' };
const fields = (f: Record<string, Shape>): Shape => ({ kind: 'fields', fields: f });
const list = (item: Shape): Shape => ({ kind: 'list', item });

const TARGET_REF = fields({ group: scalar, kind: scalar, name: scalar, namespace: scalar });
const SELECTOR = fields({ matchLabels: free });
const MATCH = list(fields({ mode: scalar, ports: list(fields({ number: scalar })) }));

/** The Wasm settings: WasmPlugin's spec has them at its top, TrafficExtension's under spec.wasm. */
const WASM_CONFIG: Record<(typeof WASM_CONFIG_FIELDS)[number], Shape> = {
  url: scalar,
  sha256: scalar,
  imagePullPolicy: scalar,
  imagePullSecret: scalar,
  verificationKey: scalar,
  pluginConfig: free,
  pluginName: scalar,
  failStrategy: scalar,
  vmConfig: fields({ env: list(fields({ name: scalar, value: scalar, valueFrom: scalar })) }),
  type: scalar,
};

const WASMPLUGIN_PARTS: Record<(typeof SPEC_FIELDS)[number], Shape> = {
  selector: SELECTOR,
  targetRef: TARGET_REF,
  targetRefs: list(TARGET_REF),
  ...WASM_CONFIG,
  phase: scalar,
  priority: scalar,
  match: MATCH,
};
/** In the order of the API reference, which messages list them in. */
const WASMPLUGIN_SPEC = Object.fromEntries(SPEC_FIELDS.map((k) => [k, WASMPLUGIN_PARTS[k]]));

const TRAFFIC_EXTENSION_SPEC: Record<(typeof TRAFFIC_EXTENSION_FIELDS)[number], Shape> = {
  selector: SELECTOR,
  targetRefs: list(TARGET_REF),
  phase: scalar,
  priority: scalar,
  match: MATCH,
  wasm: fields(WASM_CONFIG),
  // The API's; read so that the message can say this action deploys Wasm.
  lua: fields({ inlineCode: scalar }),
};

const METADATA = fields({ name: scalar, namespace: scalar, labels: free, annotations: free });

/** The whole manifest of a kind. */
export function manifestShape(kind: ResourceKind): { fields: Record<string, Shape> } {
  return {
    fields: {
      apiVersion: scalar,
      kind: scalar,
      metadata: METADATA,
      spec: fields(kind === 'TrafficExtension' ? TRAFFIC_EXTENSION_SPEC : WASMPLUGIN_SPEC),
    },
  };
}

/** The mappings of a kind with named fields, by path (`''`, `metadata`, `spec`, `spec.wasm`): where a misplaced key may belong. */
export function fieldPlaces(kind: ResourceKind): Array<[string, Record<string, Shape>]> {
  const root = manifestShape(kind).fields;
  const spec = (root.spec as { fields: Record<string, Shape> }).fields;
  const places: Array<[string, Record<string, Shape>]> = [
    ['', root],
    ['metadata', (METADATA as { fields: Record<string, Shape> }).fields],
    ['spec', spec],
  ];
  if (kind === 'TrafficExtension') places.push(['spec.wasm', WASM_CONFIG]);
  return places;
}
