import { describe, expect, it } from 'vitest';
import { parseArgs, resultsFromSteps, usage } from '../../src/main.js';
import { INPUTS } from '../../src/inputs.js';

describe('parseArgs', () => {
  it('reads the stage and the flags', () => {
    expect(parseArgs(['test', '--plugin-dir', 'p', '--envoy-version=1.39.0', '--no-build', '--json'])).toEqual({
      command: 'test',
      raw: { 'plugin-dir': 'p', 'envoy-version': '1.39.0', build: 'false' },
      json: true,
      help: false,
    });
  });

  it.each([
    [[], /name a stage/],
    [['deploy-all'], /unknown stage "deploy-all"/],
    [['run', '--plugin-dri', 'x'], /unknown option --plugin-dri/],
    [['run', '--plugin-dir'], /option --plugin-dir needs a value/],
    [['run', 'extra'], /unexpected argument "extra"/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(message);
  });

  it('lists every input in --help', () => {
    const text = usage();
    for (const name of Object.keys(INPUTS)) expect(text).toContain(`--${name}`);
  });
});

describe('resultsFromSteps', () => {
  it('picks the build outputs out of the steps context', () => {
    const steps = JSON.stringify({ build: { outputs: { 'wasm-path': '/w/plugin.wasm', 'wasm-sha256': 'ab', 'wasm-size': '12' }, outcome: 'success' } });
    expect(resultsFromSteps({ ASM_WASM_STEPS: steps })).toEqual({ build: { wasmPath: '/w/plugin.wasm', sha256: 'ab', size: 12 } });
    expect(resultsFromSteps({ ASM_WASM_STEPS: '{}' })).toEqual({});
  });
});
