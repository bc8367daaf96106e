// The push stage against a real registry (distribution 2.8 from Debian's
// docker-registry), read back with skopeo. Needs docker-registry, skopeo,
// openssl and htpasswd (test/infra/install-registry.sh); fails without them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { push, type PushOptions } from '../../../src/oci/index.js';
import { RegistryClient } from '../../../src/oci/registry/index.js';
import { gate } from '../../../src/oci/gate.js';
import { MEDIA_TYPES, sha256Digest } from '../../../src/oci/image.js';
import { UserError } from '../../../src/errors.js';
import { requireTools, startRegistry, type TestRegistry } from '../../infra/registry.js';
import { startFaultyProxy } from '../../infra/faulty-proxy.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const PLUGIN_DIR = join(ROOT, 'plugin');
const WASM_PATH = join(PLUGIN_DIR, 'build', 'plugin.wasm');
const FAST_RETRY = { attempts: 3, baseDelayMs: 50, maxDelayMs: 200, maxRetryAfterMs: 1500 };

let WORK: string;
let wasm: Buffer;
let wasmSha: string;
let otherWasmPath: string;
let otherWasmSha: string;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function ensurePlugin(): void {
  if (existsSync(WASM_PATH)) return;
  if (!existsSync(join(PLUGIN_DIR, 'node_modules'))) execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: PLUGIN_DIR, stdio: 'inherit' });
  execFileSync('npm', ['run', 'asbuild'], { cwd: PLUGIN_DIR, stdio: 'inherit' });
  if (!existsSync(WASM_PATH)) throw new Error(`building the plugin did not produce ${WASM_PATH}`);
}

// Asynchronous on purpose: the token service of the test registry runs in
// this process, and a blocking child would starve it.
async function skopeo(args: string[]): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)('skopeo', ['--insecure-policy', ...args], { encoding: 'utf8', timeout: 60_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`skopeo ${args.join(' ')} failed: ${e.stderr || e.message}`, { cause: err });
  }
}

/** skopeo options to read from `reg` (TLS CA dir or no TLS verify, credentials). */
function readOpts(reg: TestRegistry, prefix: '' | 'src-'): string[] {
  const opts: string[] = [];
  if (reg.certDir) opts.push(`--${prefix}cert-dir`, reg.certDir);
  else opts.push(`--${prefix}tls-verify=false`);
  if (reg.username) opts.push(`--${prefix}creds`, `${reg.username}:${reg.password}`);
  return opts;
}

/** Reads `ref` back with skopeo: raw manifest digest, and plugin.wasm from a `dir:` copy. */
async function readBack(reg: TestRegistry, ref: string): Promise<{ digest: string; wasm: Buffer; mediaType: string }> {
  const raw = await skopeo(['inspect', '--raw', ...readOpts(reg, ''), `docker://${ref}`]);
  const digest = `sha256:${sha256(Buffer.from(raw))}`;
  const manifest = JSON.parse(raw) as { mediaType?: string; layers: Array<{ mediaType: string; digest: string }> };
  const out = mkdtempSync(join(WORK, 'copy-'));
  await skopeo(['copy', '--quiet', ...readOpts(reg, 'src-'), `docker://${ref}`, `dir:${out}`]);
  const copied = readFileSync(join(out, 'manifest.json'));
  expect(`sha256:${sha256(copied)}`).toBe(digest);
  const wasmLayer = manifest.layers.find((l) => l.mediaType.endsWith('+wasm'));
  let plugin: Buffer;
  if (wasmLayer) {
    plugin = readFileSync(join(out, wasmLayer.digest.slice(7)));
  } else {
    const layer = manifest.layers[manifest.layers.length - 1];
    const x = join(out, 'x');
    mkdirSync(x);
    execFileSync('tar', ['-xzf', join(out, layer.digest.slice(7)), '-C', x]);
    expect(readdirSync(x)).toEqual(['plugin.wasm']);
    plugin = readFileSync(join(x, 'plugin.wasm'));
  }
  return { digest, wasm: plugin, mediaType: manifest.mediaType ?? '' };
}

