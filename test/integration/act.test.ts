// The workflows under a real runner: act (nektos/act) in host mode runs
// (1) a workflow with `uses: ./` on the reference plugin, checking the
// action's outputs in a later step, and (2) the examples users copy, calling
// the reusable workflow through workflow_call: a pull request (build, test,
// dry run against the local API server) and a manual deploy to an
// environment (publish to the local registry, apply, verify against a local
// gateway Envoy, roll back when it does not pass). The action and the
// reusable workflow are this working tree's (dist/ as it is now); the
// third-party actions are local stand-ins (test/infra/act/actions).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { fixtureSource, makePlugin, tempDir } from '../helpers/cli.js';
import { compilePlugin, startGateway, type Gateway } from '../helpers/gateway.js';
import { actBinary, commitAll, copyOfThisRepository, ROOT, runAct, stepOutcomes, type ActOptions } from '../infra/act.js';
import { kubeStartTimeout, startKube, type Kube } from '../infra/kube.js';
import { requireTools, startRegistry, type TestRegistry } from '../infra/registry.js';

const REUSABLE = 'org/asm-wasm-action@v1';
const WASMPLUGIN = '/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins/header-authorization';
// What the reference plugin's wasmplugin.yaml configures; the gateway Envoys run it.
const REFERENCE_CONFIG = { header: 'allow', value: 'true', denyStatus: 403, denyBody: 'Forbidden by ASM Wasm Plugin, assemblyscript version\n' };

let registry: TestRegistry;
let kube: Kube;
let actionRepo: string;
let good: Gateway;
let denyAll: Gateway;

beforeAll(async () => {
  actBinary();
  requireTools();
  registry = await startRegistry('http');
  kube = await startKube();
  // The action's repository as GitHub would serve `org/asm-wasm-action@v1`:
  // both the reusable workflow and the checkout of the action come from it.
  actionRepo = copyOfThisRepository(path.join(tempDir('act-action'), 'asm-wasm-action'));
  commitAll(actionRepo);
  good = await startGateway(await compilePlugin(), { config: REFERENCE_CONFIG });
  denyAll = await startGateway(await compilePlugin(makePlugin({ source: fixtureSource('deny-all') })), { config: REFERENCE_CONFIG });
}, kubeStartTimeout() + 600_000);

afterAll(async () => {
  await good?.stop();
  await denyAll?.stop();
  await kube?.stop();
  await registry?.close();
});

