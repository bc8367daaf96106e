// The deploy stage as the action and CLI run it, end to end: build, local
// Envoy test, push to a real registry, then the WasmPlugin against a real API
// server, pinned to the pushed digest, with wasmplugin.yaml's settings.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { makePlugin, runCli } from '../../helpers/cli.js';
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

  it('dry-runs a changed configuration: shows the diff and changes nothing', async () => {
    const plugin = makePlugin();
    const before = await kube.request('admin', 'GET', '/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins/header-authorization');
    const run = await runCli(
      ['run', '--plugin-dir', plugin, '--image', `${registry.host}/mesh/header-authorization`, '--no-test', '--plugin-config', '{"header": "x-api-key", "value": "s3cret"}',
        '--deploy', 'true', '--deploy-mode', 'dry-run', '--kubeconfig', kube.kubeconfig('deployer'), '--json'],
      env,
    );
    expect(run.json!.error).toBeUndefined();
    expect(run.json!.outputs.result).toBe('configured');
    expect(run.json!.results.deploy.diff).toMatch(/-\s+header: allow/);
    expect(run.json!.results.deploy.diff).toMatch(/\+\s+header: x-api-key/);
    const after = await kube.request('admin', 'GET', '/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins/header-authorization');
    expect((after.body as any).metadata.resourceVersion).toBe((before.body as any).metadata.resourceVersion);
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
