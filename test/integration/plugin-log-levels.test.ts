// The reference plugin at the log levels a gateway runs it with. Below debug
// it keeps its stream contexts itself and builds no log line Envoy would
// drop; at debug it goes through the SDK as before, debug lines included. A
// user must see the same answers at every level, also when the level is
// changed on a running gateway (Envoy's admin /logging), with requests whose
// contexts were made on one path finishing on the other.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { renderEnvoyBootstrap } from '../../src/envoy/bootstrap.js';
import { startEnvoy, type EnvoyProcess } from '../../src/envoy/process.js';
import { startUpstream, type Upstream } from '../../src/test/upstream.js';
import { makePlugin, runCli, tempDir } from '../helpers/cli.js';

const DENY_BODY = 'Forbidden by ASM Wasm Plugin, assemblyscript version\n';
const REQUEST_LINE = /#\d+ wasm-as: on_http_request_headers/;
const DENY_LINE = 'wasm-as: allow header not found or is not true, deny by default';
// Written by the SDK when it creates a stream context.
const SDK_DEBUG_LINE = /ensureContext\(context_id: \d+, root_context_id: \d+\)/;

let wasm: string;
let upstream: Upstream;
let envoy: EnvoyProcess;
let workDir: string;

async function start(level: string): Promise<void> {
  await envoy?.stop();
  workDir = tempDir('log-levels');
  envoy = await startEnvoy({
    binary: inject('envoyPath'),
    workDir,
    componentLogLevel: `wasm:${level}`,
    bootstrap: renderEnvoyBootstrap({
      listenerPort: 0,
      adminPort: 0,
      upstreamPort: upstream.port,
      filter: {
        name: 'header-authorization',
        namespace: 'istio-system',
        rootId: 'header-authorization',
        configuration: JSON.stringify({ header: 'allow', value: 'true' }),
        failStrategy: 'FAIL_CLOSE',
        wasmPath: wasm,
      },
    }),
  });
}

async function setLevel(level: string): Promise<void> {
  const res = await fetch(`${envoy.adminUrl}/logging?wasm=${level}`, { method: 'POST' });
  expect(res.status).toBe(200);
}

/** Allowed and denied requests, alternating, several on one keep-alive connection; returns what each got. */
async function traffic(count: number): Promise<Array<{ allowed: boolean; status: number; body: string; type: string | null }>> {
  const out = [];
  for (let i = 0; i < count; i++) {
    const allowed = i % 2 === 0;
    const res = await fetch(`http://127.0.0.1:${envoy.listenerPort}/status/200`, { headers: allowed ? { allow: 'true' } : { allow: 'nope' } });
    out.push({ allowed, status: res.status, body: await res.text(), type: res.headers.get('content-type') });
  }
  return out;
}

function expectPolicy(results: Awaited<ReturnType<typeof traffic>>): void {
  for (const r of results) {
    if (r.allowed) expect(r.status).toBe(200);
    else expect(r).toMatchObject({ status: 403, body: DENY_BODY, type: 'text/plain' });
  }
}

const linesSince = (from: number) => envoy.log().slice(from);

beforeAll(async () => {
  const dir = makePlugin();
  for (const stage of ['toolchain', 'build']) {
    const run = await runCli([stage, '--plugin-dir', dir, '--json'], { RUNNER_TOOL_CACHE: inject('toolCache') });
    if (run.code !== 0) throw new Error(`could not ${stage} the reference plugin: ${run.json?.error ?? run.stderr}`);
  }
  wasm = path.join(dir, 'build', 'plugin.wasm');
  upstream = await startUpstream();
});

afterAll(async () => {
  await envoy?.stop();
  await upstream?.close();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

describe('the reference plugin at each log level', () => {
  it('at warning (a gateway\'s default) it enforces the policy and writes none of its info lines', async () => {
    await start('warning');
    const from = envoy.log().length;
    expectPolicy(await traffic(40));
    const log = linesSince(from);
    expect(log).not.toMatch(REQUEST_LINE);
    expect(log).not.toContain(DENY_LINE);
    expect(log).not.toMatch(SDK_DEBUG_LINE);
  });

  it('at info it logs each request and each denial with the request\'s context id, and no debug lines', async () => {
    await start('info');
    const from = envoy.log().length;
    expectPolicy(await traffic(10));
    const log = linesSince(from);
    const ids = [...log.matchAll(/#(\d+) wasm-as: on_http_request_headers/g)].map((m) => m[1]);
    expect(ids).toHaveLength(10);
    expect(new Set(ids).size).toBe(10);
    expect(log.split(DENY_LINE).length - 1).toBe(5);
    expect(log).not.toMatch(SDK_DEBUG_LINE);
  });

  it('at debug the SDK\'s own context lines appear as well, and the answers are the same', async () => {
    await start('debug');
    const from = envoy.log().length;
    expectPolicy(await traffic(10));
    const log = linesSince(from);
    expect(log).toMatch(SDK_DEBUG_LINE);
    expect(log).toMatch(REQUEST_LINE);
    expect(log.split(DENY_LINE).length - 1).toBe(5);
  });

  it('keeps answering when the level changes on a running Envoy, in both directions', async () => {
    await start('info');
    expectPolicy(await traffic(6));
    await setLevel('debug');
    let from = envoy.log().length;
    expectPolicy(await traffic(6));
    expect(linesSince(from)).toMatch(SDK_DEBUG_LINE);
    await setLevel('warning');
    from = envoy.log().length;
    expectPolicy(await traffic(6));
    expect(linesSince(from)).not.toMatch(REQUEST_LINE);
    await setLevel('info');
    from = envoy.log().length;
    expectPolicy(await traffic(6));
    expect(linesSince(from)).toMatch(REQUEST_LINE);
    expect(envoy.alive()).toBe(true);
    expect(envoy.log()).not.toMatch(/wasm log.*(panic|abort|unreachable)|Function: proxy_on_\w+ failed/i);
  });
});
