import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { filterSettings, parsePluginManifest, readPluginFile, resolvePlugin, wasmPluginView, type PluginFile } from '../../../src/plugin/index.js';
import { expectGolden } from '../../helpers/golden.js';

const PLUGIN_DIR = path.resolve(import.meta.dirname, '../../../plugin');
const DIGEST = 'a'.repeat(64);
const PUSHED = { url: `oci://registry.example.com/mesh/header-authorization@sha256:${DIGEST}`, digest: `sha256:${DIGEST}` };
const FILE = '/plugins/edge/wasmplugin.yaml';

function file(text: string): PluginFile {
  return parsePluginManifest(text, FILE);
}

const BASE = `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: edge
  namespace: gateways
spec:
  pluginName: edge_root
  selector:
    matchLabels:
      app: edge
  phase: AUTHN
  priority: 5
  failStrategy: FAIL_OPEN
  pluginConfig:
    header: x-token
    value: s3cret
`;

function errorOf(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error('expected a UserError');
}

describe('the reference plugin', () => {
  it('renders exactly wasmplugin.yaml plus the pushed url and sha256 (golden)', () => {
    const source = readPluginFile(PLUGIN_DIR);
    const resolved = resolvePlugin(source, {}, { pluginDir: PLUGIN_DIR, pushed: PUSHED, requireUrl: true });
    const written = YAML.parse(fs.readFileSync(path.join(PLUGIN_DIR, 'wasmplugin.yaml'), 'utf8'));
    expect(resolved.object).toEqual({ ...written, spec: { ...written.spec, url: PUSHED.url, sha256: DIGEST } });
    expect(resolved.notes).toEqual([]);
    expectGolden('wasmplugin-reference.yaml', YAML.stringify(resolved.object, { lineWidth: 0 }));
  });

  it('configures the local test filter from the same object', () => {
    const resolved = resolvePlugin(readPluginFile(PLUGIN_DIR), {}, { pluginDir: PLUGIN_DIR });
    expect(resolved.wasm.url).toBeUndefined();
    expect(filterSettings(resolved.object)).toEqual({
      name: 'header-authorization',
      namespace: 'istio-system',
      rootId: 'header-authorization',
      configuration: '{"denyBody":"Forbidden by ASM Wasm Plugin, assemblyscript version\\n","denyStatus":403,"header":"allow","value":"true"}',
      failStrategy: 'FAIL_CLOSE',
    });
  });
});

