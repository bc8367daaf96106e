// The local API server itself: our WasmPlugin CRD accepts what Istio's API
// accepts, rejects what it rejects, and RBAC denies the user without rights.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKube, kubeStartTimeout, type Kube } from '../../infra/kube.js';

const PLUGINS = '/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins';

function plugin(name: string, spec: Record<string, unknown>) {
  return { apiVersion: 'extensions.istio.io/v1alpha1', kind: 'WasmPlugin', metadata: { name }, spec };
}

const valid = {
  selector: { matchLabels: { istio: 'ingressgateway' } },
  url: 'oci://registry.example.com/plugins/hello@sha256:' + 'a'.repeat(64),
  sha256: 'a'.repeat(64),
  imagePullPolicy: 'IfNotPresent',
  pluginName: 'hello',
  phase: 'AUTHN',
  priority: 10,
  failStrategy: 'FAIL_OPEN',
  pluginConfig: { header: 'x-hello', nested: { list: [1, 2] } },
  vmConfig: { env: [{ name: 'POD_NAME', valueFrom: 'HOST' }, { name: 'GREETING', value: 'hi' }] },
  match: [{ mode: 'CLIENT', ports: [{ number: 8080 }] }],
  type: 'HTTP',
};

describe('local kube-apiserver with the WasmPlugin CRD', () => {
  let kube: Kube;
  beforeAll(async () => {
    kube = await startKube();
  }, kubeStartTimeout());
  afterAll(async () => {
    await kube?.stop();
  });

  it('accepts a valid WasmPlugin and keeps every field', async () => {
    const res = await kube.request('deployer', 'POST', PLUGINS, plugin('valid', valid));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.spec).toEqual(valid);
  });

  it.each([
    ['an unknown phase', { phase: 'LATE' }, 'spec.phase'],
    ['an unknown failStrategy', { failStrategy: 'FAIL_SOMETIMES' }, 'spec.failStrategy'],
    ['a short sha256', { sha256: 'abc' }, 'spec.sha256'],
    ['port 0', { match: [{ ports: [{ number: 0 }] }] }, 'spec.match[0].ports[0].number'],
    ['selector and targetRefs together', { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'gw' }] }, 'only one of targetRefs or selector'],
    ['a value with valueFrom HOST', { vmConfig: { env: [{ name: 'X', valueFrom: 'HOST', value: 'v' }] } }, 'value may only be set when valueFrom is INLINE'],
    ['an unknown scheme', { url: 'ftp://example.com/x.wasm' }, 'url must have schema'],
  ])('rejects %s', async (_what, change, message) => {
    const res = await kube.request('deployer', 'POST', PLUGINS, plugin('bad', { ...valid, ...change }));
    expect(res.status, JSON.stringify(res.body)).toBe(422);
    expect(res.body.message).toContain(message);
  });

  it('denies the user without rights (403)', async () => {
    const res = await kube.request('nobody', 'GET', PLUGINS);
    expect(res.status).toBe(403);
    expect(res.body.message).toContain('User "nobody" cannot list resource "wasmplugins"');
  });

  it('gives every user a working kubeconfig', () => {
    const config = kube.kubeconfig('deployer');
    expect(config).toContain(kube.server);
    expect(config).toContain(kube.tokens.deployer);
    expect(kube.kubeconfig('deployer', { auth: 'cert' })).toContain('client-key-data');
  });
});
