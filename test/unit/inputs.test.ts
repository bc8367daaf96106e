import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { INPUTS, SECRET_INPUTS, STEP_INPUTS, inputsFromEnv, parseInputs, type InputSpec } from '../../src/inputs.js';

const root = path.resolve(import.meta.dirname, '../..');

describe('parseInputs', () => {
  it('applies the defaults', () => {
    const inputs = parseInputs({}, root);
    expect(inputs).toMatchObject({
      pluginDir: path.join(root, 'plugin'),
      entry: 'assembly/index.ts',
      tests: path.join(root, 'plugin', 'tests.yaml'),
      envoyVersion: '1.40.0',
      testTimeoutSeconds: 120,
      stages: { toolchain: true, build: true, test: true, push: true, deploy: false },
      imageFormat: 'compat',
      tags: [],
    });
    expect(inputs.failStrategy).toBeUndefined();
  });

  it('reads booleans the way workflows write them', () => {
    expect(parseInputs({ test: 'false', build: 'no', toolchain: 'True' }, root).stages).toEqual({ toolchain: true, build: false, test: false, push: true, deploy: false });
  });

  it.each([
    [{ 'plugin-dri': 'plugin' }, /unknown input `plugin-dri`/],
    [{ 'plugin-dir': 'no-such-dir' }, /input `plugin-dir`: .*no-such-dir is not a directory/],
    [{ 'fail-strategy': 'FAIL_CLOSED' }, /input `fail-strategy` must be one of FAIL_CLOSE, FAIL_OPEN, FAIL_RELOAD/],
    [{ 'envoy-version': 'latest' }, /input `envoy-version` must be a release version/],
    [{ 'test-timeout': '-1' }, /input `test-timeout` must be a positive number/],
    [{ test: 'maybe' }, /input `test` must be true or false/],
    [{ 'assemblyscript-version': '^0.14' }, /input `assemblyscript-version` must be an exact version/],
  ])('rejects %o', (raw, message) => {
    expect(() => parseInputs(raw as Record<string, string>, root)).toThrow(message);
  });
});

describe('inputsFromEnv', () => {
  it('reads the JSON the composite steps pass', () => {
    expect(inputsFromEnv({ ASM_WASM_INPUTS: '{"plugin-dir":"p","test":"false"}' })).toEqual({ 'plugin-dir': 'p', test: 'false' });
    expect(inputsFromEnv({})).toEqual({});
  });

  it('says what is wrong with a broken value', () => {
    expect(() => inputsFromEnv({ ASM_WASM_INPUTS: '{plugin' })).toThrow(/ASM_WASM_INPUTS is not JSON/);
  });
});

