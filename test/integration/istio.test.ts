// The whole flow against real Istio: istiod (out of cluster, on the tests'
// kube-apiserver with Istio's own CRDs) and an ingress gateway (pilot-agent
// running Envoy) that fetches the plugin from a real registry (TLS + basic
// auth). The product's CLI builds, tests, pushes and deploys; verification
// reads Istio's own signals (the gateway's config dump and the agent's
// metrics). Then the ways a deploy goes wrong on a real gateway, each of which
// must fail the step with Istio's reason and leave the gateway serving what
// it served before.
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readAgentMetrics, readGatewayFilter } from '../../src/k8s/istio.js';
import { makePlugin, runCli, tempDir } from '../helpers/cli.js';
import { httpGet, istioCrds, istioStartTimeout, startIstio, within, type Istio } from '../infra/istio.js';
import { kubeStartTimeout, startKube, type Kube } from '../infra/kube.js';
import { requireTools, startRegistry, type TestRegistry } from '../infra/registry.js';

const env = { RUNNER_TOOL_CACHE: inject('toolCache') };
let registry: TestRegistry;
let kube: Kube;
let istio: Istio;
let plugin: string;
/** The good deploy: its url and sha256, what every failure must come back to. */
let good: { url: string; digest: string };
const timings: Record<string, number> = {};

const NS = 'istio-system';
const NAME = 'header-authorization';

beforeAll(async () => {
  requireTools();
  const started = Date.now();
  [registry, kube] = await Promise.all([startRegistry('tls-basic', { realm: 'https://registry.asm-wasm.test/' }), startKube({ crd: false })]);
  istio = await startIstio(kube, {
    envoy: inject('envoyPath'),
    registryCaFile: registry.caFile,
    registryAuth: { registry: registry.host, username: registry.username!, password: registry.password! },
  });
  timings.startAllMs = Date.now() - started;
  Object.assign(timings, istio.timings);
  plugin = makePlugin();
}, kubeStartTimeout() + istioStartTimeout());

