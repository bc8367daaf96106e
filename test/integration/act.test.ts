// The workflows under a real runner: act (nektos/act) in host mode runs
// (1) workflows with `uses: ./` on the reference plugin: every stage with the
// outputs checked in a later step, a stage turned off, a failing stage, an
// input action.yml declares that the code does not know (the one check act
// cannot make is in action.test.ts, which says why); and (2) the examples
// users copy, calling the reusable workflow through workflow_call: a pull
// request (build, test, dry run against the local API server) and a manual
// deploy to an environment: publish to a registry (TLS + basic auth) that a
// real Istio ingress gateway pulls from, apply, verify against that gateway
// with Istio's own signals, roll back when it does not pass
// (test/infra/istio.ts). The action and the reusable workflow are this
// working tree's (dist/ as it is now); the third-party actions are local
// stand-ins (test/infra/act/actions).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { actBinary, commitAll, copyOfThisRepository, ROOT, runAct, stepOutcomes, type ActOptions } from '../infra/act.js';
import { httpGet, istioStartTimeout, startIstio, within, type Istio } from '../infra/istio.js';
import { kubeStartTimeout, startKube, type Kube } from '../infra/kube.js';
import { requireTools, startRegistry, type TestRegistry } from '../infra/registry.js';

const REUSABLE = 'org/asm-wasm-action@v1';
const WASMPLUGIN = '/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins/header-authorization';

let registry: TestRegistry;
let kube: Kube;
let actionRepo: string;

beforeAll(async () => {
  actBinary();
  requireTools();
  registry = await startRegistry('http');
  kube = await startKube();
  // The action's repository as GitHub would serve `org/asm-wasm-action@v1`:
  // both the reusable workflow and the checkout of the action come from it.
  actionRepo = copyOfThisRepository(path.join(tempDir('act-action'), 'asm-wasm-action'));
  commitAll(actionRepo);
}, kubeStartTimeout() + 600_000);

afterAll(async () => {
  await kube?.stop();
  await registry?.close();
});

