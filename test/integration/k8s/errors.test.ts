// Every error a user of the deploy stage can meet, against a real API server:
// each must be a UserError whose message says what is wrong and what to do.
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { deploy, type DeployOptions, type DeployResult } from '../../../src/k8s/deploy.js';
import { kubeStartTimeout, namespaceObject, startKube, type Kube } from '../../infra/kube.js';
import { wasmOf } from '../../../src/plugin/index.js';
import { pluginOf, type FlatPlugin } from '../../helpers/plugin.js';

const URL_A = `oci://registry.example.com/ns/hello@sha256:${'a'.repeat(64)}`;
const URL_B = `oci://registry.example.com/ns/hello@sha256:${'b'.repeat(64)}`;

let kube: Kube;

function plugin(over: FlatPlugin = {}) {
  return pluginOf({ name: 'errors', url: URL_A, pluginName: 'errors', failStrategy: 'FAIL_OPEN', ...over });
}

function run(over: Partial<DeployOptions> = {}): Promise<DeployResult> {
  return deploy({ kubeconfig: kube.kubeconfig('deployer'), mode: 'apply', plugin: plugin(), setSecret: () => {}, log: () => {}, ...over });
}

async function failure(promise: Promise<unknown>): Promise<UserError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error('expected the deploy to fail');
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  kube = await startKube();
}, kubeStartTimeout());

afterAll(async () => {
  await kube?.stop();
});

describe('kubeconfig problems', () => {
  it('a malformed kubeconfig', async () => {
    const err = await failure(run({ kubeconfig: 'apiVersion: v1\nclusters: [\n users: {' }));
    expect(err.message).toMatch(/^kubeconfig is neither a kubeconfig nor base64 of one: the YAML has an error: .* at line \d+, column \d+$/);
  });

  it('base64 of something that is not a kubeconfig', async () => {
    const err = await failure(run({ kubeconfig: Buffer.from('just text').toString('base64') }));
    expect(err.message).toContain('kubeconfig is base64, but it does not decode to a kubeconfig');
  });

  it('no such context', async () => {
    const err = await failure(run({ context: 'production' }));
    expect(err.message).toBe('kubeconfig has no context "production" (its contexts: "asm-wasm-test")');
  });

  it('masks every credential before the first request', async () => {
    const masked: string[] = [];
    await run({ mode: 'dry-run', setSecret: (s) => masked.push(s) });
    expect(masked).toContain(kube.tokens.deployer);
  });
});

describe('connection problems', () => {
  it('the server is unreachable', async () => {
    const port = await closedPort();
    const err = await failure(run({ kubeconfig: kube.kubeconfig('deployer', { server: `https://127.0.0.1:${port}` }) }));
    expect(err.message).toMatch(
      new RegExp(`^cannot reach the API server https://127\\.0\\.0\\.1:${port} \\(context "asm-wasm-test"\\): connect ECONNREFUSED .*Check the server address in kubeconfig`),
    );
  });

  it('the CA does not match the server certificate', async () => {
    const err = await failure(run({ kubeconfig: kube.kubeconfig('deployer', { caPem: kube.otherCaPem }) }));
    expect(err.message).toMatch(/^TLS check failed for the API server https:\/\/127\.0\.0\.1:\d+ \(context "asm-wasm-test"\): its certificate is not signed by the CA in kubeconfig \(certificate-authority-data of cluster "asm-wasm-test"\)/);
  });

  it('the server address does not match its certificate', async () => {
    const err = await failure(run({ kubeconfig: kube.kubeconfig('deployer', { tlsServerName: 'api.other-cluster.example.com' }) }));
    expect(err.message).toMatch(/TLS check failed .*its certificate is not valid for this address \(ERR_TLS_CERT_ALTNAME_INVALID\)/);
  });
});

describe('credentials and RBAC', () => {
  it('401: a wrong token', async () => {
    const err = await failure(run({ kubeconfig: kube.kubeconfig('deployer', { token: 'not-a-valid-token' }) }));
    expect(err.message).toMatch(/^the API server .* rejected the credentials of user "asm-wasm-test-deployer" \(401 Unauthorized\): the token or client certificate in kubeconfig is wrong, expired or for another cluster/);
  });

  it('403: a user without rights on WasmPlugins, naming the verb and resource', async () => {
    const err = await failure(run({ kubeconfig: kube.kubeconfig('nobody') }));
    expect(err.message).toMatch(/^RBAC denied user "nobody" to get wasmplugins\.extensions\.istio\.io in namespace "istio-system" \(403 Forbidden\)\. Grant the verb/);
    expect(err.details).toContain('User "nobody" cannot get resource "wasmplugins" in API group "extensions.istio.io"');
  });

  it('403: a user that may read but not apply', async () => {
    await kube.request('admin', 'POST', '/api/v1/namespaces', namespaceObject('readonly'));
    await kube.request('admin', 'POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/readonly/roles', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'read-wasmplugins' },
      rules: [{ apiGroups: ['extensions.istio.io'], resources: ['wasmplugins'], verbs: ['get', 'list'] }],
    });
    await kube.request('admin', 'POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/readonly/rolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'nobody-reads' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-wasmplugins' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'nobody' }],
    });
    let err: UserError | undefined;
    for (let i = 0; i < 50; i++) {
      err = await failure(run({ kubeconfig: kube.kubeconfig('nobody'), plugin: plugin({ namespace: 'readonly' }) }));
      if (!err.message.includes(' to get ')) break; // the binding takes a moment to apply
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(err!.message).toMatch(/^RBAC denied user "nobody" to patch wasmplugins\.extensions\.istio\.io in namespace "readonly" \(403 Forbidden\)/);
  });
});

