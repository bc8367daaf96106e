// The README's fault table, row by row: each fault is injected by a proxy on
// 127.0.0.1 (test/infra/fault-http-proxy.ts) in front of the real test
// registry (distribution, TLS + htpasswd) or the real kube-apiserver, and
// goes through the product's own code (push(), deploy(), the CLI's test
// stage). Each test asserts three things: whether the request was retried
// (counted at the proxy), what the user is told (one line, naming the
// registry or API server and what to do, no stack, no credential), and that
// nothing is half-applied (read straight from the registry or API server:
// no tag moved, no manifest without its blobs, no WasmPlugin changed).
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import YAML from 'yaml';
import { push, type PushOptions } from '../../src/oci/index.js';
import { sha256Digest, sha256Hex } from '../../src/oci/image.js';
import { deploy, type DeployOptions, type DeployResult } from '../../src/k8s/deploy.js';
import { UserError } from '../../src/errors.js';
import { startFaultHttpProxy, type FaultHttpProxy, type FaultRule } from '../infra/fault-http-proxy.js';
import { startRegistry, type TestRegistry } from '../infra/registry.js';
import { kubeStartTimeout, startKube, type Kube } from '../infra/kube.js';
import { proxyWasmModule } from '../helpers/wasm.js';
import { pluginOf } from '../helpers/plugin.js';
import { makePlugin, runCli, tempDir } from '../helpers/cli.js';

/** What a user is shown: one line, no stack frame, no secret. */
function expectOneCleanLine(err: unknown, secrets: string[] = []): UserError {
  expect(err).toBeInstanceOf(UserError);
  const e = err as UserError;
  expect(e.message).not.toContain('\n');
  expect(e.message).not.toMatch(/\n\s+at |\(\/.*:\d+:\d+\)/);
  for (const s of secrets) expect(`${e.message}\n${e.details ?? ''}`).not.toContain(s);
  return e;
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---------------------------------------------------------------------------
// registry

const RETRY = { attempts: 3, baseDelayMs: 50, maxDelayMs: 200, maxRetryAfterMs: 5000 };

/** A module Envoy's checks accept, made unique and ~48 KiB by a custom section of random bytes. */
function makeWasm(dir: string, name: string): { path: string; sha: string } {
  const payload = randomBytes(48 * 1024);
  const sectionName = Buffer.from('fault-test');
  const content = Buffer.concat([Buffer.from([sectionName.length]), sectionName, payload]);
  const size: number[] = [];
  let n = content.length;
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    size.push(b);
  } while (n);
  const wasm = Buffer.concat([Buffer.from(proxyWasmModule()), Buffer.from([0, ...size]), content]);
  const file = path.join(dir, `${name}.wasm`);
  fs.writeFileSync(file, wasm);
  return { path: file, sha: sha256Hex(wasm) };
}