function base(reg: { host: string }, extra: Partial<PushOptions>): PushOptions {
  return {
    wasmPath: WASM_PATH,
    wasmSha256: wasmSha,
    registry: reg.host,
    repository: 'team/header-plugin',
    tags: [],
    format: 'compat',
    source: 'https://example.com/team/header-plugin',
    revision: '0123456789abcdef0123456789abcdef01234567',
    created: '2024-05-01T12:00:00Z',
    retry: FAST_RETRY,
    ...extra,
  };
}

/** Status of a GET on a plain-HTTP test registry (no auth). */
async function status(reg: TestRegistry, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${reg.host}${path}`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
  return { status: res.status, body: await res.text() };
}

beforeAll(() => {
  requireTools();
  ensurePlugin();
  WORK = mkdtempSync(join(tmpdir(), 'asm-wasm-oci-it-'));
  wasm = readFileSync(WASM_PATH);
  wasmSha = sha256(wasm);
  // a second, different but valid module: the plugin plus a custom section
  const extra = Buffer.concat([Buffer.from([0x00, 0x06, 0x05]), Buffer.from('other')]);
  const other = Buffer.concat([wasm, extra]);
  otherWasmPath = join(WORK, 'other.wasm');
  writeFileSync(otherWasmPath, other);
  otherWasmSha = sha256(other);
}, 300_000);

afterAll(() => {
  if (WORK) rmSync(WORK, { recursive: true, force: true });
});

describe('plain HTTP registry on loopback', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry('http');
  }, 60_000);
  afterAll(async () => {
    await reg?.close();
  });

  it('pushes, tags several names, and a second push uploads nothing and gives the same digest', async () => {
    const first = await push(base(reg, { tags: ['latest', 'v1.0.0', 'main'] }));
    expect(first.uploaded).toBe(2);
    expect(first.skipped).toBe(0);
    expect(first.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(first.imageRef).toBe(`${reg.host}/team/header-plugin@${first.digest}`);
    expect(first.url).toBe(`oci://${reg.host}/team/header-plugin@${first.digest}`);
    expect(first.tags).toEqual(['latest', 'v1.0.0', 'main']);

    for (const ref of [`${reg.host}/team/header-plugin@${first.digest}`, ...first.tags.map((t) => `${reg.host}/team/header-plugin:${t}`)]) {
      const back = await readBack(reg, ref);
      expect(back.digest).toBe(first.digest);
      expect(back.wasm.equals(wasm)).toBe(true);
    }

    const second = await push(base(reg, { tags: ['latest', 'v1.0.0', 'main'] }));
    expect(second.digest).toBe(first.digest);
    expect(second.uploaded).toBe(0);
    expect(second.skipped).toBe(2);
  });

  it.each(['docker', 'wasm-artifact'] as const)('pushes the %s format', async (format) => {
    const r = await push(base(reg, { repository: `team/${format}`, format, tags: ['latest'] }));
    const back = await readBack(reg, `${reg.host}/team/${format}:latest`);
    expect(back.digest).toBe(r.digest);
    expect(back.wasm.equals(wasm)).toBe(true);
    expect(back.mediaType).toBe(format === 'docker' ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json');
  });

  it('uploads in chunks above the threshold', async () => {
    const r = await push(base(reg, { repository: 'team/chunked', tags: ['latest'], chunkThresholdBytes: 1024, chunkSizeBytes: 4096 }));
    expect(r.uploaded).toBe(2);
    expect((await readBack(reg, `${reg.host}/team/chunked:latest`)).wasm.equals(wasm)).toBe(true);
  });

  it('never moves a version tag to another image without force; other tags move', async () => {
    const repo = 'team/immutable';
    const one = await push(base(reg, { repository: repo, tags: ['v2.0.0', 'latest'] }));
    const attempt = push(base(reg, { repository: repo, wasmPath: otherWasmPath, wasmSha256: otherWasmSha, tags: ['latest', 'v2.0.0'] }));
    await expect(attempt).rejects.toThrow(/v2\.0\.0 already names sha256:.*version tags are not moved/);
    // nothing moved, not even "latest"
    expect((await readBack(reg, `${reg.host}/${repo}:latest`)).digest).toBe(one.digest);

    const moved = await push(base(reg, { repository: repo, wasmPath: otherWasmPath, wasmSha256: otherWasmSha, tags: ['latest', 'v2.0.0'], force: true }));
    expect(moved.digest).not.toBe(one.digest);
    expect((await readBack(reg, `${reg.host}/${repo}:v2.0.0`)).digest).toBe(moved.digest);
    // re-pushing the same image under an existing version tag is fine
    await expect(push(base(reg, { repository: repo, wasmPath: otherWasmPath, wasmSha256: otherWasmSha, tags: ['v2.0.0'] }))).resolves.toMatchObject({
      digest: moved.digest,
      uploaded: 0,
    });
  });

  it('retries win over a proxy that resets the first connections and answers 503', async () => {
    const resets = await startFaultyProxy({ target: { host: '127.0.0.1', port: reg.port }, resetFirst: 2 });
    try {
      const r = await push(base(resets, { repository: 'team/flaky', tags: ['latest'], retry: { ...FAST_RETRY, attempts: 4 } }));
      expect(resets.faults()).toBe(2);
      expect((await readBack(reg, `${reg.host}/team/flaky:latest`)).digest).toBe(r.digest);
    } finally {
      await resets.close();
    }
    const busy = await startFaultyProxy({ target: { host: '127.0.0.1', port: reg.port }, unavailableFirst: 1 });
    try {
      const started = Date.now();
      const r = await push(base(busy, { repository: 'team/busy', tags: ['latest'], retry: { ...FAST_RETRY, attempts: 4 } }));
      expect(busy.faults()).toBe(1);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000); // Retry-After: 1 was honoured
      expect((await readBack(reg, `${reg.host}/team/busy:latest`)).digest).toBe(r.digest);
    } finally {
      await busy.close();
    }
  });

  it('fails when uploads are cut midway, and leaves no tag and no manifest behind', async () => {
    const proxy = await startFaultyProxy({ target: { host: '127.0.0.1', port: reg.port }, cutUploads: 2000 });
    let digest: string;
    try {
      const attempt = push(base(proxy, { repository: 'team/cut', tags: ['v1.0.0', 'latest'] }));
      await expect(attempt).rejects.toThrow(UserError);
      await expect(attempt).rejects.toThrow(/uploading blob sha256:[0-9a-f]{64}.*gave up after 3 tries/);
      expect(proxy.faults()).toBeGreaterThanOrEqual(3);
      digest = (await push(base(reg, { registry: undefined, layoutDir: join(WORK, 'cut-layout') }))).digest;
    } finally {
      await proxy.close();
    }
    const tags = await status(reg, '/v2/team/cut/tags/list');
    expect(tags.status === 404 || JSON.parse(tags.body).tags === null).toBe(true);
    for (const ref of ['latest', 'v1.0.0', digest]) expect((await status(reg, `/v2/team/cut/manifests/${ref}`)).status).toBe(404);
  });

  it('shows the registry\'s answer when it rejects a manifest', async () => {
    const c = new RegistryClient({ registry: reg.host, repository: 'team/rejected', retry: FAST_RETRY, log: () => undefined });
    try {
      await c.ping();
      const missing = `sha256:${'1'.repeat(64)}`;
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.ociManifest,
          config: { mediaType: MEDIA_TYPES.ociConfig, digest: missing, size: 10 },
          layers: [{ mediaType: MEDIA_TYPES.ociLayerGzip, digest: missing, size: 10 }],
        }),
      );
      const err = (await c.putManifest('latest', manifest, MEDIA_TYPES.ociManifest).catch((e: unknown) => e)) as UserError;
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toMatch(new RegExp(`registry ${reg.host.replace(/\./g, '\\.')} rejected the manifest for .*team/rejected \\(HTTP 400\\)`));
      expect(err.details).toMatch(/MANIFEST_BLOB_UNKNOWN/);
    } finally {
      c.close();
    }
  });

  it('the gate refuses, in a real registry, a single raw-wasm layer and an index', async () => {
    const c = new RegistryClient({ registry: reg.host, repository: 'team/bad-layouts', retry: FAST_RETRY, log: () => undefined });
    try {
      await c.ping();
      const config = Buffer.from('{"type":"envoy_proxy"}');
      for (const data of [config, wasm]) await c.uploadBlob({ digest: sha256Digest(data), data });
      const single = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.ociManifest,
          config: { mediaType: MEDIA_TYPES.wasmConfig, digest: sha256Digest(config), size: config.length },
          layers: [{ mediaType: MEDIA_TYPES.wasmLayer, digest: sha256Digest(wasm), size: wasm.length }],
        }),
      );
      const singleDigest = await c.putManifest(sha256Digest(single), single, MEDIA_TYPES.ociManifest);
      await expect(gate(c.source(), singleDigest, wasmSha)).rejects.toThrow(/number of layers must be 2 but got 1/);

      const index = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.ociIndex,
          manifests: [{ mediaType: MEDIA_TYPES.ociManifest, digest: singleDigest, size: single.length, platform: { architecture: 'wasm', os: 'wasip1' } }],
        }),
      );
      const indexDigest = await c.putManifest(sha256Digest(index), index, MEDIA_TYPES.ociIndex);
      await expect(gate(c.source(), indexDigest, wasmSha)).rejects.toThrow(/image index/);
    } finally {
      c.close();
    }
  });

  it('writes an OCI layout when no registry is given, readable by skopeo', async () => {
    const dir = join(WORK, 'layout');
    const r = await push(base(reg, { registry: undefined, layoutDir: dir, tags: ['v1.0.0'] }));
    expect(r.ociLayout).toBe(dir);
    expect(r.uploaded).toBe(2);
    const raw = await skopeo(['inspect', '--raw', `oci:${dir}:v1.0.0`]);
    expect(`sha256:${sha256(Buffer.from(raw))}`).toBe(r.digest);
    const again = await push(base(reg, { registry: undefined, layoutDir: dir, tags: ['v1.0.0'] }));
    expect(again).toMatchObject({ digest: r.digest, uploaded: 0, skipped: 2 });
  });

  it('reports a stopped registry clearly after bounded retries', async () => {
    await reg.stop();
    try {
      const started = Date.now();
      const attempt = push(base(reg, { repository: 'team/down', tags: ['latest'] }));
      await expect(attempt).rejects.toThrow(new RegExp(`could not reach registry ${reg.host.replace(/\./g, '\\.')} .*ECONNREFUSED.*gave up after 3 tries.*check the registry address`));
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await reg.start();
    }
  });
});

