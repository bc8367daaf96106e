// The whole flow against real Istio: istiod (out of cluster, on the tests'
// kube-apiserver with Istio's own CRDs) and an ingress gateway (pilot-agent
// running Envoy) that fetches the plugin from a real registry (TLS + basic
// auth). The product's CLI builds, tests, pushes and deploys; verification
// reads Istio's own signals (the gateway's config dump and the agent's
// metrics). Then the ways a deploy goes wrong on a real gateway, each of which
// must fail the step with Istio's reason and leave the gateway serving what
// it served before. Last, the pull-secret path: a gateway that talks mutual
// TLS xDS with istiod (so istiod verifies it and sends it WasmPlugins' pull
// secrets) and has no registry credentials of its own.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readAgentMetrics, readGatewayFilter } from '../../src/k8s/istio.js';
import { MEDIA_TYPES, gzipDeterministic, sha256Digest, tarSingleFile } from '../../src/oci/image.js';
import { RegistryClient } from '../../src/oci/registry/index.js';
import { fixtureSource, makePlugin, runCli, tempDir } from '../helpers/cli.js';
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
/**
 * Per failure path, measured from the start of `asm-wasm deploy` (the apply
 * follows within a few tens of milliseconds): when verification reported the
 * failure (its own clock starts right after the apply) and when the gateway
 * served the good deploy again (after the rollback).
 */
const paths: Record<string, { detectS: number; servedAgainS: number }> = {};

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
    // Envoy's ECDS counters, which Istio's default stats list leaves out (see the README).
    statsInclusionRegexps: ['.*extension_config_discovery.*'],
  });
  timings.startAllMs = Date.now() - started;
  Object.assign(timings, istio.timings);
  plugin = makePlugin();
}, kubeStartTimeout() + istioStartTimeout());

afterAll(async () => {
  console.log(`istio ${istio?.version} timings (ms): ${JSON.stringify(timings)}`);
  console.log(
    ['| failure path | detected after apply (s) | previous behaviour served again (s) |', '| --- | --- | --- |',
      ...Object.entries(paths).map(([k, p]) => `| ${k} | ${p.detectS.toFixed(1)} | ${p.servedAgainS.toFixed(1)} |`)].join('\n'),
  );
  if (process.env.ASM_WASM_ISTIO_LOG) console.log(istio?.agentLog().split('\n').filter((l) => /wasm/i.test(l)).slice(-40).join('\n'));
  await istio?.stop();
  await Promise.all([registry?.close(), kube?.stop()]);
});


function deployArgs(...extra: string[]): string[] {
  return deployArgsFor(plugin, ...extra);
}