describe('registry faults (distribution over TLS with Basic auth, behind the fault proxy)', () => {
  let reg: TestRegistry;
  let work: string;
  let oldImage: { path: string; sha: string };
  let proxy: FaultHttpProxy | undefined;

  /** A GET/HEAD straight to the registry (not through the proxy). */
  function direct(method: 'GET' | 'HEAD', apiPath: string): Promise<{ status: number; digest?: string; body: string }> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        `https://${reg.host}${apiPath}`,
        {
          method,
          ca: fs.readFileSync(reg.caFile!),
          auth: `${reg.username}:${reg.password}`,
          headers: { Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, digest: res.headers['docker-content-digest'] as string | undefined, body: Buffer.concat(chunks).toString('utf8') }),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  /** The digest `tag` names in `repo`, or undefined. */
  async function tagOf(repo: string, tag: string): Promise<string | undefined> {
    const res = await direct('GET', `/v2/${repo}/manifests/${tag}`);
    return res.status === 200 ? sha256Digest(Buffer.from(res.body)) : undefined;
  }

  /** Every manifest reachable in `repo` (its tags and `extra` digests) has every blob it names. */
  async function expectNoManifestWithoutBlobs(repo: string, extra: string[] = []): Promise<void> {
    const list = await direct('GET', `/v2/${repo}/tags/list`);
    const tags: string[] = list.status === 200 ? (JSON.parse(list.body).tags ?? []) : [];
    for (const ref of [...tags, ...extra]) {
      const m = await direct('GET', `/v2/${repo}/manifests/${ref}`);
      if (m.status === 404) continue;
      expect(m.status).toBe(200);
      const manifest = JSON.parse(m.body) as { config: { digest: string }; layers: Array<{ digest: string }> };
      for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
        expect((await direct('HEAD', `/v2/${repo}/blobs/${d}`)).status, `${repo}:${ref} names blob ${d}`).toBe(200);
      }
    }
  }

  function options(registry: string, repository: string, image: { path: string; sha: string }, extra: Partial<PushOptions> = {}): PushOptions {
    return {
      wasmPath: image.path,
      wasmSha256: image.sha,
      registry,
      repository,
      tags: ['latest'],
      format: 'compat',
      username: reg.username,
      password: reg.password,
      caFile: reg.caFile,
      created: '2024-05-01T12:00:00Z',
      retry: RETRY,
      ...extra,
    };
  }

  /** `repo:latest` names an earlier image, pushed straight to the registry; returns its digest. */
  async function seed(repo: string): Promise<string> {
    return (await push(options(reg.host, repo, oldImage))).digest;
  }

  /** The new image pushed through a proxy with `rules`. */
  async function pushThrough(repo: string, rules: FaultRule[], image = makeWasm(work, repo.replace(/\W/g, '-'))) {
    proxy = await startFaultHttpProxy({ target: `https://${reg.host}`, ca: fs.readFileSync(reg.caFile!, 'utf8'), rules });
    const started = Date.now();
    const result = push(options(`http://${proxy.host}`, repo, image));
    // The digest the image gets, computed the same way without a registry.
    const expected = (await push(options('', repo, image, { registry: undefined, layoutDir: path.join(work, `layout-${repo.replace(/\W/g, '-')}`) }))).digest;
    return { result, expected, started, proxy };
  }

  beforeAll(async () => {
    reg = await startRegistry('tls-basic');
    work = tempDir('faults-registry');
    oldImage = makeWasm(work, 'old');
  }, 120_000);
  afterAll(async () => {
    await proxy?.close();
    await reg?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });
  const closeProxy = async () => {
    await proxy?.close();
    proxy = undefined;
  };

  it('500 on every blob upload: retried 3 times with a new upload session, then one clear line; tag unchanged, nothing pushed', async () => {
    const repo = 'faults/blob-500';
    const before = await seed(repo);
    const t = await pushThrough(repo, [
      { method: 'PUT', path: /\/blobs\/uploads\//, fault: { status: 500, body: { errors: [{ code: 'UNKNOWN', message: 'unknown error' }] } } },
    ]);
    const err = expectOneCleanLine(await failure(t.result), [reg.password!]);
    await closeProxy();
    expect(err.message).toMatch(
      new RegExp(`^registry ${escape(t.proxy.host)} kept failing while uploading blob sha256:[0-9a-f]{64} \\(\\d+ bytes\\) for ${escape(t.proxy.host)}/${repo}: HTTP 500 \\(UNKNOWN: unknown error\\) \\(gave up after 3 tries\\)$`),
    );
    // The first blob's upload was tried 3 times, each in a new session (POST then PUT).
    expect(t.proxy.seen('PUT', /\/blobs\/uploads\//)).toHaveLength(3);
    expect(t.proxy.seen('POST', /\/blobs\/uploads\/$/)).toHaveLength(3);
    expect(t.proxy.seen('PUT', /\/manifests\//)).toHaveLength(0);
    expect(await tagOf(repo, 'latest')).toBe(before);
    expect((await direct('GET', `/v2/${repo}/manifests/${t.expected}`)).status).toBe(404);
    await expectNoManifestWithoutBlobs(repo, [t.expected]);
  });

  it('500 on one blob upload: retried, the push succeeds', async () => {
    const repo = 'faults/blob-500-once';
    const t = await pushThrough(repo, [{ method: 'PUT', path: /\/blobs\/uploads\//, times: 1, fault: { status: 500 } }]);
    const r = await t.result;
    await closeProxy();
    expect(t.proxy.seen('PUT', /\/blobs\/uploads\//).map((s) => s.status)).toEqual([500, 201, 201]);
    expect(await tagOf(repo, 'latest')).toBe(r.digest);
    await expectNoManifestWithoutBlobs(repo);
  });

  it('500 on every PUT of the tag: retried 3 times; the tag still names the old image, the new one is complete but untagged', async () => {
    const repo = 'faults/manifest-500';
    const before = await seed(repo);
    const t = await pushThrough(repo, [{ method: 'PUT', path: /\/manifests\/latest$/, fault: { status: 500, body: 'internal error' } }]);
    const err = expectOneCleanLine(await failure(t.result), [reg.password!]);
    await closeProxy();
    expect(err.message).toBe(
      `registry ${t.proxy.host} kept failing while pushing the manifest to ${t.proxy.host}/${repo}:latest for ${t.proxy.host}/${repo}: HTTP 500 (internal error) (gave up after 3 tries)`,
    );
    expect(t.proxy.seen('PUT', /\/manifests\/sha256:/)).toHaveLength(1);
    expect(t.proxy.seen('PUT', /\/manifests\/latest$/)).toHaveLength(3);
    expect(await tagOf(repo, 'latest')).toBe(before);
    expect((await direct('GET', `/v2/${repo}/manifests/${t.expected}`)).status).toBe(200);
    await expectNoManifestWithoutBlobs(repo, [t.expected]);
  });

  it('503 with Retry-After: 1 on the upload: the wait is honoured, then it succeeds', async () => {
    const repo = 'faults/busy-503';
    const t = await pushThrough(repo, [
      { method: 'POST', path: /\/blobs\/uploads\/$/, times: 2, fault: { status: 503, headers: { 'Retry-After': '1' }, body: 'busy' } },
    ]);
    const r = await t.result;
    await closeProxy();
    const posts = t.proxy.seen('POST', /\/blobs\/uploads\/$/);
    expect(posts.map((s) => s.status)).toEqual([503, 503, 202, 202]);
    expect(posts[1].at - posts[0].at).toBeGreaterThanOrEqual(950);
    expect(posts[2].at - posts[1].at).toBeGreaterThanOrEqual(950);
    expect(await tagOf(repo, 'latest')).toBe(r.digest);
  });

  it('429 with Retry-After: 2 on the blob check: the wait is honoured, then it succeeds', async () => {
    const repo = 'faults/slow-down-429';
    const t = await pushThrough(repo, [
      {
        method: 'HEAD',
        path: /\/blobs\/sha256:/,
        times: 1,
        fault: { status: 429, headers: { 'Retry-After': '2' }, body: { errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] } },
      },
    ]);
    const r = await t.result;
    await closeProxy();
    const heads = t.proxy.seen('HEAD', /\/blobs\/sha256:/);
    expect(heads[0].status).toBe(429);
    expect(heads[1].path).toBe(heads[0].path);
    expect(heads[1].at - heads[0].at).toBeGreaterThanOrEqual(1950);
    expect(heads[1].at - heads[0].at).toBeLessThan(4000);
    expect(await tagOf(repo, 'latest')).toBe(r.digest);
  });

  it('connection reset in the middle of a blob upload: the blob is sent again in a new session, and the image reads back whole', async () => {
    const repo = 'faults/reset-upload';
    const t = await pushThrough(repo, [{ method: 'PUT', path: /\/blobs\/uploads\//, times: 1, fault: { reset: true, afterBytes: 16 * 1024 } }]);
    const r = await t.result;
    await closeProxy();
    // The small config blob goes through; the ~48 KiB layer is cut after 16 KiB, then sent again whole.
    const puts = t.proxy.seen('PUT', /\/blobs\/uploads\//);
    expect(puts.map((s) => [s.fault, s.status])).toEqual([
      ['pass', 201],
      ['reset after 16384 bytes', undefined],
      ['pass', 201],
    ]);
    expect(t.proxy.seen('POST', /\/blobs\/uploads\/$/)).toHaveLength(3);
    expect(await tagOf(repo, 'latest')).toBe(r.digest);
    await expectNoManifestWithoutBlobs(repo);
  });

  it('manifest PUT refused with 400 MANIFEST_INVALID: not retried, the registry\'s words shown; nothing tagged', async () => {
    const repo = 'faults/manifest-invalid';
    const before = await seed(repo);
    const t = await pushThrough(repo, [
      {
        method: 'PUT',
        path: /\/manifests\/sha256:/,
        fault: { status: 400, body: { errors: [{ code: 'MANIFEST_INVALID', message: 'manifest invalid', detail: 'unsupported layer media type' }] } },
      },
    ]);
    const err = expectOneCleanLine(await failure(t.result), [reg.password!]);
    await closeProxy();
    expect(err.message).toBe(
      `registry ${t.proxy.host} rejected the manifest for ${t.proxy.host}/${repo} (HTTP 400) while pushing the manifest to ${t.proxy.host}/${repo}@${t.expected}`,
    );
    expect(err.details).toBe('MANIFEST_INVALID: manifest invalid ("unsupported layer media type")');
    expect(t.proxy.seen('PUT', /\/manifests\//)).toHaveLength(1);
    expect(await tagOf(repo, 'latest')).toBe(before);
    expect((await direct('GET', `/v2/${repo}/manifests/${t.expected}`)).status).toBe(404);
    await expectNoManifestWithoutBlobs(repo, [t.expected]);
  });

  it('tag PUT refused with 403 DENIED: not retried, names the user and what to check; the tag is not moved', async () => {
    const repo = 'faults/tag-denied';
    const before = await seed(repo);
    const t = await pushThrough(repo, [
      {
        method: 'PUT',
        path: /\/manifests\/latest$/,
        fault: { status: 403, body: { errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] } },
      },
    ]);
    const err = expectOneCleanLine(await failure(t.result), [reg.password!]);
    await closeProxy();
    expect(err.message).toBe(
      `registry ${t.proxy.host} refused user "${reg.username}" (from the given username and password) for repository ${repo} while pushing the manifest to ${t.proxy.host}/${repo}:latest (HTTP 403): ` +
        `check that this user may push to ${repo} (and that the repository exists, if the registry does not create it on push)`,
    );
    expect(t.proxy.seen('PUT', /\/manifests\/latest$/)).toHaveLength(1);
    expect(await tagOf(repo, 'latest')).toBe(before);
    await expectNoManifestWithoutBlobs(repo, [t.expected]);
  });
});

// ---------------------------------------------------------------------------
// API server

describe('API server faults (kube-apiserver behind the fault proxy)', () => {
  const URL_A = `oci://registry.example.com/faults/plugin@sha256:${'a'.repeat(64)}`;
  const URL_B = `oci://registry.example.com/faults/plugin@sha256:${'b'.repeat(64)}`;
  const WP = '/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins';
  let kube: Kube;
  let proxy: FaultHttpProxy | undefined;

  /** The deployer's kubeconfig, pointed at `server` over plain HTTP (the proxy speaks HTTPS to the API server). */
  function viaProxy(server: string): string {
    const doc = YAML.parse(kube.kubeconfig('deployer'));
    const cluster = doc.clusters[0].cluster;
    delete cluster['certificate-authority-data'];
    cluster.server = server;
    cluster['insecure-skip-tls-verify'] = true;
    return YAML.stringify(doc);
  }

  function run(name: string, url: string, over: Partial<DeployOptions> & { lines?: string[] } = {}): Promise<DeployResult> {
    const { lines, ...rest } = over;
    return deploy({
      kubeconfig: kube.kubeconfig('deployer'),
      mode: 'apply',
      plugin: pluginOf({ name, namespace: 'istio-system', pluginName: 'fault-test', url, failStrategy: 'FAIL_OPEN' }),
      setSecret: () => {},
      log: (line) => lines?.push(line),
      ...rest,
    });
  }

  async function live(name: string): Promise<any> {
    const res = await kube.request('admin', 'GET', `${WP}/${name}`);
    return res.status === 404 ? null : res.body;
  }

  /** `name` exists with URL_A; returns its resourceVersion. */
  async function seed(name: string): Promise<string> {
    await run(name, URL_A);
    return (await live(name)).metadata.resourceVersion;
  }

  async function through(rules: FaultRule[]): Promise<FaultHttpProxy> {
    proxy = await startFaultHttpProxy({ target: kube.server, ca: kube.caPem, rules });
    return proxy;
  }

  const status = (code: number, reason: string, message: string) => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });

  beforeAll(async () => {
    kube = await startKube();
  }, kubeStartTimeout());
  afterAll(async () => {
    await proxy?.close();
    await kube?.stop();
  });
  const closeProxy = async () => {
    await proxy?.close();
    proxy = undefined;
  };

  it('409 Conflict on the apply: not retried, says to run again; the WasmPlugin is unchanged', async () => {
    const name = 'conflict-409';
    const rv = await seed(name);
    const p = await through([
      {
        method: 'PATCH',
        path: new RegExp(`/wasmplugins/${name}\\?`),
        fault: {
          status: 409,
          body: status(409, 'Conflict', `Operation cannot be fulfilled on wasmplugins.extensions.istio.io "${name}": the object has been modified; please apply your changes to the latest version and try again`),
        },
      },
    ]);
    const lines: string[] = [];
    const err = expectOneCleanLine(await failure(run(name, URL_B, { kubeconfig: viaProxy(p.url), lines })), [kube.tokens.deployer]);
    await closeProxy();
    expect(err.message).toBe(
      `patch wasmplugins.extensions.istio.io istio-system/${name}: conflict (409): Operation cannot be fulfilled on wasmplugins.extensions.istio.io "${name}": ` +
        'the object has been modified; please apply your changes to the latest version and try again. The object changed while it was being updated: run again',
    );
    expect(lines[0]).toContain(`on ${p.url}`); // the log's first line names the API server
    expect(p.seen('PATCH', /wasmplugins/)).toHaveLength(1);
    expect((await live(name)).metadata.resourceVersion).toBe(rv);
    expect((await live(name)).spec.url).toBe(URL_A);
  });

  it('403 Forbidden on the apply: not retried, names the user, the verb and the fix; the WasmPlugin is unchanged', async () => {
    const name = 'forbidden-403';
    const rv = await seed(name);
    const p = await through([
      {
        method: 'PATCH',
        path: new RegExp(`/wasmplugins/${name}\\?`),
        fault: {
          status: 403,
          body: status(
            403,
            'Forbidden',
            `wasmplugins.extensions.istio.io "${name}" is forbidden: User "asm-wasm-test-deployer" cannot patch resource "wasmplugins" in API group "extensions.istio.io" in the namespace "istio-system"`,
          ),
        },
      },
    ]);
    const err = expectOneCleanLine(await failure(run(name, URL_B, { kubeconfig: viaProxy(p.url) })), [kube.tokens.deployer]);
    await closeProxy();
    expect(err.message).toBe(
      'RBAC denied user "asm-wasm-test-deployer" to patch wasmplugins.extensions.istio.io in namespace "istio-system" (403 Forbidden). ' +
        'Grant the verb with a Role and RoleBinding (or ClusterRole) for that user, or use a kubeconfig that has it',
    );
    expect(p.seen('PATCH', /wasmplugins/)).toHaveLength(1);
    expect((await live(name)).metadata.resourceVersion).toBe(rv);
  });

  it('500 on the apply twice: retried (a server-side apply is idempotent), the third try applies it', async () => {
    const name = 'flaky-500';
    await seed(name);
    const p = await through([
      { method: 'PATCH', path: new RegExp(`/wasmplugins/${name}\\?`), times: 2, fault: { status: 500, body: status(500, 'InternalError', 'etcdserver: leader changed') } },
    ]);
    const lines: string[] = [];
    const result = await run(name, URL_B, { kubeconfig: viaProxy(p.url), lines });
    await closeProxy();
    expect(p.seen('PATCH', /wasmplugins/).map((s) => s.status)).toEqual([500, 500, 200]);
    expect(lines.filter((l) => /retrying in \d+ ms/.test(l))).toHaveLength(2);
    expect(result.result).toBe('configured');
    expect((await live(name)).spec.url).toBe(URL_B);
  });

  it('500 on every apply: 4 tries, then one line naming the API server and its answer; the WasmPlugin is unchanged', async () => {
    const name = 'broken-500';
    const rv = await seed(name);
    const p = await through([
      { method: 'PATCH', path: new RegExp(`/wasmplugins/${name}\\?`), fault: { status: 500, body: status(500, 'InternalError', 'etcdserver: request timed out') } },
    ]);
    const err = expectOneCleanLine(await failure(run(name, URL_B, { kubeconfig: viaProxy(p.url) })), [kube.tokens.deployer]);
    await closeProxy();
    expect(err.message).toBe(
      `the API server ${p.url} (context "asm-wasm-test") answered 500 InternalError to patch wasmplugins.extensions.istio.io istio-system/${name}: etcdserver: request timed out`,
    );
    expect(p.seen('PATCH', /wasmplugins/)).toHaveLength(4);
    expect((await live(name)).metadata.resourceVersion).toBe(rv);
  });

  it('a connection reset on the apply: retried, then applied once', async () => {
    const name = 'reset';
    await seed(name);
    const p = await through([{ method: 'PATCH', path: new RegExp(`/wasmplugins/${name}\\?`), times: 1, fault: { reset: true } }]);
    const result = await run(name, URL_B, { kubeconfig: viaProxy(p.url) });
    await closeProxy();
    expect(p.seen('PATCH', /wasmplugins/).map((s) => s.fault)).toEqual(['reset', 'pass']);
    expect(result.result).toBe('configured');
    expect((await live(name)).spec.url).toBe(URL_B);
  });

  it('429 with Retry-After: 1 on the read: the wait is honoured, then the apply goes through', async () => {
    const name = 'throttled-429';
    await seed(name);
    const p = await through([
      {
        method: 'GET',
        path: new RegExp(`/wasmplugins/${name}$`),
        times: 1,
        fault: { status: 429, headers: { 'Retry-After': '1' }, body: status(429, 'TooManyRequests', 'Too many requests, please try again later.') },
      },
    ]);
    await run(name, URL_B, { kubeconfig: viaProxy(p.url) });
    await closeProxy();
    const gets = p.seen('GET', new RegExp(`/wasmplugins/${name}$`));
    expect(gets.map((s) => s.status)).toEqual([429, 200]);
    expect(gets[1].at - gets[0].at).toBeGreaterThanOrEqual(950);
    expect((await live(name)).spec.url).toBe(URL_B);
  });

  it('the API server unreachable: not retried, one line with the address and what to check; nothing changed', async () => {
    const name = 'unreachable';
    const rv = await seed(name);
    const p = await through([]);
    await closeProxy(); // nothing listens on its port any more
    const lines: string[] = [];
    const started = Date.now();
    const err = expectOneCleanLine(await failure(run(name, URL_B, { kubeconfig: viaProxy(p.url), lines })), [kube.tokens.deployer]);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err.message).toMatch(
      new RegExp(
        `^cannot reach the API server ${escape(p.url)} \\(context "asm-wasm-test"\\): connect ECONNREFUSED 127\\.0\\.0\\.1:${p.port}\\. Check the server address in kubeconfig and that this runner can reach it`,
      ),
    );
    expect(lines.filter((l) => /retrying/.test(l))).toEqual([]);
    expect((await live(name)).metadata.resourceVersion).toBe(rv);
  });

  it('no answer to the apply (a hang): ends at the request timeout, not retried; the WasmPlugin is unchanged', async () => {
    const name = 'hang';
    const rv = await seed(name);
    const p = await through([{ method: 'PATCH', path: new RegExp(`/wasmplugins/${name}\\?`), fault: { hang: true } }]);
    const started = Date.now();
    const err = expectOneCleanLine(await failure(run(name, URL_B, { kubeconfig: viaProxy(p.url), requestTimeoutMs: 1500 })), [kube.tokens.deployer]);
    const took = Date.now() - started;
    await closeProxy();
    expect(took).toBeGreaterThanOrEqual(1500);
    expect(took).toBeLessThan(6000);
    expect(err.message).toBe(
      `the API server ${p.url} (context "asm-wasm-test") accepted the connection but did not answer PATCH ${WP}/${name} within 1.5s: ` +
        'the change may or may not have been made; run again (the same apply or delete is safe to repeat)',
    );
    expect(p.seen('PATCH', /wasmplugins/)).toHaveLength(1);
    expect((await live(name)).metadata.resourceVersion).toBe(rv);
  });
});

// ---------------------------------------------------------------------------
// the local Envoy test

describe('Envoy exiting during the local test', () => {
  /** Child processes of this test process: pid and command line. */
  function children(): Array<{ pid: number; args: string }> {
    const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' }).trim();
    return out
      ? out.split('\n').map((l) => {
          const m = /^\s*(\d+)\s+(.*)$/.exec(l)!;
          return { pid: Number(m[1]), args: m[2] };
        })
      : [];
  }
  const isEnvoy = (args: string) => /\benvoy\b.* -c \S+envoy\.json/.test(args);

  async function activeDownstream(adminUrl: string): Promise<number> {
    const text = await (await fetch(`${adminUrl}/stats?filter=downstream_rq_active$`)).text();
    return text
      .split('\n')
      .filter((l) => !l.startsWith('http.admin.'))
      .reduce((sum, l) => sum + (Number(/: (\d+)$/.exec(l)?.[1]) || 0), 0);
  }

  it('Envoy killed in the middle of a case: the stage fails and stops everything it started', async () => {
    const plugin = makePlugin({
      files: {
        'tests.yaml': [
          'cases:',
          '  - name: a slow request',
          '    request: {path: /delay/2, headers: {allow: "true"}}',
          '    expect: {status: 200}',
          '  - name: a case after it',
          '    request: {path: /status/418, headers: {allow: "true"}}',
          '    expect: {status: 418}',
          '',
        ].join('\n'),
      },
    });
    let killed: { pid: number; upstreamPort: number; workDir: string } | undefined;
    let stopWatching = false;
    const watcher = (async () => {
      while (!stopWatching && !killed) {
        const envoy = children().find((c) => isEnvoy(c.args));
        if (envoy) {
          const config = / -c (\S+)/.exec(envoy.args)![1];
          const adminFile = / --admin-address-path (\S+)/.exec(envoy.args)![1];
          try {
            const admin = `http://${fs.readFileSync(adminFile, 'utf8').trim()}`;
            if (admin !== 'http://' && (await activeDownstream(admin)) > 0) {
              const bootstrap = JSON.parse(fs.readFileSync(config, 'utf8'));
              const upstreamPort: number = bootstrap.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value;
              process.kill(envoy.pid, 'SIGKILL');
              killed = { pid: envoy.pid, upstreamPort, workDir: path.dirname(config) };
              break;
            }
          } catch {
            // not ready yet
          }
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const started = Date.now();
    const run = await runCli(['run', '--plugin-dir', plugin, '--no-push', '--json'], { RUNNER_TOOL_CACHE: inject('toolCache') });
    stopWatching = true;
    await watcher;
    expect(killed, 'the Envoy of the test stage was found and killed mid-request').toBeDefined();
    expect(run.code).toBe(1);
    const error: string = run.json!.error!;
    // The stage fails; the case in flight and every case after it count as failed.
    expect(error.split('\n')[0]).toBe('2 of 2 local Envoy test case(s) failed:');
    // The case in flight says Envoy exited, in Envoy's exit status; the next case is not sent to a dead Envoy.
    expect(error).toMatch(/^- a slow request \(tests\.yaml:\d+\)\n {4}Envoy exited during this case \(signal SIGKILL\)/m);
    expect(run.json!.results.test.cases).toHaveLength(1);
    expect(run.json!.results.test.failed).toBe(2);
    expect(run.json!.results.test.passed).toBe(0);
    // Everything the stage started is stopped: no Envoy left, the upstream closed, the work dir gone.
    expect(children().filter((c) => isEnvoy(c.args))).toEqual([]);
    expect(fs.existsSync(killed!.workDir)).toBe(false);
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(killed!.upstreamPort, '127.0.0.1');
      s.on('connect', () => (s.destroy(), resolve(false)));
      s.on('error', () => resolve(true));
    });
    expect(refused).toBe(true);
    expect(Date.now() - started).toBeLessThan(180_000);
  });
});