describe('what the API server refuses', () => {
  it('409: a field another manager owns, then force', async () => {
    await run({ plugin: plugin({ name: 'contested' }) });
    // Someone applies a different url with their own tool.
    const other = await kube.request(
      'admin',
      'PATCH',
      '/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins/contested?fieldManager=kubectl&force=true',
      { apiVersion: 'extensions.istio.io/v1alpha1', kind: 'WasmPlugin', metadata: { name: 'contested' }, spec: { url: URL_B } },
      'application/apply-patch+yaml',
    );
    expect(other.status).toBe(200);
    // Our next apply brings URL_A back: that field is now theirs.
    const err = await failure(run({ plugin: plugin({ name: 'contested' }) }));
    expect(err.message).toMatch(
      /^patch wasmplugins\.extensions\.istio\.io istio-system\/contested: 1 field\(s\) are owned by another field manager \(409 Conflict\)\..*Set `force-conflicts: true` to take them over/,
    );
    expect(err.details).toBe('.spec.url is owned by field manager "kubectl"');
    const forced = await run({ plugin: plugin({ name: 'contested' }), force: true });
    expect(forced.result).toBe('configured');
    expect(wasmOf(forced.object!).url).toBe(URL_A);
  });

  it('422: a spec the API server rejects, with its message', async () => {
    // An admission policy, as a mesh's validating webhook would be.
    const policy = await kube.request('admin', 'POST', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: 'no-debug-plugins' },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [{ apiGroups: ['extensions.istio.io'], apiVersions: ['v1alpha1'], operations: ['CREATE', 'UPDATE'], resources: ['wasmplugins'] }],
        },
        validations: [{ expression: "!has(object.spec.pluginName) || object.spec.pluginName != 'debug'", message: 'pluginName debug is not allowed in this mesh' }],
      },
    });
    expect(policy.status, JSON.stringify(policy.body)).toBe(201);
    const binding = await kube.request('admin', 'POST', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: 'no-debug-plugins' },
      spec: { policyName: 'no-debug-plugins', validationActions: ['Deny'] },
    });
    expect(binding.status, JSON.stringify(binding.body)).toBe(201);
    let err: UserError | undefined;
    for (let i = 0; i < 100 && !err; i++) {
      // The policy takes effect a moment after it is created.
      try {
        await run({ mode: 'dry-run', plugin: plugin({ name: 'debugging', pluginName: 'debug' }) });
        await new Promise((resolve) => setTimeout(resolve, 100));
      } catch (e) {
        err = e as UserError;
      }
    }
    expect(err).toBeInstanceOf(UserError);
    expect(err!.message).toMatch(/^the API server rejected patch wasmplugins\.extensions\.istio\.io istio-system\/debugging \(422 Invalid\): /);
    expect(err!.message).toContain("ValidatingAdmissionPolicy 'no-debug-plugins' with binding 'no-debug-plugins' denied request: pluginName debug is not allowed in this mesh");
    // The causes repeat the message: not shown twice.
    expect(err!.details).toBeUndefined();
  });

  it('a namespace that does not exist', async () => {
    const err = await failure(run({ plugin: plugin({ namespace: 'nowhere' }) }));
    expect(err.message).toMatch(/^namespace "nowhere" does not exist on the API server .*: create it, or set the namespace input$/);
  });

  it('an invalid spec never reaches the server: the plugin model refuses it first', async () => {
    expect(() => plugin({ match: [{ ports: [{ number: 70000 }] }] })).toThrow(
      'the WasmPlugin istio-system/errors is not valid (1 problem): spec.match[0].ports[0].number: must be a port number from 1 to 65535, got 70000',
    );
  });
});

describe('a cluster without the WasmPlugin CRD', () => {
  let bare: Kube;
  beforeAll(async () => {
    bare = await startKube({ crd: false });
  }, kubeStartTimeout());
  afterAll(async () => {
    await bare?.stop();
  });

  it('asks whether Istio or ASM is installed', async () => {
    const err = await failure(run({ kubeconfig: bare.kubeconfig('deployer'), mode: 'dry-run' }));
    expect(err.message).toMatch(
      /^the API server https:\/\/127\.0\.0\.1:\d+ \(context "asm-wasm-test"\) does not serve extensions\.istio\.io\/v1alpha1 WasmPlugin \(the WasmPlugin CRD is not installed\): is Istio or ASM installed in this cluster\?/,
    );
    expect(err.message).toContain('use the kubeconfig of the mesh instance');
  });
});