async function manifestDigest(repository: string, reference: string): Promise<string | undefined> {
  const res = await fetch(`http://${registry.host}/v2/${repository}/manifests/${reference}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  if (res.status !== 200) return undefined;
  return `sha256:${crypto.createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')}`;
}

async function live(k: Kube = kube): Promise<any> {
  const res = await k.request('admin', 'GET', WASMPLUGIN);
  return res.status === 404 ? null : res.body;
}

/**
 * A plugin repository as a user sets it up: the reference plugin, and one of
 * the example workflows copied to .github/workflows/, pointed at the local
 * registry instead of the example's.
 */
function pluginRepository(example: string, edit: (text: string) => string = (t) => t, registryHost = registry.host): { dir: string; workflow: string } {
  const dir = path.join(tempDir('act-plugin-repo'), 'repo');
  fs.cpSync(path.join(ROOT, 'plugin'), path.join(dir, 'plugin'), { recursive: true, filter: (f) => !/\/(node_modules|build|\.asm-wasm)(\/|$)/.test(f) });
  const text = fs.readFileSync(path.join(ROOT, 'examples', 'workflows', example), 'utf8');
  const ours = edit(text.replaceAll('registry.cn-hangzhou.aliyuncs.com/my-team/', `${registryHost}/my-team/`));
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
    expect(run.result.asc).toMatch(/^\d+\.\d+\.\d+$/);
    // The job summary the stages write.
    expect(run.log).toContain('Local Envoy test: 5 passed, 0 failed');
    expect(run.log).toContain('Pushed image');
  });

  /** test/infra/act/workflows/uses-local-stages.yml on a copy of this repository (edited by `edit`), with these vars. */
  async function runStages(vars: Record<string, string>, edit: (dir: string) => void = () => {}) {
    const workdir = copyOfThisRepository(path.join(tempDir('act-stages'), 'repo'));
    edit(workdir);
    commitAll(workdir);
    const run = await runAct({
      workdir,
      workflow: 'test/infra/act/workflows/uses-local-stages.yml',
      event: 'push',
      envoyPath: inject('envoyPath'),
      vars: { PLUGIN_DIR: 'plugin', ...vars },
    });
    expect(run.code, run.log).toBe(0);
    const ran = (stage: string) => stepsOf(run.log, stage).map((s) => s[2]);
    const stages = Object.fromEntries(
      [['toolchain', 'Install the AssemblyScript toolchain'], ['build', 'Build plugin.wasm'], ['test', 'Test the plugin in a local Envoy'], ['push', 'Push the OCI image'], ['deploy', 'Deploy the WasmPlugin']].map(
        // act logs no line for a step whose `if:` is false: no outcome is a skipped stage.
        ([id, name]) => [id, ran(name)[0] ?? 'skipped'],
      ),
    );
    return { ...run, stages };
  }

  it('skips a stage that is turned off, and its outputs stay empty', async () => {
    const run = await runStages({ TEST: 'false', PUSH: 'false' });
    expect(run.stages, run.log).toEqual({ toolchain: 'success', build: 'success', test: 'skipped', push: 'skipped', deploy: 'skipped' });
    expect(run.result.outcome).toBe('success');
    expect(run.result['test-passed']).toBe('');
    expect(run.result.digest).toBe('');
    expect(run.result['wasm-sha256']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('stops at the first failing stage', async () => {
    const run = await runStages({ PLUGIN_NAME: 'no-such-root' });
    expect(run.result.outcome).toBe('failure');
    expect(run.stages, run.log).toEqual({ toolchain: 'success', build: 'failure', test: 'skipped', push: 'skipped', deploy: 'skipped' });
    expect(run.log).toMatch(/::error::the plugin does not register root id "no-such-root"/);
  });

  it('fails when a step of action.yml hands its stage an input the code does not know', async () => {
    // Each step passes its stage a JSON object of inputs (STEP_INPUTS); a name the code does not read is refused, not ignored.
    const run = await runStages({ TOOLCHAIN: 'false', BUILD: 'false', TEST: 'false', PUSH: 'false', DEPLOY: 'true' }, (dir) => {
      const file = path.join(dir, 'action.yml');
      const text = fs.readFileSync(file, 'utf8');
      const at = text.indexOf('id: deploy');
      expect(at).toBeGreaterThan(0);
      fs.writeFileSync(file, text.slice(0, at) + text.slice(at).replace('"plugin-dir": ${{ toJSON(inputs.plugin-dir) }}', '"plugin-dri": ${{ toJSON(inputs.plugin-dir) }}'));
    });
    expect(run.result.outcome).toBe('failure');
    expect(run.stages, run.log).toEqual({ toolchain: 'skipped', build: 'skipped', test: 'skipped', push: 'skipped', deploy: 'failure' });
    expect(run.log).toMatch(/::error::unknown input `plugin-dri`/);
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
      // Never reached: the deploy job stops before the action runs.
      vars: { GATEWAY_URL: 'http://127.0.0.1:9' },
    });
    expect(run.code, run.log).not.toBe(0);
    expect(run.log).toMatch(/the secret ASM_KUBECONFIG is empty in the deploy job/);
    expect(stepsOf(run.log, 'Deploy the WasmPlugin')).toEqual([]);
    expect(await live()).toBeNull();
  });
});