describe('resolvePlugin', () => {
  it('keeps every field the file sets, and adds nothing', () => {
    const text = `metadata:
  name: edge
  labels: {team: edge}
  annotations: {example.com/owner: ops}
spec:
  pluginName: edge
  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: gw}
  verificationKey: KEY
  imagePullSecret: pull
  vmConfig:
    env: [{name: A, value: b}]
  type: HTTP
`;
    const r = resolvePlugin(file(text), {}, { pluginDir: '/plugins/edge', pushed: PUSHED, requireUrl: true });
    expect(r.object).toEqual({
      apiVersion: 'extensions.istio.io/v1alpha1',
      kind: 'WasmPlugin',
      metadata: { name: 'edge', namespace: 'istio-system', labels: { team: 'edge' }, annotations: { 'example.com/owner': 'ops' } },
      spec: {
        targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' },
        url: PUSHED.url,
        sha256: DIGEST,
        imagePullSecret: 'pull',
        verificationKey: 'KEY',
        pluginName: 'edge',
        vmConfig: { env: [{ name: 'A', value: 'b' }] },
        type: 'HTTP',
      },
    });
    // No default selector next to a targetRef, no failStrategy the file did not write.
    expect(r.notes).toEqual(['metadata.namespace: not set, so istio-system']);
    expect(r.origins).toMatchObject({ 'spec.targetRef': 'file', 'spec.url': 'push', 'spec.sha256': 'push', 'metadata.namespace': 'default' });
  });

  it('lets each input replace the field it names', () => {
    const r = resolvePlugin(
      file(BASE),
      {
        name: 'other',
        namespace: 'team-a',
        pluginName: 'other_root',
        pluginConfig: { header: 'x-api-key' },
        failStrategy: 'FAIL_CLOSE',
        phase: 'AUTHZ',
        priority: 1,
        match: [{ mode: 'SERVER' }],
        imagePullPolicy: 'Always',
        imagePullSecret: 'pull',
        url: 'https://example.com/p.wasm',
        sha256: 'b'.repeat(64),
      },
      { pluginDir: '/plugins/edge', pushed: PUSHED, requireUrl: true },
    );
    expect(r.object.metadata).toEqual({ name: 'other', namespace: 'team-a' });
    expect(r.object.spec).toEqual({
      selector: { matchLabels: { app: 'edge' } },
      url: 'https://example.com/p.wasm',
      sha256: 'b'.repeat(64),
      imagePullPolicy: 'Always',
      imagePullSecret: 'pull',
      pluginConfig: { header: 'x-api-key' },
      pluginName: 'other_root',
      phase: 'AUTHZ',
      priority: 1,
      failStrategy: 'FAIL_CLOSE',
      match: [{ mode: 'SERVER' }],
    });
    expect(r.origins['spec.url']).toBe('input `url`');
    expect(r.origins['spec.pluginConfig']).toBe('input `plugin-config`');
  });

  it('lets an input selector or targetRefs replace whatever the file targets', () => {
    const bySelector = resolvePlugin(file(BASE), { selector: { istio: 'eastwest' } }, { pluginDir: '/p' });
    expect(bySelector.object.spec.selector).toEqual({ matchLabels: { istio: 'eastwest' } });
    const refs = [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }];
    const byRefs = resolvePlugin(file(BASE), { targetRefs: refs }, { pluginDir: '/p' });
    expect(byRefs.object.spec.selector).toBeUndefined();
    expect(byRefs.object.spec.targetRefs).toEqual(refs);
    expect(errorOf(() => resolvePlugin(file(BASE), { selector: { a: 'b' }, targetRefs: refs }, { pluginDir: '/p' })).message).toBe(
      'the WasmPlugin gateways/edge is not valid (1 problem): input `target-refs`: spec.targetRefs: only one of selector or targetRefs can be set (both spec.selector and spec.targetRefs are)',
    );
  });

  it('uses the default selector only when nothing targets the plugin, and says so', () => {
    const r = resolvePlugin(file('metadata: {name: edge}\nspec: {pluginName: edge}\n'), {}, { pluginDir: '/p' });
    expect(r.object.spec.selector).toEqual({ matchLabels: { istio: 'ingressgateway' } });
    expect(r.origins['spec.selector']).toBe('default');
    expect(r.notes).toContain(
      'spec.selector: neither wasmplugin.yaml nor the inputs set a selector or targetRefs, so the plugin applies to the default selector istio: ingressgateway',
    );
    const withRefs = resolvePlugin(file('metadata: {name: edge}\nspec: {pluginName: edge, targetRefs: [{kind: Service, name: api}]}\n'), {}, { pluginDir: '/p' });
    expect(withRefs.object.spec.selector).toBeUndefined();
  });

  it('names a WasmPlugin after its folder only without a name, and says so', () => {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'asm-wasm-resolve-')), 'my-plugin');
    fs.mkdirSync(dir);
    const r = resolvePlugin(readPluginFile(dir), { pluginName: 'root' }, { pluginDir: dir });
    expect(r.object.metadata).toEqual({ name: 'my-plugin', namespace: 'istio-system' });
    expect(r.notes[1]).toBe('metadata.name: neither wasmplugin.yaml nor the `name` input names the WasmPlugin, so it is named after the plugin folder: my-plugin');
  });

  it('takes the url from the file when nothing else gives one, with the digest it is pinned to', () => {
    const r = resolvePlugin(file(`${BASE}  url: oci://r.example.com/p@sha256:${'c'.repeat(64)}\n`), {}, { pluginDir: '/p', requireUrl: true });
    expect(r.wasm.sha256).toBe('c'.repeat(64));
    const pushed = resolvePlugin(file(`${BASE}  url: oci://r.example.com/p:v1\n`), {}, { pluginDir: '/p', pushed: PUSHED, requireUrl: true });
    expect(pushed.wasm.url).toBe(PUSHED.url);
    expect(pushed.notes).toEqual(["spec.url and spec.sha256 are the pushed image's; the ones in wasmplugin.yaml are not used"]);
  });

  it('validates once, pointing at the file line or the input each bad value came from', () => {
    const text = `${BASE}  match:\n  - ports:\n    - number: 70000\n`;
    const err = errorOf(() => resolvePlugin(file(text), { phase: 'LATE' }, { pluginDir: '/p', requireUrl: true }));
    expect(err.message).toBe('the WasmPlugin gateways/edge is not valid (3 problems): /plugins/edge/wasmplugin.yaml: spec.url: is required (oci://…, https://… or file://…)');
    expect(err.details!.split('\n')).toEqual([
      '/plugins/edge/wasmplugin.yaml: spec.url: is required (oci://…, https://… or file://…)',
      'input `phase`: spec.phase: "LATE" is not one of UNSPECIFIED_PHASE, AUTHN, AUTHZ, STATS',
      `${FILE}:19: spec.match[0].ports[0].number: must be a port number from 1 to 65535, got 70000`,
    ]);
  });

  it('checks everything but the url before there is an image (build and test)', () => {
    expect(() => resolvePlugin(file(BASE), {}, { pluginDir: '/p' })).not.toThrow();
    expect(errorOf(() => resolvePlugin(file(BASE.replace('FAIL_OPEN', 'FAIL_SOMETIMES')), {}, { pluginDir: '/p' })).message).toBe(
      `the WasmPlugin gateways/edge is not valid (1 problem): ${FILE}:13: spec.failStrategy: "FAIL_SOMETIMES" is not one of FAIL_CLOSE, FAIL_OPEN, FAIL_RELOAD`,
    );
  });

  it('needs a plugin name, from the file or the input', () => {
    expect(errorOf(() => resolvePlugin(file('metadata: {name: a}\nspec: {}\n'), {}, { pluginDir: '/p' })).message).toMatch(
      /^no plugin name: set spec.pluginName in \/plugins\/edge\/wasmplugin.yaml or the `plugin-name` input/,
    );
  });

  it('returns an object that shares nothing with the file', () => {
    const source = file(BASE);
    const r = resolvePlugin(source, {}, { pluginDir: '/p' });
    r.object.spec.selector!.matchLabels.app = 'changed';
    expect(source.manifest.spec?.selector?.matchLabels.app).toBe('edge');
  });
});

