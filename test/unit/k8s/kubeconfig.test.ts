import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { UserError } from '../../../src/errors.js';
import { loadKubeconfig } from '../../../src/k8s/kubeconfig.js';

const CA = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n').toString('base64');
const KEY_PEM = '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIPrivateKeyLineOne0123456789abcdef\nAnotherPrivateKeyLine0123456789\n-----END EC PRIVATE KEY-----\n';

function config(overrides: Record<string, unknown> = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: 'mesh', cluster: { server: 'https://mesh.example.com:6443', 'certificate-authority-data': CA } },
      { name: 'data', cluster: { server: 'https://data.example.com:6443', 'certificate-authority-data': CA } },
    ],
    users: [
      { name: 'deployer', user: { token: 'token-0123456789abcdef' } },
      { name: 'certuser', user: { 'client-certificate-data': CA, 'client-key-data': Buffer.from(KEY_PEM).toString('base64') } },
      { name: 'basic', user: { username: 'admin', password: 'hunter2-password' } },
      {
        name: 'execuser',
        user: {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1beta1',
            command: 'get-token',
            env: [{ name: 'ACCESS_KEY_SECRET', value: 'exec-secret-value-123' }],
          },
        },
      },
    ],
    contexts: [
      { name: 'mesh-ctx', context: { cluster: 'mesh', user: 'deployer', namespace: 'istio-system' } },
      { name: 'data-ctx', context: { cluster: 'data', user: 'certuser' } },
      { name: 'basic-ctx', context: { cluster: 'mesh', user: 'basic' } },
      { name: 'exec-ctx', context: { cluster: 'mesh', user: 'execuser' } },
    ],
    'current-context': 'mesh-ctx',
    ...overrides,
  };
}

function load(input: string, context?: string) {
  const secrets: string[] = [];
  const loaded = loadKubeconfig(input, { context, setSecret: (s) => secrets.push(s) });
  return { loaded, secrets };
}

function failure(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error('expected a UserError');
}

