// The deploy stage against a real kube-apiserver with our WasmPlugin CRD:
// dry run, create, unchanged re-apply, update, delete; then verification
// against a real Envoy standing in for the gateway, running the reference
// plugin (passes) or a plugin that denies everything (fails, rolled back).
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, DeployVerificationError, type DeployOptions, type DeployResult } from '../../../src/k8s/deploy.js';
import { formatDeploySummary } from '../../../src/stages/deploy/render.js';
import { loadCases } from '../../../src/localtest/cases.js';
import { fixtureSource, makePlugin, ROOT } from '../../helpers/cli.js';
import { compilePlugin, startGateway, type Gateway } from '../../helpers/gateway.js';
import { wasmOf } from '../../../src/plugin/index.js';
import { pluginOf, type FlatPlugin } from '../../helpers/plugin.js';
import { kubeStartTimeout, namespaceObject, startKube, type Kube } from '../../infra/kube.js';

const DIGEST = 'a'.repeat(64);
const URL_V1 = `oci://registry.example.com/ns/hello@sha256:${DIGEST}`;
const URL_V2 = `oci://registry.example.com/ns/hello@sha256:${'b'.repeat(64)}`;
const URL_V3 = `oci://registry.example.com/ns/hello@sha256:${'c'.repeat(64)}`;

let kube: Kube;
const logs: string[] = [];

function plugin(over: FlatPlugin = {}) {
  return pluginOf({ name: 'hello', url: URL_V1, pluginName: 'hello', failStrategy: 'FAIL_OPEN', pluginConfig: { header: 'x-hello', value: 'one' }, ...over });
}

function run(over: Partial<DeployOptions> = {}): Promise<DeployResult> {
  return deploy({
    kubeconfig: kube.kubeconfig('deployer'),
    mode: 'apply',
    plugin: plugin(),
    setSecret: () => {},
    log: (line) => logs.push(line),
    ...over,
  });
}

async function live(name: string, namespace = 'istio-system') {
  const res = await kube.request('admin', 'GET', `/apis/extensions.istio.io/v1alpha1/namespaces/${namespace}/wasmplugins/${name}`);
  return res.status === 404 ? null : res.body;
}

beforeAll(async () => {
  kube = await startKube();
  for (const ns of ['team-a', 'gateways']) await kube.request('admin', 'POST', '/api/v1/namespaces', namespaceObject(ns));
}, kubeStartTimeout());

afterAll(async () => {
  await kube?.stop();
});

