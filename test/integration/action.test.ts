// The composite action run step by step by our emulation of the runner
// (test/helpers/runner.ts), for the one check act cannot make: that the
// credentials (registry-password, kubeconfig, cluster-kubeconfig) never reach
// the processes of the steps that run the plugin's own code. Each step here
// gets exactly the env its YAML maps, as on GitHub's runner, and the plugin's
// build script (run by the build step) writes out every variable it sees.
// Which inputs each step maps is checked against src/inputs.ts STEP_INPUTS by
// the unit tests; this test proves the mapping is all a step's processes get.
//
// Why not under act (nektos/act v0.2.89, test/infra/act.ts): act gives every
// step of a composite action an INPUT_<NAME> variable for every input of the
// action, the credentials included (pkg/runner/action_composite.go,
// evaluateCompositeInputAndEnv, merged into each step's env by
// pkg/runner/step.go mergeEnv); GitHub's runner sets no INPUT_ variables for
// a composite action's steps. In host mode act also hands this machine's whole
// environment to every step (pkg/runner/run_context.go, startHostEnvironment).
// Under act the build script would see the password whatever action.yml
// maps, so act cannot tell a leak in action.yml from its own behaviour.
//
// Everything else about the action under a runner (every stage and its
// outputs, a stage turned off, the first failing stage, an input the code
// does not know, the reusable workflow's jobs) is in act.test.ts, under act.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { describe, expect, inject, it } from 'vitest';
import { ROOT, makePlugin, tempDir } from '../helpers/cli.js';
import { runCompositeAction } from '../helpers/runner.js';

const env = { RUNNER_TOOL_CACHE: inject('toolCache') };

describe('action.yml run step by step, each step with only the env its YAML maps', () => {
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
});