describe('a TrafficExtension (kind: TrafficExtension in wasmplugin.yaml)', () => {
  const TE = `apiVersion: extensions.istio.io/v1alpha1
kind: TrafficExtension
metadata:
  name: edge
  namespace: gateways
spec:
  selector:
    matchLabels:
      app: edge
  phase: AUTHN
  priority: 5
  wasm:
    pluginName: edge_root
    failStrategy: FAIL_OPEN
    pluginConfig:
      header: x-token
      value: s3cret
`;

  it('keeps the Wasm settings under spec.wasm, with the pushed image, and configures the same filter as the WasmPlugin', () => {
    const te = resolvePlugin(file(TE), {}, { pluginDir: '/p', pushed: PUSHED, requireUrl: true });
    expect(te.object).toEqual({
      apiVersion: 'extensions.istio.io/v1alpha1',
      kind: 'TrafficExtension',
      metadata: { name: 'edge', namespace: 'gateways' },
      spec: {
        selector: { matchLabels: { app: 'edge' } },
        phase: 'AUTHN',
        priority: 5,
        wasm: { url: PUSHED.url, sha256: DIGEST, pluginConfig: { header: 'x-token', value: 's3cret' }, pluginName: 'edge_root', failStrategy: 'FAIL_OPEN' },
      },
    });
    expect(te.wasm.url).toBe(PUSHED.url);
    expect(te.origins).toMatchObject({ 'spec.wasm.url': 'push', 'spec.wasm.pluginName': 'file', 'spec.phase': 'file' });
    const wp = resolvePlugin(file(BASE), {}, { pluginDir: '/p', pushed: PUSHED, requireUrl: true });
    expect(filterSettings(te.object)).toEqual(filterSettings(wp.object));
    expect(wasmPluginView(te.object).spec).toEqual(wp.object.spec);
  });

  it('lets the inputs set the same settings, in spec.wasm where they live', () => {
    const te = resolvePlugin(file(TE), { pluginName: 'other', failStrategy: 'FAIL_CLOSE', phase: 'STATS' }, { pluginDir: '/p' });
    expect(te.object.spec).toMatchObject({ phase: 'STATS', wasm: { pluginName: 'other', failStrategy: 'FAIL_CLOSE' } });
    expect(te.origins['spec.wasm.pluginName']).toBe('input `plugin-name`');
  });

  it('points a bad value at its line in spec.wasm, and refuses WasmPlugin\'s spellings', () => {
    const err = errorOf(() => resolvePlugin(file(`${TE}    imagePullPolicy: Never\n`), { phase: 'UNSPECIFIED_PHASE' }, { pluginDir: '/p' }));
    expect(err.message).toMatch(/^the TrafficExtension gateways\/edge is not valid \(2 problems\): /);
    expect(err.details!.split('\n')).toEqual([
      `${FILE}:18: spec.wasm.imagePullPolicy: "Never" is not one of UNSPECIFIED_POLICY, IfNotPresent, Always`,
      'input `phase`: spec.phase: "UNSPECIFIED_PHASE" is not one of UNSPECIFIED, AUTHN, AUTHZ, STATS',
    ]);
  });

  it('reads the file strictly: a Wasm setting outside spec.wasm, a misspelt one inside it, Lua', () => {
    expect(errorOf(() => file(`${TE}  url: oci://r/p:v1\n`)).message).toBe(`${FILE}:18: spec.url: not a TrafficExtension field here; did you mean spec.wasm.url?`);
    expect(errorOf(() => file(TE.replace('pluginName:', 'pluginNmae:'))).message).toBe(
      `${FILE}:13: spec.wasm.pluginNmae: not a TrafficExtension field; did you mean spec.wasm.pluginName?`,
    );
    expect(errorOf(() => file(`${TE}  targetRef:\n    kind: Gateway\n`)).message).toMatch(/spec\.targetRef: not a TrafficExtension field; did you mean spec\.targetRefs\?/);
    expect(errorOf(() => file(TE.replace(/ {2}wasm:[\s\S]*$/, '  lua:\n    inlineCode: x\n'))).message).toBe(
      `${FILE}:12: spec.lua: this action builds, tests and deploys a Wasm module: a Lua TrafficExtension is not one; use spec.wasm`,
    );
  });
});
