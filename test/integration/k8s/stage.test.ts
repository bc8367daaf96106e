// The deploy stage as the action and CLI run it, end to end: build, local
// Envoy test, push to a real registry, then the WasmPlugin against a real API
// server, pinned to the pushed digest, with wasmplugin.yaml's settings.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { makePlugin, runCli, tempDir } from '../../helpers/cli.js';
import { requireTools, startRegistry, type TestRegistry } from '../../infra/registry.js';
import { kubeStartTimeout, startKube, type Kube } from '../../infra/kube.js';

const env = { RUNNER_TOOL_CACHE: inject('toolCache') };
let registry: TestRegistry;
let kube: Kube;

beforeAll(async () => {
  requireTools();
  [registry, kube] = await Promise.all([startRegistry('http'), startKube()]);
}, kubeStartTimeout());

afterAll(async () => {
  await Promise.all([registry?.close(), kube?.stop()]);
});

describe('the deploy stage in the pipeline', () => {
  it('applies the WasmPlugin pinned to the pushed digest, then reports a re-apply as unchanged', async () => {
    const plugin = makePlugin();
    const image = `${registry.host}/mesh/header-authorization`;
    const args = ['run', '--plugin-dir', plugin, '--image', image, '--deploy', 'true', '--kubeconfig', kube.kubeconfig('deployer'), '--json'];
    const first = await runCli(args, env);
    expect(first.json!.error).toBeUndefined();
    const out = first.json!.outputs;
    expect(out).toMatchObject({ wasmplugin: 'istio-system/header-authorization', result: 'created', generation: '1' });

    const live = await kube.request('admin', 'GET', '/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins/header-authorization');
    const spec = (live.body as any).spec;
    expect(spec.url).toBe(`oci://${image}@${out.digest}`);
    expect(`sha256:${spec.sha256}`).toBe(out.digest);
    expect(spec).toMatchObject({
      pluginName: 'header-authorization',
      phase: 'AUTHN',
      failStrategy: 'FAIL_CLOSE',
      selector: { matchLabels: { istio: 'ingressgateway' } },
      pluginConfig: { header: 'allow', value: 'true', denyStatus: 403 },
    });

    const again = await runCli(args, env);
    expect(again.json!.error).toBeUndefined();
    expect(again.json!.outputs.result).toBe('unchanged');
  });

  it('dry-runs a changed configuration: shows which pluginConfig keys change, never their values, and changes nothing', async () => {
    const plugin = makePlugin();
    const before = await kube.request('admin', 'GET', '/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins/header-authorization');
    const summary = path.join(tempDir('summary'), 'summary.md');
    fs.writeFileSync(summary, '');
    const run = await runCli(
      ['run', '--plugin-dir', plugin, '--image', `${registry.host}/mesh/header-authorization`, '--no-test', '--plugin-config', '{"header": "x-api-key", "value": "s3cret-4711"}',
        '--deploy', 'true', '--deploy-mode', 'dry-run', '--kubeconfig', kube.kubeconfig('deployer'), '--json'],
      { ...env, GITHUB_STEP_SUMMARY: summary },
    );
    expect(run.json!.error).toBeUndefined();
    expect(run.json!.outputs.result).toBe('configured');
    const diff = run.json!.results.deploy.diff;
    expect(diff).toContain('-    denyBody: (hidden)');
    expect(diff).toContain('+    header: (hidden, changed)');
    expect(diff).toContain('+    value: (hidden, changed)');
    expect(run.json!.results.deploy.pluginConfigChanged).toEqual(['denyBody', 'denyStatus', 'header', 'value']);
    const written = fs.readFileSync(summary, 'utf8');
    expect(written).toContain('pluginConfig keys changed: `denyBody`, `denyStatus`, `header`, `value` (values are not shown)');
    // Neither the new secret nor the live one, anywhere a person reads.
    for (const text of [run.stdout, run.stderr, written]) {
      expect(text).not.toContain('s3cret-4711');
      expect(text).not.toContain('x-api-key');
      expect(text).not.toMatch(/value: "?true"?/);
    }
    const after = await kube.request('admin', 'GET', '/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins/header-authorization');
    expect((after.body as any).metadata.resourceVersion).toBe((before.body as any).metadata.resourceVersion);
  });

  it('refuses a misspelt wasmplugin.yaml before anything is built or sent', async () => {
    const plugin = makePlugin();
    const file = path.join(plugin, 'wasmplugin.yaml');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('  selector:', '  seletor:'));
    const run = await runCli(
      ['run', '--plugin-dir', plugin, '--name', 'misspelt', '--image', `${registry.host}/mesh/misspelt`, '--deploy', 'true', '--kubeconfig', kube.kubeconfig('deployer')],
      env,
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/wasmplugin\.yaml:\d+: spec\.seletor: not a WasmPlugin field; did you mean spec\.selector\?/);
    expect(fs.existsSync(path.join(plugin, 'build'))).toBe(false);
    const live = await kube.request('admin', 'GET', '/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins/misspelt');
    expect(live.status).toBe(404);
  });

  it('refuses to deploy an OCI layout, which no gateway can fetch', async () => {
    const run = await runCli(['run', '--plugin-dir', makePlugin(), '--no-test', '--deploy', 'true', '--kubeconfig', kube.kubeconfig('deployer')], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/wrote an OCI layout, which no gateway can fetch: set `image`/);
  });

  it('says which input is missing when there is no kubeconfig', async () => {
    const run = await runCli(['deploy', '--plugin-dir', makePlugin(), '--url', `oci://${registry.host}/x@sha256:${'a'.repeat(64)}`], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/input `kubeconfig` is empty/);
  });
});

describe('faults between the runner and the API server', () => {
  it('retries through connections that are reset, and deploys', async () => {
    const { startFaultyProxy } = await import('../../infra/faulty-proxy.js');
    const target = new URL(kube.server);
    const proxy = await startFaultyProxy({ target: { host: target.hostname, port: Number(target.port) }, resetFirst: 2, tls: true });
    try {
      const kubeconfig = kube.kubeconfig('deployer', { server: `https://127.0.0.1:${proxy.port}` });
      const url = `oci://${registry.host}/mesh/retried@sha256:${'b'.repeat(64)}`;
      const run = await runCli(['deploy', '--plugin-dir', makePlugin(), '--name', 'retried', '--url', url, '--kubeconfig', kubeconfig, '--json'], env);
      expect(run.json!.error).toBeUndefined();
      expect(run.json!.outputs.result).toBe('created');
      expect(proxy.faults()).toBe(2);
      expect(run.stderr).toMatch(/connection to .* was reset.*retrying in \d+ ms \(attempt 2 of 4\)/);
    } finally {
      await proxy.close();
    }
  });
});
