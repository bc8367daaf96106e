// A plugin deployed as a TrafficExtension (extensions.istio.io/v1alpha1, the
// API istiod of the pinned line translates every WasmPlugin into), through
// the product's own stages against real Istio: the CLI builds it, tests it
// in a local Envoy configured from the TrafficExtension's spec.wasm, pushes
// it to a real registry (TLS + basic auth) and applies the TrafficExtension
// to the tests' kube-apiserver, where Istio's CRD schema and istiod's
// validation webhook judge it; istiod turns it into an ECDS Wasm filter
// (`extensions.istio.io/trafficextension/<ns>.<name>`), the gateway fetches
// the module and enforces it, and verification reads Istio's own signals
// before it passes. Then a rollback: a configuration that denies everything
// fails verification and the previous TrafficExtension is put back.
//
// This file runs a gateway, as istio.test.ts does: the integration project
// runs one file at a time, so only one gateway holds the agent's fixed ports.
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readGatewayFilter } from '../../src/k8s/istio.js';
import { makePlugin, runCli } from '../helpers/cli.js';
import { httpGet, istioStartTimeout, startIstio, within, type Istio } from '../infra/istio.js';
import { kubeStartTimeout, startKube, type Kube } from '../infra/kube.js';
import { requireTools, startRegistry, type TestRegistry } from '../infra/registry.js';

const env = { RUNNER_TOOL_CACHE: inject('toolCache') };
const NS = 'istio-system';
const NAME = 'header-authorization-te';
const TE_PATH = `/apis/extensions.istio.io/v1alpha1/namespaces/${NS}/trafficextensions/${NAME}`;
let registry: TestRegistry;
let kube: Kube;
let istio: Istio;
let plugin: string;
let good: { url: string; digest: string };
const timings: Record<string, number> = {};

const MANIFEST = {
  apiVersion: 'extensions.istio.io/v1alpha1',
  kind: 'TrafficExtension',
  metadata: { name: NAME, namespace: NS },
  spec: {
    selector: { matchLabels: { istio: 'ingressgateway' } },
    phase: 'AUTHN',
    wasm: {
      pluginName: 'header-authorization',
      failStrategy: 'FAIL_CLOSE',
      pluginConfig: { header: 'allow', value: 'true', denyStatus: 403, denyBody: 'Forbidden by ASM Wasm Plugin, assemblyscript version\n' },
    },
  },
};

beforeAll(async () => {
  requireTools();
  const started = Date.now();
  [registry, kube] = await Promise.all([startRegistry('tls-basic', { realm: 'https://registry.asm-wasm.test/' }), startKube({ crd: false })]);
  istio = await startIstio(kube, {
    envoy: inject('envoyPath'),
    registryCaFile: registry.caFile,
    registryAuth: { registry: registry.host, username: registry.username!, password: registry.password! },
    validationWebhook: true,
  });
  timings.startAllMs = Date.now() - started;
  plugin = makePlugin({ files: { 'wasmplugin.yaml': YAML.stringify(MANIFEST) } });
}, kubeStartTimeout() + istioStartTimeout());

afterAll(async () => {
  console.log(`istio ${istio?.version} TrafficExtension timings (ms): ${JSON.stringify(timings)}`);
  await istio?.stop();
  await Promise.all([registry?.close(), kube?.stop()]);
});

function deployArgs(...extra: string[]): string[] {
  return [
    '--plugin-dir', plugin,
    '--kubeconfig', kube.kubeconfig('deployer'),
    '--verify-url', istio.gatewayUrl,
    '--gateway-admin-url', istio.adminUrl,
    '--gateway-status-url', istio.statusUrl,
    '--verify-timeout', '60',
    '--json',
    ...extra,
  ];
}

async function behaviour(): Promise<{ denied: number; allowed: number }> {
  const [denied, allowed] = await Promise.all([
    httpGet(`${istio.gatewayUrl}/status/418`),
    httpGet(`${istio.gatewayUrl}/status/418`, { allow: 'true' }),
  ]);
  return { denied: denied.status, allowed: allowed.status };
}

