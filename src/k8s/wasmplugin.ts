// The plugin model's types, API constants and views, for the deploy stage's
// modules (src/plugin is the model; this is its door into src/k8s).
export * from '../plugin/model.js';
export { wasmOf, wasmPluginView } from '../plugin/render.js';