function deployArgsFor(dir: string, ...extra: string[]): string[] {
  return [
    '--plugin-dir', dir,
    '--kubeconfig', kube.kubeconfig('deployer'),
    '--verify-url', istio.gatewayUrl,
    '--gateway-admin-url', istio.adminUrl,
    '--gateway-status-url', istio.statusUrl,
    '--istiod-url', istio.istiodUrl,
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

/** Waits for the good deploy to be served again and records the path's timings (`started`: when the deploy command started). */
async function record(key: string, started: number, run: { stderr: string }): Promise<void> {
  const detectS = verifySeconds(run.stderr);
  expect(detectS, 'verification reports how long it took').not.toBeNaN();
  await backToGood();
  paths[key] = { detectS, servedAgainS: (Date.now() - started) / 1000 };
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
    await record('denyAll', started, run);
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
    await record('failClose', started, run);
    // The agent knows within a second: well before verify-timeout (60 s here).
    expect(paths.failClose.detectS).toBeLessThan(10);
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
    await record('failOpen', started, run);
    expect(paths.failOpen.detectS).toBeLessThan(10);
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
    await record('wrongSha', started, run);
    expect(paths.wrongSha.detectS).toBeLessThan(10);
  });
  it('a plugin that traps in proxy_on_configure is rejected by the gateway\'s Envoy: caught at once, in Envoy\'s words, and rolled back', async () => {
    // Built and pushed by the product (the local test stage would refuse it), then deployed over the good one.
    const trap = makePlugin({ source: fixtureSource('trap-on-configure') });
    const push = await runCli(
      [
        'run',
        '--plugin-dir', trap,
        '--image', `${registry.host}/mesh/header-authorization`,
        '--registry-username', registry.username!,
        '--registry-password', registry.password!,
        '--registry-ca', registry.caFile!,
        '--tags', 'trap-on-configure',
        '--test', 'false',
        '--json',
      ],
      env,
    );
    expect(push.json?.error, push.stderr).toBeUndefined();
    const started = Date.now();
    const run = await runCli(['deploy', ...deployArgsFor(trap, '--url', push.json!.outputs.url)], env);
    expect(run.code).toBe(1);
    // Envoy's config dump shows the new filter although Envoy refused it and keeps the old one:
    // its ECDS counters and istiod's NACK record tell.
    expect(run.stderr).toMatch(
      /the gateway rejected the Wasm filter: Unable to create Wasm plugin istio-system\.header-authorization~istio-translated-wasmplugin \(Envoy's counters: extension_config_discovery\.http_filter\.\S+\.config_fail \+1; istiod: NACK from istio-ingressgateway-local\.istio-system\); Envoy keeps running the previous filter/,
    );
    expect(run.stderr).not.toMatch(/the gateway runs this apply: Wasm filter/);
    expect(run.json!.error).toMatch(/rolled back: the previous spec was restored/);
    await record('trapOnConfigure', started, run);
    expect(paths.trapOnConfigure.detectS).toBeLessThan(10);
    expect(istio.agentLog()).toMatch(/Function: proxy_on_configure failed: Uncaught RuntimeError: unreachable/);
    expect(istio.istiodLog()).toMatch(/ADS:ECDS: ACK ERROR .*Unable to create Wasm plugin istio-system\.header-authorization/);
  });

  it('an image in a layout Istio does not read (no plugin.wasm in its layer) fails at once with the agent\'s download_failure, and is rolled back', async () => {
    // Pushed by hand: the push stage's own layout check would refuse it.
    const client = new RegistryClient({
      registry: registry.host,
      repository: 'mesh/header-authorization',
      credentials: { username: registry.username!, password: registry.password!, origin: 'the test registry\'s user' },
      caFile: registry.caFile!,
      log: () => undefined,
    });
    let digest: string;
    try {
      await client.ping();
      const tar = tarSingleFile('module.wasm', Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]));
      const layer = gzipDeterministic(tar);
      const config = Buffer.from(JSON.stringify({ architecture: 'wasm', os: 'wasip1', rootfs: { type: 'layers', diff_ids: [sha256Digest(tar)] } }));
      for (const data of [layer, config]) await client.uploadBlob({ digest: sha256Digest(data), data });
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.ociManifest,
          config: { mediaType: MEDIA_TYPES.ociConfig, digest: sha256Digest(config), size: config.length },
          layers: [{ mediaType: MEDIA_TYPES.ociLayerGzip, digest: sha256Digest(layer), size: layer.length }],
        }),
      );
      digest = await client.putManifest('no-plugin-wasm', manifest, MEDIA_TYPES.ociManifest);
    } finally {
      client.close();
    }
    const started = Date.now();
    const run = await runCli(
      ['deploy', ...deployArgs('--url', `oci://${registry.host}/mesh/header-authorization:no-plugin-wasm`, '--sha256', digest.replace('sha256:', ''))],
      env,
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/could not fetch the Wasm module and applied deny RBAC filter "wasm-default-deny"/);
    expect(run.stderr).toMatch(/istio_agent_wasm_remote_fetch_count\{result="download_failure"\} \+1 \(the manifest was fetched but no Wasm module could be taken out of the image/);
    expect(run.json!.error).toMatch(/rolled back: the previous spec was restored/);
    await record('badLayout', started, run);
    expect(paths.badLayout.detectS).toBeLessThan(10);
    expect(istio.agentLog()).toMatch(/the given image is in invalid format as an OCI image: [\s\S]*could not parse as compat variant: could not extract wasm binary: plugin\.wasm not found in the archive/);
  });

  it('an image pull secret istiod will not send to a plaintext-xDS gateway: the pull is never tried, verification says why, and the deploy is rolled back', async () => {
    const started = Date.now();
    const run = await runCli(['deploy', ...deployArgs('--url', good.url, '--image-pull-secret', 'wasm-pull-plaintext')], env);
    timings.withheldSecretDeployMs = Date.now() - started;
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/applied deny RBAC filter "wasm-default-deny"/);
    expect(run.stderr).toMatch(/istio_agent_wasm_config_conversion_count\{result="fetch_failure"\} \+1/);
    expect(run.stderr).toMatch(/without trying a pull[\s\S]*istiod does not trust this proxy with secrets/);
    expect(run.json!.error).toMatch(/rolled back: the previous spec was restored/);
    await record('withheldSecret', started, run);
    expect(istio.agentLog()).toMatch(/missing image pulling secret/);
    expect((await live()).spec.imagePullSecret).toBeUndefined();
  });
});

