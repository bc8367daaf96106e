// The plugin model: wasmplugin.yaml + inputs → the WasmPlugin or
// TrafficExtension that is tested and applied. read.ts reads the file
// strictly (against the shapes in schema.ts), resolve.ts lays the inputs and
// the pushed image over it and validates once (validate.ts), model.ts holds
// the types and field names, render.ts the views the stages take of it.
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
export { filterSettings, pluginConfigJson, wasmOf, wasmPluginView, type FilterSettings } from './render.js';
export { assertValid, validateResource, type ValidateOptions, type Validation } from './validate.js';
