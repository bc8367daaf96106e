// The Actions cache under a real runner: act (nektos/act) runs its own cache
// server (the v1 REST API at ACTIONS_CACHE_URL, which @actions/cache speaks
// when ACTIONS_CACHE_SERVICE_V2 is unset), and the action saves to it and
// restores from it with @actions/cache as it does on GitHub.
//
// The same workflow (test/infra/act/workflows/action-cache.yml: toolchain →
// build → test on the reference plugin) runs twice, as two jobs on two fresh
// runners would: a fresh checkout at the same workspace path and an empty
// tool cache at the same path each time, sharing only the cache server's
// store. The first job installs the compiler (npm), downloads Envoy (its
// release binary, from a local server; these machines reach no GitHub) and
// compiles, and saves all three; the second restores all three and installs,
// downloads and compiles nothing.
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { releaseUrl } from '../../src/envoy/install.js';
import { DEFAULT_ENVOY_VERSION } from '../../src/inputs.js';
import { tempDir } from '../helpers/cli.js';
import { actBinary, commitAll, copyOfThisRepository, runAct, type ActRun } from '../infra/act.js';

const version = DEFAULT_ENVOY_VERSION;
let server: http.Server;
let downloadUrl = '';
/** The paths the release server was asked for. */
const served: string[] = [];

beforeAll(async () => {
  actBinary();
  const envoy = inject('envoyPath');
  server = http.createServer((req, res) => {
    served.push(req.url ?? '');
    if (req.url === new URL(releaseUrl(downloadUrl, version, 'x86_64')).pathname) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': fs.statSync(envoy).size });
      fs.createReadStream(envoy).pipe(res);
    } else {
      res.writeHead(404);
      res.end('not here\n');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  downloadUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/releases/download`;
});

/** The folders this file made (a few hundred MB: checkouts, tool caches, the cache server's store). */
const made: string[] = [];
function scratch(prefix: string): string {
  const dir = tempDir(prefix);
  made.push(dir);
  return dir;
}

afterAll(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

describe('act: the Actions cache carries the toolchain, Envoy and the compiled module to the next runner', () => {
  it('the first job installs, downloads, compiles and saves; the second restores all three and does none of that', async () => {
    expect(process.arch, 'the release server serves the x86_64 binary').toBe('x64');
    const cacheServer = scratch('act-cache-server');
    // act in host mode makes <action cache path>/tool_cache the runner's tool cache.
    const actionCache = scratch('act-actions');
    const toolCache = path.join(actionCache, 'tool_cache');
    const workdir = path.join(scratch('act-cache-repo'), 'repo');
    // No Envoy on PATH: the action's installer looks in the tool cache, then the Actions cache, then downloads.
    const noEnvoy = path.join(scratch('no-envoy'), 'envoy');
    for (const dir of (process.env.PATH ?? '').split(path.delimiter)) expect(fs.existsSync(path.join(dir, 'envoy')), `envoy on PATH in ${dir}`).toBe(false);

    /** One job on a fresh runner: a fresh checkout (changed by `edit`) and an empty tool cache, at the same paths as before. */
    const job = async (edit: (dir: string) => void = () => {}): Promise<ActRun> => {
      fs.rmSync(workdir, { recursive: true, force: true });
      copyOfThisRepository(workdir);
      edit(workdir);
      commitAll(workdir);
      fs.rmSync(toolCache, { recursive: true, force: true });
      fs.mkdirSync(toolCache, { recursive: true });
      served.length = 0;
      return runAct({
        workdir,
        workflow: 'test/infra/act/workflows/action-cache.yml',
        event: 'push',
        envoyPath: noEnvoy,
        cacheServerPath: cacheServer,
        actionCachePath: actionCache,
        vars: { ENVOY_DOWNLOAD_URL: downloadUrl },
      });
    };

    const first = await job();
    expect(first.code, first.log).toBe(0);
    expect(first.result['tool-cache']).toBe(toolCache);
    expect(first.result['cache-hit']).toBe('false');
    expect(first.log).toMatch(/not in the tool cache; installing with npm/);
    const toolchainKey = /saving the toolchain \S+ to the Actions cache \(key (asm-wasm-toolchain-linux-x64-\S+)\)/.exec(first.log)?.[1];
    expect(toolchainKey, first.log).toBeDefined();
    expect(served).toEqual([new URL(releaseUrl(downloadUrl, version, 'x86_64')).pathname]);
    expect(first.log).toContain(`saving Envoy ${version} to the Actions cache (key asm-wasm-envoy-${version}-linux-x86_64-download)`);
    const buildKey = /stored the build as ([0-9a-f]{16}) for reuse/.exec(first.log)?.[1];
    expect(buildKey, first.log).toBeDefined();
    expect(first.log).toMatch(new RegExp(`saving the compiled-module store to the Actions cache \\(key asm-wasm-build-linux-x64-[0-9a-f]{32}-${buildKey}\\)`));
    // The cache server took every save.
    expect(first.log).not.toMatch(/Failed to save|could not save/);

    const second = await job();
    expect(second.code, second.log).toBe(0);
    expect(second.result['tool-cache']).toBe(toolCache);
    // The toolchain stage's own output: nothing was downloaded.
    expect(second.result['cache-hit']).toBe('true');
    expect(second.log).toContain(`restored the toolchain ${toolchainKey!.replace('asm-wasm-toolchain-linux-x64-', '')} from the Actions cache (key ${toolchainKey})`);
    expect(second.log).toContain(`restored Envoy ${version} from the Actions cache (key asm-wasm-envoy-${version}-linux-x86_64-download)`);
    expect(second.log).toContain(`using Envoy ${version} restored from the Actions cache`);
    expect(second.log).toContain(`reused the build of ${buildKey} from the Actions cache`);
    // Nothing installed, downloaded or compiled: no npm install, no release download, no pip, no asc.
    expect(served).toEqual([]);
    expect(second.log).not.toMatch(/installing with npm|from PyPI|downloading http|compiling without reuse|stored the build as/);
    expect(second.log).not.toMatch(/\[command\]\S*\b(npm|npx|asc|pip|python3?) /);
    expect(second.log).not.toMatch(/saving .* to the Actions cache/);
    // The same module, and it passed the same cases in Envoy.
    expect(second.result['wasm-sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(second.result['wasm-sha256']).toBe(first.result['wasm-sha256']);
    expect(Number(second.result['test-passed'])).toBeGreaterThan(0);
    expect(second.result['test-failed']).toBe('0');

    // A changed source (a comment) is another key: the restored store is consulted, nothing in it is reused, the plugin compiles.
    const third = await job((dir) => fs.appendFileSync(path.join(dir, 'plugin', 'assembly', 'index.ts'), '\n// changed\n'));
    expect(third.code, third.log).toBe(0);
    expect(third.log).toContain(`restored the compiled-module store from the Actions cache (key asm-wasm-build-linux-x64-`);
    expect(third.log).toMatch(/no build in the store restored from the Actions cache \(key \S+\) has these exact inputs/);
    expect(third.log).not.toContain('reused the build');
    expect(third.log).toMatch(/\[command\]\S*npm run --silent asbuild:release/);
    const thirdKey = /stored the build as ([0-9a-f]{16}) for reuse/.exec(third.log)?.[1];
    expect(thirdKey, third.log).toBeDefined();
    expect(thirdKey).not.toBe(buildKey);
    expect(third.log).toMatch(new RegExp(`saving the compiled-module store to the Actions cache \\(key asm-wasm-build-linux-x64-[0-9a-f]{32}-${thirdKey}\\)`));
  });
});