describe('a TrafficExtension through the whole flow on real Istio', () => {
  it('is refused by the API server until the deployer may write TrafficExtensions (the RBAC a user needs)', async () => {
    // The tests' deployer role covers wasmplugins only; a TrafficExtension needs its own rule.
    const denied = await runCli(['deploy', ...deployArgs('--url', `oci://${registry.host}/mesh/none@sha256:${'1'.repeat(64)}`, '--deploy-mode', 'dry-run')], env);
    expect(denied.code).toBe(1);
    expect(denied.json?.error).toMatch(/trafficextensions\.extensions\.istio\.io/);
    const rule = await kube.request('admin', 'PATCH', '/apis/rbac.authorization.k8s.io/v1/clusterroles/asm-wasm-deployer', [
      { op: 'add', path: '/rules/-', value: { apiGroups: ['extensions.istio.io'], resources: ['trafficextensions'], verbs: ['get', 'list', 'create', 'update', 'patch', 'delete'] } },
    ], 'application/json-patch+json');
    expect(rule.status).toBe(200);
  });

  it('builds, tests (Envoy configured from spec.wasm), pushes and applies it; the gateway enforces it once verification says so', async () => {
    expect(await behaviour()).toEqual({ denied: 418, allowed: 418 });
    const started = Date.now();
    const run = await runCli(
      [
        'run',
        ...deployArgs(
          '--image', `${registry.host}/mesh/header-authorization-te`,
          '--registry-username', registry.username!,
          '--registry-password', registry.password!,
          '--registry-ca', registry.caFile!,
          '--tags', 'v1',
          '--deploy', 'true',
        ),
      ],
      env,
    );
    timings.pipelineMs = Date.now() - started;
    expect(run.json?.error, run.stderr).toBeUndefined();
    const out = run.json!.outputs;
    expect(out).toMatchObject({ wasmplugin: `${NS}/${NAME}`, result: 'created' });
    good = { url: out.url, digest: out.digest };
    // The local test ran against the filter made from the TrafficExtension, and passed.
    expect(run.json!.results.test).toMatchObject({ failed: 0 });
    expect(run.json!.results.test.passed).toBeGreaterThan(0);
    const verification = run.json!.results.deploy.verification;
    expect(verification.passed).toBe(true);
    expect(verification.istio).toMatchObject({ passed: true, problems: [] });

    // What was applied is a TrafficExtension with the pushed image in spec.wasm, and no WasmPlugin.
    const live = await kube.request('admin', 'GET', TE_PATH);
    expect(live.status).toBe(200);
    expect(live.body.spec.wasm).toMatchObject({ url: good.url, sha256: good.digest.replace('sha256:', ''), pluginName: 'header-authorization' });
    expect((await kube.request('admin', 'GET', `/apis/extensions.istio.io/v1alpha1/namespaces/${NS}/wasmplugins/${NAME}`)).status).toBe(404);

    // istiod made it the TrafficExtension's own ECDS filter (not a translated WasmPlugin's), with the root id and configuration.
    const filter = await readGatewayFilter({ adminUrl: istio.adminUrl }, NS, NAME);
    expect(filter).toMatchObject({
      kind: 'wasm',
      resource: `extensions.istio.io/trafficextension/${NS}.${NAME}`,
      rootId: 'header-authorization',
      moduleSha256: good.digest.replace('sha256:', ''),
      configuration: MANIFEST.spec.wasm.pluginConfig,
    });
    expect(await behaviour()).toEqual({ denied: 403, allowed: 418 });
  });

  it('istiod\'s webhook judges a TrafficExtension the way the plugin model does', async () => {
    const bad = { ...MANIFEST, metadata: { name: 'bad-target', namespace: NS }, spec: { ...MANIFEST.spec, selector: undefined, targetRefs: [{ kind: 'Pod', name: 'x' }], wasm: { ...MANIFEST.spec.wasm, url: good.url } } };
    const res = await kube.request('admin', 'POST', `/apis/extensions.istio.io/v1alpha1/namespaces/${NS}/trafficextensions?dryRun=All`, bad);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/admission webhook .* denied the request: .*targetRef must be to one of/);
  });

  it('a configuration that denies everything fails verification, and the previous TrafficExtension is restored', async () => {
    const run = await runCli(['deploy', ...deployArgs('--url', good.url, '--plugin-config', '{"header": "allow", "value": "never-sent"}')], env);
    expect(run.code).toBe(1);
    expect(run.json!.error).toMatch(/verification of istio-system\/header-authorization-te failed/);
    expect(run.json!.error).toMatch(/rolled back: the previous spec was restored/);
    timings.rollbackMs = await within('the gateway to serve the good TrafficExtension again', 30_000, async () => {
      const b = await behaviour();
      return b.denied === 403 && b.allowed === 418;
    });
    const live = await kube.request('admin', 'GET', TE_PATH);
    expect(live.body.spec.wasm.pluginConfig.value).toBe('true');
  });
});