describe('dry-run, apply, delete', () => {
  it('dry-runs a new plugin: would be created, nothing is stored', async () => {
    const result = await run({ mode: 'dry-run' });
    expect(result).toMatchObject({ mode: 'dry-run', wasmplugin: 'istio-system/hello', result: 'created', dryRun: true, previous: null });
    expect(result.diff.split('\n').slice(0, 2)).toEqual(['--- (does not exist)', '+++ new']);
    expect(result.diff).toContain(`+  url: ${URL_V1}`);
    expect(await live('hello')).toBeNull();
  });

  it('creates it with server-side apply as asm-wasm-action', async () => {
    const result = await run();
    expect(result).toMatchObject({ result: 'created', generation: 1, dryRun: false, server: kube.server, context: 'asm-wasm-test' });
    const object = await live('hello');
    expect(object.spec).toEqual({
      selector: { matchLabels: { istio: 'ingressgateway' } },
      url: URL_V1,
      sha256: DIGEST,
      failStrategy: 'FAIL_OPEN',
      pluginName: 'hello',
      pluginConfig: { header: 'x-hello', value: 'one' },
    });
    expect(object.metadata.managedFields).toEqual([expect.objectContaining({ manager: 'asm-wasm-action', operation: 'Apply' })]);
  });

  it('reports a re-apply with nothing new as unchanged', async () => {
    const before = await live('hello');
    const result = await run();
    expect(result).toMatchObject({ result: 'unchanged', generation: 1, diff: '' });
    expect((await live('hello')).metadata.resourceVersion).toBe(before.metadata.resourceVersion);
  });

  it('dry-runs a change: shows the diff, changes nothing', async () => {
    const before = await live('hello');
    const result = await run({ mode: 'dry-run', plugin: plugin({ pluginConfig: { header: 'x-hello', value: 'two' } }) });
    expect(result).toMatchObject({ result: 'configured', dryRun: true });
    // Which pluginConfig key changed, not its values.
    expect(result.diff).toContain('-    value: (hidden)\n+    value: (hidden, changed)');
    expect(result.diff).not.toMatch(/value: (one|two)/);
    expect(result.pluginConfigChanged).toEqual(['value']);
    const after = await live('hello');
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect(after.spec).toEqual(before.spec);
    expect(formatDeploySummary(result)).toContain('would be configured (dry run, nothing changed)');
  });

  it('dry-runs no change as unchanged', async () => {
    expect(await run({ mode: 'dry-run' })).toMatchObject({ result: 'unchanged', diff: '' });
  });

  it('updates it: configured, next generation', async () => {
    const result = await run({ plugin: plugin({ url: URL_V2, sha256: 'b'.repeat(64), pluginConfig: { header: 'x-hello', value: 'two' } }) });
    expect(result).toMatchObject({ result: 'configured', generation: 2 });
    expect(result.diff).toContain(`-  url: ${URL_V1}`);
    expect(result.diff).toContain(`+  url: ${URL_V2}`);
    expect(result.diff).toContain(`+  sha256: ${'b'.repeat(64)}`);
    expect((await live('hello')).spec.pluginConfig).toEqual({ header: 'x-hello', value: 'two' });
  });

  it('drops a field it applied before when it is no longer set', async () => {
    const result = await run({ plugin: plugin({ url: URL_V2, pluginConfig: undefined }) });
    expect(result).toMatchObject({ result: 'configured', generation: 3 });
    const spec = (await live('hello')).spec;
    expect(spec.pluginConfig).toBeUndefined();
    expect(result.pluginConfigChanged).toEqual(['header', 'value']);
  });

  it('deletes it, and a second delete is unchanged', async () => {
    const result = await run({ mode: 'delete' });
    expect(result).toMatchObject({ result: 'deleted', generation: 3 });
    expect(result.diff.split('\n')[1]).toBe('+++ (deleted)');
    expect(await live('hello')).toBeNull();
    expect(await run({ mode: 'delete' })).toMatchObject({ result: 'unchanged' });
  });

  it('works with a base64 kubeconfig, a client certificate and another namespace', async () => {
    const kubeconfig = Buffer.from(kube.kubeconfig('deployer', { auth: 'cert' })).toString('base64');
    const result = await run({ kubeconfig, plugin: plugin({ namespace: 'team-a', selector: { matchLabels: { app: 'gw' } } }) });
    expect(result).toMatchObject({ wasmplugin: 'team-a/hello', result: 'created' });
    expect((await live('hello', 'team-a')).spec.selector).toEqual({ matchLabels: { app: 'gw' } });
  });

  it('creates the image pull secret when it may, and names it in the plugin', async () => {
    const pullSecret = { name: 'registry-pull', registry: 'registry.example.com', username: 'robot', password: 'robot-password-123' };
    const masked: string[] = [];
    const result = await run({
      kubeconfig: kube.kubeconfig('admin'),
      plugin: plugin({ name: 'pulled', namespace: 'team-a', imagePullSecret: 'registry-pull' }),
      pullSecret,
      setSecret: (s) => masked.push(s),
    });
    expect(result.pullSecret).toEqual({ name: 'registry-pull', result: 'created' });
    expect(wasmOf(result.object!).imagePullSecret).toBe('registry-pull');
    expect(masked).toContain('robot-password-123');
    const secret = await kube.request('admin', 'GET', '/api/v1/namespaces/team-a/secrets/registry-pull');
    expect(secret.body.type).toBe('kubernetes.io/dockerconfigjson');
    const config = JSON.parse(Buffer.from(secret.body.data['.dockerconfigjson'], 'base64').toString());
    expect(config.auths['registry.example.com']).toEqual({
      username: 'robot',
      password: 'robot-password-123',
      auth: Buffer.from('robot:robot-password-123').toString('base64'),
    });
    const again = await run({ kubeconfig: kube.kubeconfig('admin'), plugin: plugin({ name: 'pulled', namespace: 'team-a', imagePullSecret: 'registry-pull' }), pullSecret });
    expect(again.pullSecret?.result).toBe('unchanged');
    expect(again.result).toBe('unchanged');
    // The deployer may only read secrets.
    await expect(run({ plugin: plugin({ name: 'pulled', namespace: 'team-a', imagePullSecret: 'registry-pull' }), pullSecret })).rejects.toThrow(
      'RBAC denied user "deployer" to patch secrets in namespace "team-a" (403 Forbidden)',
    );
  });
});