describe('TLS registry with Basic auth (htpasswd)', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry('tls-basic');
  }, 60_000);
  afterAll(async () => {
    await reg?.close();
  });

  it('pushes with a custom CA and a username/password', async () => {
    const r = await push(base(reg, { caFile: reg.caFile, username: reg.username, password: reg.password, tags: ['v1.0.0'] }));
    expect(r.uploaded).toBe(2);
    const back = await readBack(reg, `${reg.host}/team/header-plugin:v1.0.0`);
    expect(back.digest).toBe(r.digest);
    expect(back.wasm.equals(wasm)).toBe(true);
  });

  it('refuses a wrong password with a message naming registry, repository and user (not the password)', async () => {
    const err = (await push(base(reg, { caFile: reg.caFile, username: reg.username, password: 'wrong-password-123', tags: ['x'] })).catch((e: unknown) => e)) as UserError;
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain(`registry ${reg.host} refused user "${reg.username}"`);
    expect(err.message).toContain('team/header-plugin');
    expect(err.message).toMatch(/check the username and password/);
    expect(`${err.message} ${err.details ?? ''}`).not.toContain('wrong-password-123');
  });

  it('asks for credentials when none are found', async () => {
    const empty = join(WORK, 'empty-docker-config.json');
    writeFileSync(empty, '{}');
    await expect(push(base(reg, { caFile: reg.caFile, dockerConfigPath: empty, tags: ['x'] }))).rejects.toThrow(/needs a login/);
  });

  it('explains an untrusted certificate', async () => {
    await expect(push(base(reg, { username: reg.username, password: reg.password, tags: ['x'] }))).rejects.toThrow(
      /could not verify the TLS certificate of registry \S+ \([A-Z_]+: its certificate is not signed by a CA this runner trusts\): give the CA certificate that signed it \(registry-ca\)/,
    );
  });

  it('takes credentials from a Docker config: auths and a credential helper', async () => {
    const config = join(WORK, 'docker-config.json');
    writeFileSync(config, JSON.stringify({ auths: { [`https://${reg.host}`]: { auth: Buffer.from(`${reg.username}:${reg.password}`).toString('base64') } } }));
    const r = await push(base(reg, { caFile: reg.caFile, dockerConfigPath: config, repository: 'team/from-config', tags: ['latest'] }));
    expect((await readBack(reg, `${reg.host}/team/from-config:latest`)).digest).toBe(r.digest);

    const bin = join(WORK, 'bin');
    mkdirSync(bin, { recursive: true });
    const helper = join(bin, 'docker-credential-asmtest');
    writeFileSync(helper, `#!/bin/sh\nread host\necho "{\\"ServerURL\\":\\"$host\\",\\"Username\\":\\"${reg.username}\\",\\"Secret\\":\\"${reg.password}\\"}"\n`);
    chmodSync(helper, 0o755);
    const helperConfig = join(WORK, 'docker-config-helper.json');
    writeFileSync(helperConfig, JSON.stringify({ credHelpers: { [reg.host]: 'asmtest' } }));
    const savedPath = process.env.PATH;
    process.env.PATH = `${bin}:${savedPath}`;
    try {
      const r2 = await push(base(reg, { caFile: reg.caFile, dockerConfigPath: helperConfig, repository: 'team/from-helper', tags: ['latest'] }));
      expect((await readBack(reg, `${reg.host}/team/from-helper:latest`)).digest).toBe(r2.digest);
    } finally {
      process.env.PATH = savedPath;
    }
  });
});