describe('act: a manual deploy verified against a real Istio gateway', () => {
  // Its own registry and API server: the registry is the kind Istio's fetcher
  // accepts (TLS + basic auth with a URL realm, as in istio.test.ts), and the
  // API server serves Istio's own CRDs, which istiod needs.
  let secure: TestRegistry;
  let mesh: Kube;
  let istio: Istio;

  beforeAll(async () => {
    [secure, mesh] = await Promise.all([startRegistry('tls-basic', { realm: 'https://registry.asm-wasm.test/' }), startKube({ crd: false })]);
    istio = await startIstio(mesh, {
      envoy: inject('envoyPath'),
      registryCaFile: secure.caFile,
      registryAuth: { registry: secure.host, username: secure.username!, password: secure.password! },
    });
  }, kubeStartTimeout() + istioStartTimeout());

  afterAll(async () => {
    await istio?.stop();
    await Promise.all([secure?.close(), mesh?.stop()]);
  });

  /**
   * deploy.yml as the user copies it, with the gateway's admin and status URLs
   * passed to the reusable workflow, and `more` lines added to its `with:`.
   */
  function deployRepository(more: Record<string, string> = {}) {
    const lines = { 'gateway-admin-url': istio.adminUrl, 'gateway-status-url': istio.statusUrl, ...more };
    return pluginRepository(
      'deploy.yml',
      (t) => t.replace(/^( {6})environment: (.*)$/m, (line, indent: string) => [line, ...Object.entries(lines).map(([k, v]) => `${indent}${k}: '${v}'`)].join('\n')),
      secure.host,
    );
  }

  function deploy(repo: { dir: string; workflow: string }, environment: string, tag: string) {
    return runExample(repo, {
      event: 'workflow_dispatch',
      payload: { inputs: { environment, tag, 'dry-run': false } },
      // Repository secrets for the push, the environment's kubeconfig for the deploy.
      secrets: { REGISTRY_USERNAME: secure.username!, REGISTRY_PASSWORD: secure.password!, ASM_KUBECONFIG: mesh.kubeconfig('deployer') },
      vars: { GATEWAY_URL: istio.gatewayUrl },
      // The runner machine trusts the registry's CA, as a self-hosted runner trusts its company's.
      env: { NODE_EXTRA_CA_CERTS: secure.caFile! },
      timeoutMs: 300_000,
    });
  }

  /** The digest of repository:reference in the TLS registry. */
  function manifestDigestTls(repository: string, reference: string): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      const req = https.get(
        `https://${secure.host}/v2/${repository}/manifests/${reference}`,
        {
          ca: fs.readFileSync(secure.caFile!),
          headers: { accept: 'application/vnd.oci.image.manifest.v1+json', authorization: `Basic ${Buffer.from(`${secure.username}:${secure.password}`).toString('base64')}` },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(res.statusCode === 200 ? `sha256:${crypto.createHash('sha256').update(Buffer.concat(chunks)).digest('hex')}` : undefined));
        },
      );
      req.on('error', reject);
    });
  }

  /** Status codes of the gateway without the allow header and with `allow: true`. */
  async function behaviour(): Promise<{ denied: number; allowed: number }> {
    const [denied, allowed] = await Promise.all([httpGet(`${istio.gatewayUrl}/status/418`), httpGet(`${istio.gatewayUrl}/status/418`, { allow: 'true' })]);
    return { denied: denied.status, allowed: allowed.status };
  }

  let goodSpec: any;

  it('publish, apply, verify against the gateway, which then enforces the plugin', async () => {
    expect(await behaviour()).toEqual({ denied: 418, allowed: 418 });
    const run = await deploy(deployRepository(), 'staging', 'v1.0.0');
    expect(run.code, run.log).toBe(0);
    expect(stepsOf(run.log, 'Deploy the WasmPlugin').map((s) => s[2])).toEqual(['success']);
    const digest = await manifestDigestTls('my-team/header-authorization', 'v1.0.0');
    expect(digest).toMatch(/^sha256:/);
    // The publish job attested the digest it pushed, under the image's full name.
    expect(run.result.attested).toBe(`${secure.host}/my-team/header-authorization@${digest}`);
    const wasmplugin = await live(mesh);
    expect(wasmplugin?.spec.url).toBe(`oci://${secure.host}/my-team/header-authorization@${digest}`);
    goodSpec = wasmplugin.spec;
    // Verified with Istio's signals: the gateway's config dump shows this apply's filter.
    expect(run.log).toMatch(/the gateway runs this apply: Wasm filter/);
    expect(run.log).toMatch(/verif/i);
    expect(await behaviour()).toEqual({ denied: 403, allowed: 418 });
  });

  it('rolls back when the gateway does not answer as the tests say, and the gateway serves the previous deploy again', async () => {
    expect(goodSpec, 'the previous test deployed').toBeTruthy();
    // A selector that matches no gateway: the apply goes through, but the
    // gateway drops the plugin and lets through what tests.yaml says it denies.
    // Ten seconds for the gateway instead of two minutes.
    const repo = deployRepository({ selector: 'istio=no-such-gateway', 'verify-timeout': '10' });
    const run = await deploy(repo, 'production', '');
    expect(run.code, run.log).not.toBe(0);
    expect(stepsOf(run.log, 'Deploy the WasmPlugin').map((s) => s[2])).toEqual(['failure']);
    expect(run.log).toMatch(/a request without the allow header is denied \| FAIL \| 418/);
    expect(run.log).toMatch(/rolled back/);
    expect((await live(mesh))?.spec).toEqual(goodSpec);
    await within('the gateway to enforce the previous deploy again', 30_000, async () => {
      const b = await behaviour();
      return b.denied === 403 && b.allowed === 418;
    });
  });
});
