// The composite action as the runner runs it: each step of action.yml in
// order, with the env its YAML maps, against the real local Envoy and a real
// registry; then the outputs action.yml declares.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ROOT, makePlugin, tempDir } from '../helpers/cli.js';
import { runCompositeAction } from '../helpers/runner.js';
import { requireTools, startRegistry, type TestRegistry } from '../infra/registry.js';

const env = { RUNNER_TOOL_CACHE: inject('toolCache') };
let registry: TestRegistry;

beforeAll(async () => {
  requireTools();
  registry = await startRegistry('http');
});
afterAll(async () => {
  await registry?.close();
});

describe('action.yml run step by step', () => {
  it('runs every stage and sets the outputs it declares', async () => {
    const plugin = makePlugin();
    const image = `${registry.host}/ci/header-authorization`;
    const run = await runCompositeAction({ actionDir: ROOT, with: { 'plugin-dir': plugin, image, tags: 'ci' }, workdir: tempDir('action'), env });
    expect(run.steps.map((s) => [s.id, s.outcome])).toEqual([['toolchain', 'success'], ['build', 'success'], ['test', 'success'], ['push', 'success'], ['deploy', 'skipped']]);
    const wasm = fs.readFileSync(run.outputs['wasm-path']);
    expect(run.outputs['wasm-sha256']).toBe(crypto.createHash('sha256').update(wasm).digest('hex'));
    expect(run.outputs['wasm-size']).toBe(String(wasm.length));
    expect(run.outputs['assemblyscript-version']).toBe('0.14.13');
    expect(run.outputs['test-passed']).toBe('5');
    expect(run.outputs['test-failed']).toBe('0');
    expect(run.outputs.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(run.outputs.url).toBe(`oci://${image}@${run.outputs.digest}`);
    expect(run.outputs.tags).toBe('ci');
    // The registry has it under the tag, and the manifest's digest is the output.
    const res = await fetch(`http://${registry.host}/v2/ci/header-authorization/manifests/ci`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(res.status).toBe(200);
    expect(`sha256:${crypto.createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')}`).toBe(run.outputs.digest);
    expect(run.summary).toContain('Local Envoy test: 5 passed, 0 failed');
    expect(run.summary).toContain('Pushed image');
  });

  it('skips a stage that is turned off, and its outputs stay empty', async () => {
    const run = await runCompositeAction({ actionDir: ROOT, with: { 'plugin-dir': makePlugin(), test: 'false', push: 'false' }, workdir: tempDir('action'), env });
    expect(run.steps.map((s) => [s.id, s.outcome])).toEqual([['toolchain', 'success'], ['build', 'success'], ['test', 'skipped'], ['push', 'skipped'], ['deploy', 'skipped']]);
    expect(run.outputs['test-passed']).toBe('');
    expect(run.outputs['wasm-sha256']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('stops at the first failing stage', async () => {
    const run = await runCompositeAction({ actionDir: ROOT, with: { 'plugin-dir': makePlugin(), 'plugin-name': 'no-such-root' }, workdir: tempDir('action'), env });
    expect(run.failed).toBe(true);
    expect(run.steps.map((s) => [s.id, s.outcome])).toEqual([['toolchain', 'success'], ['build', 'failure'], ['test', 'skipped'], ['push', 'skipped'], ['deploy', 'skipped']]);
    expect(run.steps[1].stdout).toMatch(/::error::the plugin does not register root id "no-such-root"/);
  });

  it('hands no credential to the steps that run the plugin\'s own code', async () => {
    const password = `registry-secret-${crypto.randomBytes(8).toString('hex')}`;
    const token = `kube-token-${crypto.randomBytes(8).toString('hex')}`;
    const kubeconfig = `apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: ${token}\n`;
    // The plugin's build script writes out every variable it can see.
    const plugin = makePlugin({ asbuild: 'env > build-env.txt && asc assembly/index.ts -b build/plugin.wasm --use abort=abort_proc_exit --optimize --runtime full --noAssert' });
    const run = await runCompositeAction({
      actionDir: ROOT,
      with: { 'plugin-dir': plugin, push: 'false', 'registry-password': password, kubeconfig, 'cluster-kubeconfig': kubeconfig },
      workdir: tempDir('action'),
      env,
    });
    expect(run.steps.map((s) => [s.id, s.outcome])).toEqual([['toolchain', 'success'], ['build', 'success'], ['test', 'success'], ['push', 'skipped'], ['deploy', 'skipped']]);
    const seen = fs.readFileSync(`${plugin}/build-env.txt`, 'utf8');
    expect(seen).toContain('PATH=');
    expect(seen).not.toContain(password);
    expect(seen).not.toContain(token);
    expect(seen).not.toMatch(/^(ASM_WASM_INPUTS|INPUT_)/m);
  });

  it('fails when action.yml declares an input the code does not know', async () => {
    // The deploy step gets every input; a declared name the code does not read is refused there.
    const yaml = fs.readFileSync(`${ROOT}/action.yml`, 'utf8').replace(/^ {2}plugin-dir:$/m, '  plugin-dri:\n    description: misspelled\n  plugin-dir:');
    const off = { toolchain: 'false', build: 'false', test: 'false', push: 'false', deploy: 'true' };
    const run = await runCompositeAction({ actionDir: ROOT, actionYaml: yaml, with: off, workdir: tempDir('action'), env });
    expect(run.failed).toBe(true);
    expect(run.steps[4].stdout).toMatch(/::error::unknown input `plugin-dri`/);
  });
});
