import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPluginSpec, pluginConfigJson, readPluginConfig } from '../../src/manifest.js';

const pluginDir = path.resolve(import.meta.dirname, '../../plugin');

function tempPlugin(manifest?: string): string {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'asm-wasm-manifest-')), 'my-plugin');
  fs.mkdirSync(dir);
  if (manifest !== undefined) fs.writeFileSync(path.join(dir, 'wasmplugin.yaml'), manifest);
  return dir;
}

describe('loadPluginSpec', () => {
  it('reads the reference plugin manifest', () => {
    const spec = loadPluginSpec({ pluginDir });
    expect(spec).toMatchObject({
      name: 'header-authorization',
      namespace: 'istio-system',
      pluginName: 'header-authorization',
      failStrategy: 'FAIL_CLOSE',
      pluginConfig: { header: 'allow', value: 'true', denyStatus: 403 },
    });
    expect(spec.spec).toMatchObject({ phase: 'AUTHN', selector: { matchLabels: { istio: 'ingressgateway' } } });
  });

  it('lets inputs override the manifest', () => {
    const spec = loadPluginSpec({ pluginDir, name: 'other', namespace: 'gw', pluginName: 'x', pluginConfig: '{"header": "x-token"}', failStrategy: 'FAIL_OPEN' });
    expect(spec).toMatchObject({ name: 'other', namespace: 'gw', pluginName: 'x', pluginConfig: { header: 'x-token' }, failStrategy: 'FAIL_OPEN' });
  });

  it('defaults to the folder name, istio-system and FAIL_CLOSE without a manifest', () => {
    const dir = tempPlugin();
    const spec = loadPluginSpec({ pluginDir: dir, pluginName: 'root' });
    expect(spec).toMatchObject({ name: 'my-plugin', namespace: 'istio-system', failStrategy: 'FAIL_CLOSE' });
    expect(spec.pluginConfig).toBeUndefined();
  });

  it.each([
    ['no plugin name', 'metadata: {name: a}\nspec: {}\n', /no plugin name.*plugin-name/],
    ['a bad name', 'metadata: {name: Bad_Name}\nspec: {pluginName: a}\n', /not a valid Kubernetes name/],
    ['another kind', 'kind: EnvoyFilter\nmetadata: {name: a}\n', /must describe a WasmPlugin/],
    ['a bad failStrategy', 'metadata: {name: a}\nspec: {pluginName: a, failStrategy: FAIL_SOMETIMES}\n', /failStrategy must be one of/],
    ['pluginConfig that is a list', 'metadata: {name: a}\nspec: {pluginName: a, pluginConfig: [1]}\n', /pluginConfig must be a mapping/],
    ['broken YAML', 'metadata: {name: a\n', /not valid YAML/],
  ])('rejects %s', (_name, manifest, message) => {
    expect(() => loadPluginSpec({ pluginDir: tempPlugin(manifest) })).toThrow(message);
  });
});

describe('readPluginConfig', () => {
  it('reads inline JSON and inline YAML', () => {
    expect(readPluginConfig('{"a": 1}')).toEqual({ a: 1 });
    expect(readPluginConfig('header: x-token\nvalue: yes-please')).toEqual({ header: 'x-token', value: 'yes-please' });
  });

  it('reads a file', () => {
    const dir = tempPlugin();
    fs.writeFileSync(path.join(dir, 'config.yaml'), 'header: x\n');
    expect(readPluginConfig('config.yaml', dir)).toEqual({ header: 'x' });
  });

  it.each([
    ['missing.yaml', /does not exist/],
    ['[1, 2]', /must be a mapping/],
    ['{"a": ', /not valid YAML or JSON/],
  ])('rejects %s', (value, message) => {
    expect(() => readPluginConfig(value, os.tmpdir())).toThrow(message);
  });
});

describe('pluginConfigJson (istiod marshals the Struct with sorted keys, no spaces)', () => {
  it('sorts keys at every level', () => {
    expect(pluginConfigJson({ value: 'true', header: 'allow', nested: { b: 1, a: [{ d: 1, c: 2 }] } })).toBe(
      '{"header":"allow","nested":{"a":[{"c":2,"d":1}],"b":1},"value":"true"}',
    );
  });

  it('gives no configuration for an empty pluginConfig', () => {
    expect(pluginConfigJson({})).toBeUndefined();
    expect(pluginConfigJson(undefined)).toBeUndefined();
  });
});