// The reference plugin's own manifest and test cases: what the local Envoy
// test ran is what verification runs against the gateway.
const CASES = loadCases(path.join(ROOT, 'plugin', 'tests.yaml'));
const REFERENCE_CONFIG = {
  header: 'allow',
  value: 'true',
  denyStatus: 403,
  denyBody: 'Forbidden by ASM Wasm Plugin, assemblyscript version\n',
};

function referencePlugin(over: FlatPlugin = {}) {
  return pluginOf({
    name: 'header-authorization',
    url: URL_V1,
    pluginName: 'header-authorization',
    phase: 'AUTHN',
    failStrategy: 'FAIL_CLOSE',
    pluginConfig: REFERENCE_CONFIG,
    ...over,
  });
}

describe('verification against a gateway Envoy, and rollback', () => {
  let good: Gateway;
  let denyAll: Gateway;
  beforeAll(async () => {
    const [reference, deny] = [await compilePlugin(), await compilePlugin(makePlugin({ source: fixtureSource('deny-all') }))];
    good = await startGateway(reference, { config: REFERENCE_CONFIG });
    denyAll = await startGateway(deny, { config: REFERENCE_CONFIG });
  });
  afterAll(async () => {
    await good?.stop();
    await denyAll?.stop();
  });

  it('keeps the plugin when the gateway passes the plugin\'s test cases', async () => {
    const result = await run({ plugin: referencePlugin(), verify: { url: good.url, cases: CASES, timeoutMs: 10_000, intervalMs: 200 } });
    expect(result.result).toBe('created');
    expect(result.verification).toMatchObject({ passed: true, attempts: 1 });
    expect(result.verification!.cases).toHaveLength(CASES.length);
    expect(result.rollback).toBeUndefined();
    const summary = formatDeploySummary(result);
    expect(summary).toContain('| a request without the allow header is denied | pass | 403 | not checked remotely: upstream, logs |');
    expect(summary).toContain(':warning: spec.failStrategy: FAIL_CLOSE');
    expect(await live('header-authorization')).not.toBeNull();
  });

  it('restores the previous object exactly when the new version denies everything', async () => {
    const v1Options: Parameters<typeof referencePlugin>[0] = {
      name: 'rollme',
      selector: { matchLabels: { app: 'edge', tier: 'public' } },
      sha256: DIGEST,
      imagePullPolicy: 'IfNotPresent',
      priority: 7,
      match: [{ mode: 'CLIENT', ports: [{ number: 8080 }, { number: 8443 }] }],
      vmConfig: { env: [{ name: 'POD_NAME', valueFrom: 'HOST' }, { name: 'GREETING', value: 'hi' }] },
      pluginConfig: { ...REFERENCE_CONFIG, nested: { list: [1, 'two', null], deep: { on: true } } },
      type: 'HTTP',
      labels: { team: 'edge' },
      annotations: { 'example.com/release': 'v1' },
    };
    const v1 = referencePlugin(v1Options);
    await run({ plugin: v1 });
    // Someone else adds an annotation and a label with another tool.
    const patched = await kube.request(
      'admin',
      'PATCH',
      '/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins/rollme?fieldManager=kubectl-edit',
      { metadata: { annotations: { 'example.com/owner': 'ops' }, labels: { extra: 'yes' } } },
      'application/merge-patch+json',
    );
    expect(patched.status).toBe(200);
    const before = await live('rollme');

    let error: unknown;
    try {
      await run({
        plugin: referencePlugin({ name: 'rollme', url: URL_V2, labels: { team: 'edge' } }),
        verify: { url: denyAll.url, cases: CASES, timeoutMs: 1500, intervalMs: 200 },
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DeployVerificationError);
    const failure = error as DeployVerificationError;
    expect(failure.message).toBe(
      // Against a plugin that denies everything (with its own body), only the
      // case that expects a bare 403 passes.
      `verification of istio-system/rollme failed (4 case(s): ${CASES.filter((c) => !c.name.startsWith('the value is compared exactly'))
        .map((c) => c.name)
        .join(', ')}); ` +
        `rolled back: the previous spec was restored (generation ${before.metadata.generation + 2})`,
    );
    expect(failure.details).toContain('a request with allow true reaches the upstream: status: expected 418, got 403; body: expected to contain "-=[ teapot ]=-", got "denied\\n"');
    expect(failure.result).toMatchObject({ result: 'configured', rollback: { action: 'restored', ok: true } });
    expect(failure.result.verification!.attempts).toBeGreaterThan(1);
    expect(formatDeploySummary(failure.result)).toContain('Rolled back: previous spec restored');

    const after = await live('rollme');
    expect(after.spec).toEqual(before.spec);
    expect(after.metadata.labels).toEqual(before.metadata.labels);
    expect(after.metadata.annotations).toEqual(before.metadata.annotations);
    expect(after.metadata.uid).toBe(before.metadata.uid);
    // The restore leaves no second field manager behind: the next ordinary
    // apply (no force) that changes a restored field goes through.
    await run({ plugin: referencePlugin({ ...v1Options, priority: 8 }) });
    expect((await live('rollme')).spec.priority).toBe(8);
  });

  it('deletes the plugin it created when verification fails', async () => {
    const attempt = run({ plugin: referencePlugin({ name: 'newbad' }), verify: { url: denyAll.url, cases: CASES, timeoutMs: 500, intervalMs: 200 } });
    await expect(attempt).rejects.toThrow('rolled back: the WasmPlugin this run created was deleted');
    const failure = await attempt.catch((err: DeployVerificationError) => err);
    expect((failure as DeployVerificationError).result.rollback).toEqual({ action: 'deleted', ok: true });
    expect(await live('newbad')).toBeNull();
  });

  // Two runs race: A applies, B applies a newer digest while A verifies, A's
  // verification fails. A's rollback must not put the old version back over
  // B's: it writes only while the object is still what A applied.
  async function race(name: string, baseline: boolean) {
    if (baseline) await run({ plugin: referencePlugin({ name }) });
    const before = await live(name);
    let b: Promise<DeployResult> | undefined;
    const a = run({
      plugin: referencePlugin({ name, url: URL_V2 }),
      verify: {
        url: denyAll.url,
        cases: CASES,
        timeoutMs: 4000,
        intervalMs: 200,
        // B deploys while A is verifying, after A's first failing attempt.
        onAttempt: (attempt) => {
          if (attempt === 1) b = run({ plugin: referencePlugin({ name, url: URL_V3 }) });
        },
      },
    });
    const failure = (await a.catch((err: unknown) => err)) as DeployVerificationError;
    expect(b, 'B never ran: A verified in one attempt').toBeDefined();
    const bResult = await b!;
    return { before, failure, bResult };
  }

  it("refuses to restore over another run's newer deploy (optimistic concurrency)", async () => {
    const { before, failure, bResult } = await race('raced', true);
    expect(bResult.result).toBe('configured');
    expect(failure).toBeInstanceOf(DeployVerificationError);
    expect(failure.result.rollback).toEqual({
      action: 'restored',
      ok: false,
      changedSince: expect.stringMatching(/^someone else changed istio-system\/raced after this run applied it \(resourceVersion \d+ → \d+, generation 2 → 3\)$/),
    });
    expect(failure.message).toMatch(/; not rolled back: someone else changed istio-system\/raced after this run applied it .*; their version was left as it is$/);
    expect(formatDeploySummary(failure.result)).toContain('**Not rolled back**: someone else changed istio-system/raced');
    const after = await live('raced');
    expect(after.spec.url).toBe(URL_V3);
    expect(after.metadata.resourceVersion).toBe(bResult.object!.metadata.resourceVersion);
    expect(after.metadata.uid).toBe(before.metadata.uid);
  });

  it("refuses to delete what it created once another run deployed over it", async () => {
    const { before, failure, bResult } = await race('raced-new', false);
    expect(before).toBeNull();
    expect(bResult.result).toBe('configured');
    expect(failure.result.rollback).toMatchObject({ action: 'deleted', ok: false, changedSince: expect.stringContaining('someone else changed istio-system/raced-new') });
    expect((await live('raced-new')).spec.url).toBe(URL_V3);
  });

  it('never prints a pluginConfig value in the log, the diff or the summary', async () => {
    const secretA = 'shared-secret-a-4711';
    const secretB = 'shared-secret-b-0815';
    logs.length = 0;
    await run({ plugin: plugin({ name: 'secretive', pluginConfig: { header: 'x-token', value: secretA } }) });
    const change = await run({ mode: 'dry-run', plugin: plugin({ name: 'secretive', pluginConfig: { header: 'x-token', value: secretB } }) });
    const printed = [...logs, change.diff, formatDeploySummary(change)].join('\n');
    expect(change.pluginConfigChanged).toEqual(['value']);
    expect(printed).toContain('pluginConfig keys changed: value (values are not shown)');
    for (const secret of [secretA, secretB]) expect(printed).not.toContain(secret);
  });

  it('fails without touching anything when an unchanged plugin does not verify', async () => {
    const before = await live('header-authorization');
    await expect(
      run({ plugin: referencePlugin(), verify: { url: denyAll.url, cases: CASES, timeoutMs: 300, intervalMs: 100 } }),
    ).rejects.toThrow('nothing to roll back');
    expect((await live('header-authorization')).metadata.resourceVersion).toBe(before.metadata.resourceVersion);
  });

  describe('gateway pods in the data-plane cluster', () => {
    beforeAll(async () => {
      // No kubelet here: the pod stays Pending, its logs and stats are unreadable.
      await kube.request('admin', 'POST', '/api/v1/namespaces/istio-system/serviceaccounts', {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: 'default' },
      });
      const pod = await kube.request('admin', 'POST', '/api/v1/namespaces/istio-system/pods', {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'istio-ingressgateway-1', labels: { istio: 'ingressgateway' } },
        spec: { containers: [{ name: 'istio-proxy', image: 'istio/proxyv2' }] },
      });
      expect(pod.status, JSON.stringify(pod.body)).toBe(201);
    });

    it('reports each selected pod', async () => {
      const result = await run({
        plugin: referencePlugin({ name: 'podcheck' }),
        verify: { url: good.url, cases: CASES, timeoutMs: 5000, intervalMs: 200 },
        gateway: { kubeconfig: kube.kubeconfig('deployer') },
      });
      expect(result.pods).toHaveLength(1);
      expect(result.pods![0].pod).toBe('istio-system/istio-ingressgateway-1');
      expect(result.pods![0].problems).toEqual([]);
      expect(result.pods![0].notes).toContain('not ready (phase Pending)');
      expect(result.pods![0].notes.some((n) => n.startsWith('istio-proxy log not readable'))).toBe(true);
      expect(formatDeploySummary(result)).toContain('| istio-system/istio-ingressgateway-1 | ok |');
    });

    it('rolls back when no gateway pod matches', async () => {
      const attempt = run({
        plugin: referencePlugin({ name: 'nopods', selector: { matchLabels: { istio: 'eastwestgateway' } } }),
        verify: { url: good.url, cases: CASES, timeoutMs: 5000, intervalMs: 200 },
        gateway: { kubeconfig: kube.kubeconfig('deployer') },
      });
      await expect(attempt).rejects.toThrow('1 gateway pod(s) with problems');
      const failure = (await attempt.catch((e: unknown) => e)) as DeployVerificationError;
      expect(failure.details).toContain('no pod in namespace "istio-system"');
      expect(failure.details).toContain('matches istio=eastwestgateway');
      expect(await live('nopods')).toBeNull();
    });
  });
});