describe('registry with token auth (RS256 JWT, x5c)', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry('token');
  }, 60_000);
  afterAll(async () => {
    await reg?.close();
  });

  it('pushes with Bearer tokens fetched once per scope', async () => {
    const before = reg.tokenRequests();
    const r = await push(base(reg, { username: reg.username, password: reg.password, tags: ['v1.0.0', 'latest'], format: 'wasm-artifact' }));
    expect(reg.tokenRequests() - before).toBe(1);
    expect(r.uploaded).toBe(2);
    const back = await readBack(reg, `${reg.host}/team/header-plugin:latest`);
    expect(back.digest).toBe(r.digest);
    expect(back.wasm.equals(wasm)).toBe(true);
  });

  it('reports a refused token request clearly', async () => {
    const err = (await push(base(reg, { username: reg.username, password: 'not-the-password', tags: ['x'] })).catch((e: unknown) => e)) as UserError;
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toMatch(new RegExp(`token service of registry ${reg.host.replace(/\./g, '\\.')} refused user "${reg.username}".*team/header-plugin`));
    expect(`${err.message} ${err.details ?? ''}`).not.toContain('not-the-password');
  });

  it('reports anonymous access being refused', async () => {
    const empty = join(WORK, 'empty-docker-config-2.json');
    writeFileSync(empty, '{}');
    await expect(push(base(reg, { dockerConfigPath: empty, tags: ['x'] }))).rejects.toThrow(/refused anonymous access .* for repository team\/header-plugin/);
  });
});
