// The plugin model: wasmplugin.yaml + inputs → the WasmPlugin that is tested
// and applied. read.ts reads the file strictly, resolve.ts lays the inputs and
// the pushed image over it and validates once, model.ts holds the types and
// the rules of Istio's API.
export * from './model.js';
export { MANIFEST_FILE, parsePluginManifest, readPluginConfig, readPluginFile, type PluginFile, type PluginManifest } from './read.js';
export {
  overridesFromInputs,
  resolvePlugin,
  type Origin,
  type PluginOverrides,
  type PushedImage,
  type ResolveOptions,
  type ResolvedPlugin,
} from './resolve.js';