afterAll(async () => {
  console.log(`istio ${istio?.version} timings (ms): ${JSON.stringify(timings)}`);
  if (process.env.ASM_WASM_ISTIO_LOG) console.log(istio?.agentLog().split('\n').filter((l) => /wasm/i.test(l)).slice(-40).join('\n'));
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

/** Status codes of the gateway without the allow header and with `allow: true`. */
async function behaviour(): Promise<{ denied: number; allowed: number }> {
  const [denied, allowed] = await Promise.all([
    httpGet(`${istio.gatewayUrl}/status/418`),
    httpGet(`${istio.gatewayUrl}/status/418`, { allow: 'true' }),
  ]);
  return { denied: denied.status, allowed: allowed.status };
}

/** Milliseconds until the gateway runs the good deploy again and answers as it did. */
async function backToGood(): Promise<number> {
  return within('the gateway to serve the good deploy again', 30_000, async () => {
    const filter = await readGatewayFilter({ adminUrl: istio.adminUrl }, NS, NAME);
    if (filter.kind !== 'wasm' || filter.moduleSha256 !== good.digest.replace('sha256:', '')) return false;
    const b = await behaviour();
    return b.denied === 403 && b.allowed === 418;
  });
}

function verifySeconds(stderr: string): number {
  const m = /Verification FAILED after \d+ attempt\(s\), ([\d.]+)s/.exec(stderr);
  return m ? Number(m[1]) : NaN;
}

async function live() {
  const res = await kube.request('admin', 'GET', `/apis/extensions.istio.io/v1alpha1/namespaces/${NS}/wasmplugins/${NAME}`);
  return res.body as any;
}

describe('Istio in the loop', () => {
  it('uses Istio\'s own WasmPlugin CRD; our hand-written copy agrees with it', () => {
    const istioCrd = istioCrds().find((c) => c.metadata.name === 'wasmplugins.extensions.istio.io');
    const ours = YAML.parse(fs.readFileSync(path.join(import.meta.dirname, '../infra/kube/wasmplugin-crd.yaml'), 'utf8'));
    expect(ours.spec.names.kind).toBe(istioCrd.spec.names.kind);
    const served = (crd: any) => crd.spec.versions.filter((v: any) => v.served).map((v: any) => v.name);
    for (const v of served(ours)) expect(served(istioCrd)).toContain(v);
    const props = (crd: any, version: string) =>
      Object.keys(crd.spec.versions.find((v: any) => v.name === version).schema.openAPIV3Schema.properties.spec.properties).sort();
    for (const v of served(ours)) {
      for (const field of props(ours, v)) expect(props(istioCrd, v)).toContain(field);
    }
  });

  it('builds, tests, pushes and deploys; the gateway enforces the plugin once verification says so', async () => {
    expect(await behaviour()).toEqual({ denied: 418, allowed: 418 });
    const started = Date.now();
    const run = await runCli(
      [
        'run',
        ...deployArgs(
          '--image', `${registry.host}/mesh/header-authorization`,
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
    const verification = run.json!.results.deploy.verification;
    expect(verification.passed).toBe(true);
    expect(verification.istio).toMatchObject({ passed: true, problems: [] });
    expect(verification.istio.filter).toContain(good.digest.slice('sha256:'.length, 'sha256:'.length + 12));
    timings.goodLiveMs = verification.istio.liveAfterMs;
    timings.goodVerifyMs = verification.elapsedMs;
    // Verification passed, so the gateway enforces it now.
    expect(await behaviour()).toEqual({ denied: 403, allowed: 418 });
    const metrics = await readAgentMetrics({ statusUrl: istio.statusUrl });
    expect(metrics.fetch.success).toBeGreaterThanOrEqual(1);
  });

  it('a configuration that denies everything fails once the gateway runs it (not against the previous one), and is rolled back', async () => {
    const started = Date.now();
    const run = await runCli(['deploy', ...deployArgs('--url', good.url, '--plugin-config', '{"header": "allow", "value": "never-sent"}')], env);
    timings.denyAllDeployMs = Date.now() - started;
    expect(run.code).toBe(1);
    expect(run.json!.error).toMatch(/verification of istio-system\/header-authorization failed/);
    expect(run.json!.error).toMatch(/rolled back: the previous spec was restored/);
    expect(run.stderr).toMatch(/the gateway runs this apply: Wasm filter/);
    expect(run.stderr).toMatch(/a request with allow true reaches the upstream \| FAIL \| 403/);
    timings.denyAllDetectS = verifySeconds(run.stderr);
    timings.denyAllRollbackMs = await backToGood();
    expect((await live()).spec.pluginConfig.value).toBe('true');
  });

  it('an image the gateway cannot fetch under FAIL_CLOSE fails at once, in Istio\'s words, and is rolled back', async () => {
    const started = Date.now();
    const run = await runCli(['deploy', ...deployArgs('--url', `oci://${registry.host}/mesh/header-authorization:no-such-tag`)], env);
    timings.failCloseDeployMs = Date.now() - started;
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/could not fetch the Wasm module and applied deny RBAC filter "wasm-default-deny"/);
    expect(run.stderr).toMatch(/istio_agent_wasm_remote_fetch_count\{result="manifest_failure"\} \+1/);
    expect(run.stderr).toMatch(/istio_agent_wasm_config_conversion_count\{result="fetch_failure"\} \+1/);
    expect(run.json!.error).toMatch(/rolled back: the previous spec was restored/);
    timings.failCloseDetectS = verifySeconds(run.stderr);
    expect(timings.failCloseDetectS).toBeLessThan(10);
    timings.failCloseRollbackMs = await backToGood();
    expect(istio.agentLog()).toMatch(/cannot fetch Wasm module/);
  });

  it('an image the gateway cannot fetch under FAIL_OPEN is caught although every case passes (the plugin is bypassed)', async () => {
    // Only cases that a bypassed plugin passes too.
    const tests = path.join(tempDir('istio-tests'), 'tests.yaml');
    fs.writeFileSync(tests, YAML.stringify({ cases: [{ name: 'allowed', request: { path: '/status/418', headers: { allow: 'true' } }, expect: { status: 418 } }] }));
    const started = Date.now();
    const run = await runCli(
      ['deploy', ...deployArgs('--tests', tests, '--fail-strategy', 'FAIL_OPEN', '--url', `oci://127.0.0.1:9/mesh/unreachable@sha256:${'1'.repeat(64)}`)],
      env,
    );
    timings.failOpenDeployMs = Date.now() - started;
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/applied allow RBAC filter "wasm-default-allow" in its place: the plugin is bypassed/);
    expect(run.json!.error).toMatch(/rolled back: the previous spec was restored/);
    timings.failOpenDetectS = verifySeconds(run.stderr);
    expect(timings.failOpenDetectS).toBeLessThan(10);
    timings.failOpenRollbackMs = await backToGood();
    expect((await live()).spec.failStrategy).toBe('FAIL_CLOSE');
  });

  it('a wrong sha256 fails at once with the agent\'s checksum_mismatched, and is rolled back', async () => {
    const started = Date.now();
    const run = await runCli(['deploy', ...deployArgs('--url', `oci://${registry.host}/mesh/header-authorization:v1`, '--sha256', 'f'.repeat(64))], env);
    timings.wrongShaDeployMs = Date.now() - started;
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/applied deny RBAC filter "wasm-default-deny"/);
    expect(run.stderr).toMatch(/istio_agent_wasm_remote_fetch_count\{result="checksum_mismatched"\} \+1/);
    expect(run.json!.error).toMatch(/rolled back: the previous spec was restored/);
    timings.wrongShaDetectS = verifySeconds(run.stderr);
    expect(timings.wrongShaDetectS).toBeLessThan(10);
    timings.wrongShaRollbackMs = await backToGood();
  });
});