describe('loadKubeconfig', () => {
  it('reads raw YAML and uses the current context', () => {
    const { loaded } = load(YAML.stringify(config()));
    expect(loaded).toMatchObject({
      format: 'yaml',
      context: 'mesh-ctx',
      cluster: 'mesh',
      server: 'https://mesh.example.com:6443',
      user: 'deployer',
      namespace: 'istio-system',
    });
    expect(loaded.kubeConfig.getCurrentContext()).toBe('mesh-ctx');
  });

  it('reads JSON', () => {
    expect(load(JSON.stringify(config())).loaded.format).toBe('yaml');
  });

  it('detects base64, also wrapped in lines and URL-safe', () => {
    const b64 = Buffer.from(YAML.stringify(config())).toString('base64');
    expect(load(b64).loaded).toMatchObject({ format: 'base64', context: 'mesh-ctx' });
    expect(load(b64.replace(/(.{76})/g, '$1\n')).loaded.format).toBe('base64');
    expect(load(b64.replace(/\+/g, '-').replace(/\//g, '_')).loaded.format).toBe('base64');
  });

  it('selects the requested context', () => {
    const { loaded } = load(YAML.stringify(config()), 'data-ctx');
    expect(loaded).toMatchObject({ context: 'data-ctx', cluster: 'data', server: 'https://data.example.com:6443', user: 'certuser' });
    expect(loaded.kubeConfig.getCurrentCluster()?.server).toBe('https://data.example.com:6443');
  });

  it('uses the only context when none is current', () => {
    const c = config({ 'current-context': undefined, contexts: [config().contexts[1]] });
    expect(load(YAML.stringify(c)).loaded.context).toBe('data-ctx');
  });

  it('masks the whole value and every credential before anything else', () => {
    const text = YAML.stringify(config());
    const { secrets } = load(text);
    expect(secrets[0]).toBe(text.trim());
    expect(secrets).toContain('token-0123456789abcdef');
    expect(secrets).toContain('hunter2-password');
    expect(secrets).toContain('exec-secret-value-123');
    expect(secrets).toContain(Buffer.from(KEY_PEM).toString('base64'));
    // The decoded private key and each of its lines.
    expect(secrets).toContain(KEY_PEM.trim());
    expect(secrets).toContain('MHcCAQEEIPrivateKeyLineOne0123456789abcdef');
    expect(secrets).not.toContain('https://mesh.example.com:6443');
    expect(secrets).not.toContain('ACCESS_KEY_SECRET');
  });

  it('does not mask the lines of the YAML, which would hide common words in every log', () => {
    const { secrets } = load(YAML.stringify(config()));
    expect(secrets).not.toContain('clusters:');
    expect(secrets).not.toContain('- name: mesh');
    expect(secrets.every((s) => !s.startsWith('current-context'))).toBe(true);
  });

  it('masks each line of wrapped base64', () => {
    const b64 = Buffer.from(YAML.stringify(config())).toString('base64').replace(/(.{76})/g, '$1\n');
    const { secrets } = load(b64);
    expect(secrets).toContain(b64.split('\n')[1]);
  });

  it('masks the decoded text of a base64 kubeconfig', () => {
    const text = YAML.stringify(config());
    const { secrets } = load(Buffer.from(text).toString('base64'));
    expect(secrets).toContain(text.trim());
  });

  it('masks the input even when it cannot be parsed', () => {
    const secrets: string[] = [];
    expect(() => loadKubeconfig('clusters: [\n  token: s3cr3t-token-value', { setSecret: (s) => secrets.push(s) })).toThrow(UserError);
    expect(secrets[0]).toBe('clusters: [\n  token: s3cr3t-token-value');
  });

  it('explains malformed YAML without quoting it', () => {
    const err = failure(() => load('apiVersion: v1\nclusters: [\n  - token: s3cr3t-token-value\n users: {'));
    expect(err.message).toMatch(/kubeconfig is neither a kubeconfig nor base64 of one: the YAML has an error: .* at line \d+, column \d+/);
    expect(err.message).not.toContain('s3cr3t');
  });

  it('explains base64 that is not a kubeconfig', () => {
    const err = failure(() => load(Buffer.from('hello: world\n').toString('base64')));
    expect(err.message).toContain('is base64, but it does not decode to a kubeconfig');
  });

  it('explains text that is neither', () => {
    expect(failure(() => load('just some words, not a config')).message).toContain('neither a kubeconfig nor base64 of one');
    expect(failure(() => load('%%%not-base64%%%')).message).toContain('neither a kubeconfig nor base64 of one');
  });

  it('explains an empty secret', () => {
    expect(failure(() => load('  \n')).message).toContain('kubeconfig is empty');
  });

  it('names a missing context and lists the existing ones', () => {
    const err = failure(() => load(YAML.stringify(config()), 'prod'));
    expect(err.message).toBe('kubeconfig has no context "prod" (its contexts: "mesh-ctx", "data-ctx", "basic-ctx", "exec-ctx")');
  });

  it('asks for a context when several exist and none is current', () => {
    const err = failure(() => load(YAML.stringify(config({ 'current-context': '' }))));
    expect(err.message).toContain('sets no current-context and has 4 contexts');
  });

  it('reports a current-context that does not exist', () => {
    expect(failure(() => load(YAML.stringify(config({ 'current-context': 'gone' })))).message).toContain(
      'current-context "gone" is not one of its contexts',
    );
  });

  it('reports a context naming a missing cluster or user', () => {
    const c = config({ contexts: [{ name: 'x', context: { cluster: 'nope', user: 'deployer' } }], 'current-context': 'x' });
    expect(failure(() => load(YAML.stringify(c))).message).toContain('names cluster "nope", which it does not define');
    const d = config({ contexts: [{ name: 'x', context: { cluster: 'mesh', user: 'nope' } }], 'current-context': 'x' });
    expect(failure(() => load(YAML.stringify(d))).message).toContain('names user "nope", which it does not define');
  });

  it('reports a cluster without server or with a bad CA', () => {
    const c = config({ clusters: [{ name: 'mesh', cluster: {} }] });
    expect(failure(() => load(YAML.stringify(c))).message).toContain('cluster "mesh" has no server address');
    const d = config({ clusters: [{ name: 'mesh', cluster: { server: 'https://x', 'certificate-authority-data': 'bm90IGEgY2VydA==' } }] });
    expect(failure(() => load(YAML.stringify(d))).message).toContain('certificate-authority-data that is not base64 of a PEM certificate');
  });

  it('names the input in messages', () => {
    const err = failure(() => loadKubeconfig('', { inputName: 'cluster-kubeconfig', setSecret: () => {} }));
    expect(err.message).toMatch(/^cluster-kubeconfig is empty/);
  });
});
