// Superseded by the plugin model (src/plugin/): kept only for
// scripts/bench/requests.ts, which reads the reference plugin's settings
// through it. New code uses readPluginFile + resolvePlugin + filterSettings.
import { filterSettings, readPluginFile, resolvePlugin, type FailStrategy } from './plugin/index.js';

export { MANIFEST_FILE, pluginConfigJson, readPluginConfig } from './plugin/index.js';

/** @deprecated The test filter's settings from wasmplugin.yaml, strictly read; use the plugin model. */
export function loadPluginSpec(inputs: { pluginDir: string }): {
  name: string;
  namespace: string;
  pluginName: string;
  pluginConfig?: Record<string, unknown>;
  failStrategy: FailStrategy;
} {
  const resolved = resolvePlugin(readPluginFile(inputs.pluginDir), {}, { pluginDir: inputs.pluginDir });
  const f = filterSettings(resolved.object);
  return { name: f.name, namespace: f.namespace, pluginName: f.rootId, pluginConfig: resolved.object.spec.pluginConfig, failStrategy: f.failStrategy };
}
