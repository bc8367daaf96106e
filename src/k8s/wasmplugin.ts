// The WasmPlugin types, API constants and validation live in the plugin model
// (src/plugin/model.ts); the deploy stage's modules import them from here.
export * from '../plugin/model.js';