describe('the pull-secret path: a gateway that talks mutual TLS xDS with istiod', () => {
  const SECRET = 'wasm-pull';
  /** This gateway's good deploy (pushed and deployed with the pull secret). */
  let secured: { url: string; digest: string };

  it('pushes to the TLS + basic-auth registry, deploys with image-pull-secret + create-pull-secret; istiod hands the secret to the gateway, which pulls with it', async () => {
    // One gateway per machine: the plaintext one goes. The new one has no
    // credentials of its own (no Docker config), so the pull secret istiod
    // sends is the only way it can pull from this registry.
    await istio.stop();
    // What the tests above left would be the new gateway's first fetch, without credentials.
    const del = await kube.request('admin', 'DELETE', `/apis/extensions.istio.io/v1alpha1/namespaces/${NS}/wasmplugins/${NAME}`);
    expect([200, 404]).toContain(del.status);
    istio = await startIstio(kube, {
      envoy: inject('envoyPath'),
      registryCaFile: registry.caFile,
      secureXds: true,
      statsInclusionRegexps: ['.*extension_config_discovery.*'],
    });
    timings.secureGatewayReadyMs = istio.timings.gatewayReadyMs;
    expect(istio.xds).toBe('mtls');
    // The deploying identity may write the pull secret, in this namespace only.
    await kube.request('admin', 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'asm-wasm-pull-secret', namespace: NS },
      rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create', 'update', 'patch'] }],
    });
    await kube.request('admin', 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'asm-wasm-pull-secret', namespace: NS },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'asm-wasm-pull-secret' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'deployer' }],
    });
    expect(await behaviour()).toEqual({ denied: 418, allowed: 418 });

    const started = Date.now();
    const run = await runCli(
      [
        'run',
        ...deployArgs(
          '--image', `${registry.host}/mesh/pull-secret`,
          '--registry-username', registry.username!,
          '--registry-password', registry.password!,
          '--registry-ca', registry.caFile!,
          '--tags', 'v1',
          '--deploy', 'true',
          '--image-pull-secret', SECRET,
          '--create-pull-secret', 'true',
        ),
      ],
      env,
    );
    timings.pullSecretPipelineMs = Date.now() - started;
    expect(run.json?.error, run.stderr).toBeUndefined();
    const out = run.json!.outputs;
    expect(out).toMatchObject({ wasmplugin: `${NS}/${NAME}`, result: 'created' });
    expect(run.stderr).toMatch(new RegExp(`image pull secret ${NS}/${SECRET}: created`));
    secured = { url: out.url, digest: out.digest };
    good = secured;
    const verification = run.json!.results.deploy.verification;
    expect(verification.passed).toBe(true);
    expect(verification.istio).toMatchObject({ passed: true, problems: [] });
    expect(await behaviour()).toEqual({ denied: 403, allowed: 418 });

    const secret = (await kube.request('admin', 'GET', `/api/v1/namespaces/${NS}/secrets/${SECRET}`)).body as any;
    expect(secret.type).toBe('kubernetes.io/dockerconfigjson');
    expect((await live()).spec.imagePullSecret).toBe(SECRET);
    // istiod verified the gateway and sent the secret; the agent pulled with it.
    expect(istio.istiodLog()).not.toMatch(/is not authorized to receive secret/);
    expect(istio.agentLog()).not.toMatch(/missing image pulling secret/);
    const metrics = await readAgentMetrics({ statusUrl: istio.statusUrl });
    expect(metrics.fetch.success).toBeGreaterThanOrEqual(1);
  });

  it('a wrong password in the pull secret: the gateway cannot pull, verification says so in Istio\'s words, and the deploy is rolled back', async () => {
    expect(secured, 'the test above deployed').toBeDefined();
    // A new image, as a new release would be: a module the agent has cached
    // is served from its cache whatever the secret says. The same module,
    // repackaged as a Docker image by skopeo (a manifest Istio also reads),
    // under another digest.
    const creds = `${registry.username}:${registry.password}`;
    const copy = `${registry.host}/mesh/pull-secret`;
    const digestFile = path.join(tempDir('istio-copy'), 'digest');
    execFileSync('skopeo', [
      'copy', '--format', 'v2s2', '--digestfile', digestFile,
      '--src-cert-dir', registry.certDir!, '--dest-cert-dir', registry.certDir!, '--src-creds', creds, '--dest-creds', creds,
      `docker://${secured.url.replace('oci://', '')}`, `docker://${copy}:v2`,
    ]);
    const digest = fs.readFileSync(digestFile, 'utf8').trim();
    expect(digest).not.toBe(secured.digest);
    const started = Date.now();
    const run = await runCli(
      [
        'deploy',
        ...deployArgs(
          '--url', `oci://${copy}@${digest}`,
          '--image', copy,
          '--image-pull-secret', SECRET,
          '--create-pull-secret', 'true',
          '--registry-username', registry.username!,
          '--registry-password', 'not-the-password',
        ),
      ],
      env,
    );
    timings.wrongPullSecretDeployMs = Date.now() - started;
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`image pull secret ${NS}/${SECRET}: configured`));
    expect(run.stderr).toMatch(/could not fetch the Wasm module and applied deny RBAC filter "wasm-default-deny"/);
    expect(run.stderr).toMatch(/istio_agent_wasm_remote_fetch_count\{result="manifest_failure"\} \+1/);
    expect(run.json!.error).toMatch(/rolled back: the previous spec was restored/);
    await record('wrongPullSecret', started, run);
    expect(paths.wrongPullSecret.detectS).toBeLessThan(10);
    // The registry refused the credentials istiod sent (not a missing secret).
    expect(istio.agentLog()).toMatch(/could not fetch Wasm OCI image: .*(UNAUTHORIZED|401)/);
    expect(istio.agentLog()).not.toMatch(/missing image pulling secret/);
    expect((await live()).spec.url).toBe(secured.url);
    // The pull secret is put back as well: a gateway pod started now pulls with the right password.
    expect(run.stderr).toMatch(new RegExp(`image pull secret ${NS}/${SECRET}: restored to its previous data`));
    const secret = (await kube.request('admin', 'GET', `/api/v1/namespaces/${NS}/secrets/${SECRET}`)).body as any;
    const config = JSON.parse(Buffer.from(secret.data['.dockerconfigjson'], 'base64').toString('utf8'));
    expect(config.auths[registry.host].password).toBe(registry.password);
  });
});