async function manifestDigest(repository: string, reference: string): Promise<string | undefined> {
  const res = await fetch(`http://${registry.host}/v2/${repository}/manifests/${reference}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  if (res.status !== 200) return undefined;
  return `sha256:${crypto.createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')}`;
}

async function live(): Promise<any> {
  const res = await kube.request('admin', 'GET', WASMPLUGIN);
  return res.status === 404 ? null : res.body;
}

/**
 * A plugin repository as a user sets it up: the reference plugin, and one of
 * the example workflows copied to .github/workflows/, pointed at the local
 * registry instead of the example's.
 */
function pluginRepository(example: string, edit: (text: string) => string = (t) => t): { dir: string; workflow: string } {
  const dir = path.join(tempDir('act-plugin-repo'), 'repo');
  fs.cpSync(path.join(ROOT, 'plugin'), path.join(dir, 'plugin'), { recursive: true, filter: (f) => !/\/(node_modules|build|\.asm-wasm)(\/|$)/.test(f) });
  const text = fs.readFileSync(path.join(ROOT, 'examples', 'workflows', example), 'utf8');
  const ours = edit(text.replaceAll('registry.cn-hangzhou.aliyuncs.com/my-team/', `${registry.host}/my-team/`));
  expect(ours).toContain(`uses: ${REUSABLE.replace('@', '/.github/workflows/wasm-plugin.yml@')}`);
  const workflow = path.join('.github', 'workflows', example);
  fs.mkdirSync(path.join(dir, '.github', 'workflows'), { recursive: true });
  fs.writeFileSync(path.join(dir, workflow), ours);
  commitAll(dir);
  return { dir, workflow };
}

/** Runs a plugin repository's workflow with the reusable workflow and the action served from this working tree. */
function runExample(repo: { dir: string; workflow: string }, options: Omit<ActOptions, 'workdir' | 'workflow' | 'envoyPath'>) {
  return runAct({
    workdir: repo.dir,
    workflow: repo.workflow,
    envoyPath: inject('envoyPath'),
    localRepositories: [`${REUSABLE}=${actionRepo}`],
    // job.workflow_repository@job.workflow_sha: act (patched) gives the ref the caller named.
    checkouts: [`${REUSABLE}=${actionRepo}`],
    ...options,
  });
}

function stepsOf(log: string, step: string) {
  return stepOutcomes(log).filter(([, name]) => name === step);
}

describe('act: uses ./ on the reference plugin', () => {
  it('runs every stage, and a later step reads the outputs', async () => {
    const workdir = copyOfThisRepository(path.join(tempDir('act-self'), 'repo'));
    commitAll(workdir);
    const run = await runAct({
      workdir,
      workflow: 'test/infra/act/workflows/uses-local.yml',
      event: 'push',
      envoyPath: inject('envoyPath'),
      vars: { TEST_REGISTRY: registry.host, PLUGIN_DIR: 'plugin' },
    });
    expect(run.code, run.log).toBe(0);
    expect(stepsOf(run.log, 'The outputs are set'), run.log).toEqual([['act-uses-local/plugin', 'The outputs are set', 'success']]);
    for (const stage of ['Install the AssemblyScript toolchain', 'Build plugin.wasm', 'Test the plugin in a local Envoy', 'Push the OCI image']) {
      expect(stepsOf(run.log, stage).map((s) => s[2]), stage).toEqual(['success']);
    }
    // The registry has the tag the workflow asked for, and its digest is the output.
    expect(run.result.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await manifestDigest('ci/header-authorization', 'act-1')).toBe(run.result.digest);
    expect(run.result.url).toBe(`oci://${registry.host}/ci/header-authorization@${run.result.digest}`);
    expect(Number(run.result['test-passed'])).toBeGreaterThan(0);
  });
});

describe('act: the examples through the reusable workflow', () => {
  it('a pull request: build, test, and a dry run against the API server that changes nothing', async () => {
    const repo = pluginRepository('pr-check.yml');
    const run = await runExample(repo, {
      event: 'pull_request',
      job: 'check',
      payload: { pull_request: { number: 7, head: { repo: { full_name: 'org/plugin-repo' } }, base: { sha: 'a'.repeat(40) } } },
      secrets: { ASM_KUBECONFIG: kube.kubeconfig('deployer') },
    });
    expect(run.code, run.log).toBe(0);
    expect(stepsOf(run.log, 'Test the plugin in a local Envoy').map((s) => s[2])).toEqual(['success']);
    // No publish job for a pull request: the dry run uses the digest the build job computed.
    expect(stepOutcomes(run.log).filter(([job]) => job.includes('Publish the image'))).toEqual([]);
    expect(stepsOf(run.log, 'Deploy the WasmPlugin').map((s) => s[2]), run.log).toEqual(['success']);
    expect(run.log).toMatch(/would be created|result=created/);
    expect(await live()).toBeNull();
  });

  it('a pull request from a fork: build and test only, nothing that holds a secret runs', async () => {
    const repo = pluginRepository('pr-check.yml');
    const run = await runExample(repo, {
      event: 'pull_request',
      job: 'check',
      payload: { pull_request: { number: 8, head: { repo: { full_name: 'someone/fork' } }, base: { sha: 'a'.repeat(40) } } },
      secrets: { ASM_KUBECONFIG: kube.kubeconfig('deployer') },
    });
    expect(run.code, run.log).toBe(0);
    expect(stepsOf(run.log, 'Test the plugin in a local Envoy').map((s) => s[2])).toEqual(['success']);
    expect(stepOutcomes(run.log).filter(([job]) => /Publish the image|Deploy the WasmPlugin/.test(job))).toEqual([]);
  });

  it('a manual deploy to an environment: publish, apply, verify against the gateway', async () => {
    const repo = pluginRepository('deploy.yml');
    const run = await runExample(repo, {
      event: 'workflow_dispatch',
      payload: { inputs: { environment: 'staging', tag: 'v1.0.0', 'dry-run': false } },
      secrets: { ASM_KUBECONFIG: kube.kubeconfig('deployer') },
      vars: { GATEWAY_URL: good.url },
    });
    expect(run.code, run.log).toBe(0);
    expect(stepsOf(run.log, 'Deploy the WasmPlugin').map((s) => s[2])).toEqual(['success']);
    const digest = await manifestDigest('my-team/header-authorization', 'v1.0.0');
    expect(digest).toMatch(/^sha256:/);
    const wasmplugin = await live();
    expect(wasmplugin?.spec.url).toBe(`oci://${registry.host}/my-team/header-authorization@${digest}`);
    expect(run.log).toMatch(/verif/i);
  });

  it('rolls back when the gateway does not answer as the tests say', async () => {
    await kube.request('admin', 'DELETE', WASMPLUGIN);
    // Ten seconds for the gateway instead of two minutes.
    const repo = pluginRepository('deploy.yml', (t) => t.replace(/^( {6})environment: (.*)$/m, "$1environment: $2\n$1verify-timeout: '10'"));
    const run = await runExample(repo, {
      event: 'workflow_dispatch',
      payload: { inputs: { environment: 'production', tag: '', 'dry-run': false } },
      secrets: { ASM_KUBECONFIG: kube.kubeconfig('deployer') },
      vars: { GATEWAY_URL: denyAll.url },
    });
    expect(run.code, run.log).not.toBe(0);
    expect(stepsOf(run.log, 'Deploy the WasmPlugin').map((s) => s[2])).toEqual(['failure']);
    expect(run.log).toMatch(/rolled back/);
    expect(await live()).toBeNull();
  });

  it('refuses an apply with no gateway URL before it changes anything', async () => {
    const repo = pluginRepository('deploy.yml');
    const run = await runExample(repo, {
      event: 'workflow_dispatch',
      payload: { inputs: { environment: 'staging', tag: '', 'dry-run': false } },
      secrets: { ASM_KUBECONFIG: kube.kubeconfig('deployer') },
    });
    expect(run.code, run.log).not.toBe(0);
    expect(run.log).toMatch(/no gateway URL to verify the apply against/);
    expect(stepsOf(run.log, 'Deploy the WasmPlugin')).toEqual([]);
    expect(await live()).toBeNull();
  });

  it('a caller that does not pass the secrets deploys nothing, and says why', async () => {
    const repo = pluginRepository('deploy.yml', (t) => t.replace(/^ {4}secrets: inherit\n/m, ''));
    const run = await runExample(repo, {
      event: 'workflow_dispatch',
      payload: { inputs: { environment: 'staging', tag: '', 'dry-run': false } },
      secrets: { ASM_KUBECONFIG: kube.kubeconfig('deployer') },
      vars: { GATEWAY_URL: good.url },
    });
    expect(run.code, run.log).not.toBe(0);
    expect(run.log).toMatch(/the secret ASM_KUBECONFIG is empty in the deploy job/);
    expect(stepsOf(run.log, 'Deploy the WasmPlugin')).toEqual([]);
    expect(await live()).toBeNull();
  });
});
