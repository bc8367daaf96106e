// The plugin model from an in-memory wasmplugin.yaml, for tests that deploy
// or render a WasmPlugin (or a TrafficExtension) without a plugin folder.
import {
  resolvePlugin,
  type ObjectMeta,
  type PluginManifest,
  type PluginOverrides,
  type PushedImage,
  type ResolvedPlugin,
  type WasmPluginSpec,
} from '../../src/plugin/index.js';

/** Resolves `manifest` (as if read from a wasmplugin.yaml) with `overrides`, requiring a url as the deploy stage does. */
export function pluginFrom(manifest: PluginManifest, overrides: PluginOverrides = {}, pushed?: PushedImage): ResolvedPlugin {
  const kind = manifest.kind === 'TrafficExtension' ? 'TrafficExtension' : 'WasmPlugin';
  return resolvePlugin({ kind, manifest, lineOf: () => undefined }, overrides, { pluginDir: '/plugins/test', pushed, requireUrl: true });
}

/** A manifest's metadata and spec fields side by side: `{ name, namespace, labels, annotations, ...spec }`. */
export type FlatPlugin = Partial<Pick<ObjectMeta, 'name' | 'namespace' | 'labels' | 'annotations'>> & Partial<WasmPluginSpec>;

/** pluginFrom for a flat description; undefined fields are left out. */
export function pluginOf(flat: FlatPlugin): ResolvedPlugin {
  const { name, namespace, labels, annotations, ...spec } = flat;
  const metadata = Object.fromEntries(Object.entries({ name, namespace, labels, annotations }).filter(([, v]) => v !== undefined));
  return pluginFrom({ metadata, spec });
}