describe('action.yml', () => {
  const action = YAML.parse(fs.readFileSync(path.join(root, 'action.yml'), 'utf8')) as {
    inputs: Record<string, { description: string; default?: string }>;
    outputs: Record<string, { description: string; value: string }>;
    runs: { using: string; steps: Array<{ id: string; if?: string; env?: Record<string, string>; run: string }> };
  };

  it('declares exactly the inputs the code knows, with the same descriptions and defaults', () => {
    expect(Object.keys(action.inputs).sort()).toEqual(Object.keys(INPUTS).sort());
    for (const [name, spec] of Object.entries(INPUTS) as Array<[string, InputSpec]>) {
      expect(action.inputs[name].description, name).toBe(spec.description);
      expect(action.inputs[name].default, name).toBe(spec.default);
    }
  });

  it('is a composite action whose steps get inputs only through env', () => {
    expect(action.runs.using).toBe('composite');
    for (const step of action.runs.steps) {
      expect(step.run).not.toMatch(/\$\{\{/);
      expect(step.run).toBe(`node "$GITHUB_ACTION_PATH/dist/index.js" ${step.id}`);
      expect(step.if).toBe(`inputs.${step.id} == 'true'`);
    }
  });

  it('hands each step the inputs of STEP_INPUTS, and credentials only to push and deploy', () => {
    for (const step of action.runs.steps) {
      const want = STEP_INPUTS[step.id as keyof typeof STEP_INPUTS];
      const text = step.env!.ASM_WASM_INPUTS;
      expect(text, step.id).not.toContain('toJSON(inputs)');
      const passed = [...text.matchAll(/"([\w-]+)": \$\{\{ toJSON\(inputs\.([\w-]+)\) \}\}/g)];
      // Each key is the input it carries, and the set is the table's.
      for (const [, key, input] of passed) expect(input, step.id).toBe(key);
      expect(passed.map((m) => m[1]).sort(), step.id).toEqual([...want].sort());
      if (step.id !== 'push' && step.id !== 'deploy') for (const secret of SECRET_INPUTS) expect(text, `${step.id} gets ${secret}`).not.toContain(`inputs.${secret}`);
    }
    // The signing key is push's alone; deploy verifies with the public key.
    expect(STEP_INPUTS.deploy).not.toContain('sign-key');
    expect(STEP_INPUTS.deploy).not.toContain('sign-key-password');
    expect(STEP_INPUTS.deploy).toEqual(expect.arrayContaining(['kubeconfig', 'registry-password', 'verify-key', 'tests']));
  });

  it('gives every stage it runs in the action what it reads: each step\'s inputs parse to the same values as all inputs', () => {
    const raw = { 'plugin-dir': '.', 'plugin-name': 'p', 'asc-target': 'debug', tests: 'package.json', 'envoy-version': '1.39.0', image: 'ghcr.io/o/p', tags: 'a,b' };
    const all = parseInputs(raw, root);
    const pick = (names: readonly string[]) => Object.fromEntries(Object.entries(raw).filter(([k]) => names.includes(k)));
    expect(parseInputs(pick(STEP_INPUTS.build), root)).toMatchObject({ pluginName: all.pluginName, ascTarget: 'debug', entry: all.entry });
    expect(parseInputs(pick(STEP_INPUTS.test), root)).toMatchObject({ tests: all.tests, envoyVersion: '1.39.0', pluginName: 'p' });
    expect(parseInputs(pick(STEP_INPUTS.push), root)).toMatchObject({ image: all.image, tags: ['a', 'b'] });
  });

  it('takes every output from a step that sets it', () => {
    const src = fs.readdirSync(path.join(root, 'src'), { recursive: true }).filter((f) => String(f).endsWith('.ts'));
    const code = src.map((f) => fs.readFileSync(path.join(root, 'src', String(f)), 'utf8')).join('\n');
    for (const [name, out] of Object.entries(action.outputs)) {
      const m = /^\$\{\{ steps\.(\w+)\.outputs\.([\w-]+) \}\}$/.exec(out.value);
      expect(m, name).not.toBeNull();
      expect(action.runs.steps.map((s) => s.id), name).toContain(m![1]);
      // A stage's renderer lists its outputs as [name, value] (src/stages/*/render.ts); setOutput sets one directly.
      expect(code.includes(`['${m![2]}', `) || code.includes(`setOutput('${m![2]}'`), `no stage sets output ${m![2]}`).toBe(true);
    }
  });
});

describe('push inputs', () => {
  it('splits the image into registry and repository, and the tags list', () => {
    const inputs = parseInputs({ image: 'registry.cn-hangzhou.aliyuncs.com/team/header-authorization', tags: 'v1.2.3, latest\nabc1234' }, root);
    expect(inputs.image).toEqual({ registry: 'registry.cn-hangzhou.aliyuncs.com', repository: 'team/header-authorization' });
    expect(inputs.tags).toEqual(['v1.2.3', 'latest', 'abc1234']);
    expect(parseInputs({ image: '127.0.0.1:5000/p' }, root).image).toEqual({ registry: '127.0.0.1:5000', repository: 'p' });
    expect(parseInputs({ image: 'team/p' }, root).image).toEqual({ registry: 'docker.io', repository: 'team/p' });
    expect(parseInputs({ image: 'ghcr.io/org/p' }, root).image).toEqual({ registry: 'ghcr.io', repository: 'org/p' });
  });

  it.each([
    [{ image: 'ghcr.io/org/p:v1' }, /input `image`: .* without a tag or digest/],
    [{ 'image-format': 'zstd' }, /input `image-format` must be one of compat, docker, wasm-artifact/],
    [{ 'registry-ca': '/nonexistent/ca.pem' }, /input `registry-ca`: \/nonexistent\/ca\.pem does not exist/],
    [{ force: 'sometimes' }, /input `force` must be true or false/],
  ])('rejects %o', (raw, message) => {
    expect(() => parseInputs(raw as Record<string, string>, root)).toThrow(message);
  });
});
