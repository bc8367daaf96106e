import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { nearest } from '../../../src/plugin/read.js';
import { parsePluginManifest, readPluginConfig, readPluginFile } from '../../../src/plugin/index.js';

const FILE = 'plugin/wasmplugin.yaml';

function errorOf(text: string): UserError {
  try {
    parsePluginManifest(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error('expected the manifest to be refused');
}

const HEAD = 'apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n';

describe('parsePluginManifest: an unknown field fails, naming the file, line, path and nearest field', () => {
  it.each([
    [
      'spec.seletor',
      `${HEAD}metadata:\n  name: p\nspec:\n  pluginName: p\n  seletor:\n    matchLabels:\n      app: edge\n`,
      `${FILE}:7: spec.seletor: not a WasmPlugin field; did you mean spec.selector?`,
    ],
    [
      'metdata',
      `${HEAD}metdata:\n  name: p\nspec:\n  pluginName: p\n`,
      `${FILE}:3: metdata: not a WasmPlugin field; did you mean metadata?`,
    ],
    [
      'spec.selector.matchLabel',
      `${HEAD}spec:\n  selector:\n    matchLabel:\n      app: edge\n`,
      `${FILE}:5: spec.selector.matchLabel: not a WasmPlugin field; did you mean spec.selector.matchLabels?`,
    ],
    [
      'spec.imagePullSecrets',
      `${HEAD}spec:\n  imagePullSecrets: pull\n`,
      `${FILE}:4: spec.imagePullSecrets: not a WasmPlugin field; did you mean spec.imagePullSecret?`,
    ],
    ['spec.pluginConfg', `spec:\n  pluginConfg: {a: 1}\n`, `${FILE}:2: spec.pluginConfg: not a WasmPlugin field; did you mean spec.pluginConfig?`],
    ['spec.targetRefs[0].nmae', `spec:\n  targetRefs:\n  - kind: Gateway\n    nmae: gw\n`, `${FILE}:4: spec.targetRefs[0].nmae: not a WasmPlugin field; did you mean spec.targetRefs[0].name?`],
    ['spec.vmConfig.env[0].valeu', `spec:\n  vmConfig:\n    env:\n    - name: A\n      valeu: b\n`, `${FILE}:5: spec.vmConfig.env[0].valeu: not a WasmPlugin field; did you mean spec.vmConfig.env[0].value?`],
    ['spec.match[0].port', `spec:\n  match:\n  - ports:\n    - number: 80\n    port: 81\n`, `${FILE}:5: spec.match[0].port: not a WasmPlugin field; did you mean spec.match[0].ports?`],
    ['a field at the wrong level', `pluginName: p\n`, `${FILE}:1: pluginName: not a WasmPlugin field here; did you mean spec.pluginName?`],
    ['spec.name', `spec:\n  name: p\n`, `${FILE}:2: spec.name: not a WasmPlugin field here; did you mean metadata.name?`],
    ['a TrafficExtension field in a WasmPlugin', `spec:\n  wasm: {}\n`, `${FILE}:2: spec.wasm: not a WasmPlugin field: spec.wasm is a TrafficExtension's; write kind: TrafficExtension, or put its fields directly under spec`],
    ['a field with no near match', `spec:\n  bogus: x\n`, `${FILE}:2: spec.bogus: not a WasmPlugin field; the fields of spec are selector, targetRef, targetRefs, url, sha256, imagePullPolicy, imagePullSecret, verificationKey, pluginConfig, pluginName, phase, priority, failStrategy, vmConfig, match, type`],
    ['a server field', `metadata:\n  name: p\n  resourceVersion: "12"\n`, `${FILE}:3: metadata.resourceVersion: is set by the API server, not by a manifest (was the file copied from a live object?); remove it`],
    ['status', `spec: {}\nstatus: {}\n`, `${FILE}:2: status: is set by the API server, not by a manifest (was the file copied from a live object?); remove it`],
    ['metadata it does not apply', `metadata:\n  finalizers: [x]\n`, `${FILE}:2: metadata.finalizers: is not applied by this action (it applies metadata name, namespace, labels and annotations); remove it`],
  ])('%s', (_name, text, message) => {
    expect(errorOf(text).message).toBe(message);
  });

  it('lists every problem, the first in the message', () => {
    const err = errorOf(`metdata:\n  name: p\nspec:\n  seletor: {}\n  pluginNmae: p\n`);
    expect(err.message).toBe(`${FILE}:1: metdata: not a WasmPlugin field; did you mean metadata? (and 2 more problems in ${FILE})`);
    expect(err.details!.split('\n')).toEqual([
      `${FILE}:1: metdata: not a WasmPlugin field; did you mean metadata?`,
      `${FILE}:4: spec.seletor: not a WasmPlugin field; did you mean spec.selector?`,
      `${FILE}:5: spec.pluginNmae: not a WasmPlugin field; did you mean spec.pluginName?`,
    ]);
  });

  it.each([
    ['a list where a mapping belongs', 'spec:\n  selector: [a]\n', `${FILE}:2: spec.selector: must be a mapping`],
    ['a mapping where a list belongs', 'spec:\n  targetRefs: {kind: Gateway}\n', `${FILE}:2: spec.targetRefs: must be a list`],
    ['a scalar document', 'just text\n', `${FILE}:1: must be a WasmPlugin manifest: a mapping with metadata and spec`],
    ['another kind', 'kind: EnvoyFilter\n', `${FILE}:1: kind: must be WasmPlugin or TrafficExtension, got "EnvoyFilter"`],
    ['another API version', 'apiVersion: networking.istio.io/v1\n', `${FILE}:1: apiVersion: must be extensions.istio.io/v1alpha1 (the WasmPlugin API this action applies), got "networking.istio.io/v1"`],
    ['broken YAML', 'metadata: {name: a\n', new RegExp(`^${FILE}:\\d+: not valid YAML: `)],
    ['a key written twice', 'spec:\n  phase: AUTHN\n  phase: AUTHZ\n', new RegExp(`^${FILE}:3: not valid YAML: Map keys must be unique`)],
    ['an empty file', '# nothing\n', `${FILE}: is empty; write the WasmPlugin the plugin is deployed as (metadata and spec), or delete the file`],
  ])('refuses %s', (_name, text, message) => {
    const err = errorOf(text);
    if (typeof message === 'string') expect(err.message).toBe(message);
    else expect(err.message).toMatch(message);
  });
});

describe('parsePluginManifest keeps every WasmPlugin field', () => {
  it('targetRef, targetRefs, verificationKey, labels, annotations, vmConfig, match, type', () => {
    const text = `${HEAD}metadata:
  name: p
  namespace: gateways
  labels:
    team: edge
  annotations:
    example.com/owner: ops
spec:
  targetRef:
    group: gateway.networking.k8s.io
    kind: Gateway
    name: gw
  targetRefs:
  - kind: Service
    name: api
    namespace: apps
  verificationKey: |
    -----BEGIN PUBLIC KEY-----
    abc
    -----END PUBLIC KEY-----
  imagePullPolicy: Always
  imagePullSecret: pull
  pluginName: p
  pluginConfig:
    any:
      nested: [1, {free: form}]
  phase: AUTHZ
  priority: 10
  failStrategy: FAIL_OPEN
  vmConfig:
    env:
    - name: POD_NAME
      valueFrom: HOST
  match:
  - mode: SERVER
    ports:
    - number: 8080
  type: HTTP
`;
    const { manifest, lineOf } = parsePluginManifest(text, FILE);
    expect(manifest.metadata).toEqual({ name: 'p', namespace: 'gateways', labels: { team: 'edge' }, annotations: { 'example.com/owner': 'ops' } });
    expect(manifest.spec).toEqual({
      targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' },
      targetRefs: [{ kind: 'Service', name: 'api', namespace: 'apps' }],
      verificationKey: '-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n',
      imagePullPolicy: 'Always',
      imagePullSecret: 'pull',
      pluginName: 'p',
      pluginConfig: { any: { nested: [1, { free: 'form' }] } },
      phase: 'AUTHZ',
      priority: 10,
      failStrategy: 'FAIL_OPEN',
      vmConfig: { env: [{ name: 'POD_NAME', valueFrom: 'HOST' }] },
      match: [{ mode: 'SERVER', ports: [{ number: 8080 }] }],
      type: 'HTTP',
    });
    expect(lineOf('spec.match[0].ports[0].number')).toBe(39);
    expect(lineOf('metadata.labels["team"]')).toBe(7);
    expect(lineOf('spec.targetRefs[0].group')).toBe(16);
    expect(lineOf('spec.url')).toBe(10); // not in the file: its nearest parent
  });

  it('a plugin without wasmplugin.yaml has an empty manifest', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asm-wasm-read-'));
    expect(readPluginFile(dir).manifest).toEqual({});
  });

  it('reads the reference plugin', () => {
    const file = readPluginFile(path.resolve(import.meta.dirname, '../../../plugin'));
    expect(file.manifest.metadata?.name).toBe('header-authorization');
    expect(file.manifest.spec?.pluginConfig).toMatchObject({ header: 'allow' });
  });
});

describe('nearest', () => {
  it('finds one-letter slips and swaps, not unrelated names', () => {
    expect(nearest('seletor', ['selector', 'url'])).toBe('selector');
    expect(nearest('slecetor', ['selector', 'url'])).toBe('selector');
    expect(nearest('URL', ['selector', 'url'])).toBe('url');
    expect(nearest('foo', ['selector', 'url'])).toBeUndefined();
  });
});

describe('readPluginConfig', () => {
  it('reads inline JSON and inline YAML', () => {
    expect(readPluginConfig('{"a": 1}')).toEqual({ a: 1 });
    expect(readPluginConfig('header: x-token\nvalue: yes-please')).toEqual({ header: 'x-token', value: 'yes-please' });
  });

  it('reads a file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asm-wasm-config-'));
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

  it('never quotes the value in an error (it is often a secret)', () => {
    const err = (() => {
      try {
        readPluginConfig('{"value": "hunter2-secret", ', os.tmpdir());
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).toMatch(/not valid YAML or JSON/);
    expect(err?.message).not.toContain('hunter2');
  });
});
