// The reference plugin at the log levels a gateway runs it with. Below debug
// it keeps its stream contexts itself and builds no log line Envoy would
// drop; at debug it goes through the SDK as before, debug lines included. A
// user must see the same answers at every level, also when the level is
// changed on a running gateway (Envoy's admin /logging), with requests whose
// contexts were made on one path finishing on the other.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePlugin, TEMPLATE_DIR } from '../helpers/cli.js';
import { compilePlugin, startGateway, type Gateway } from '../helpers/gateway.js';

const DENY_BODY = 'Forbidden by ASM Wasm Plugin, assemblyscript version\n';
const REQUEST_LINE = /#\d+ wasm-as: on_http_request_headers/;
const DENY_LINE = 'wasm-as: allow header not found or is not true, deny by default';
// Written by the SDK when it creates a stream context.
const SDK_DEBUG_LINE = /ensureContext\(context_id: \d+, root_context_id: \d+\)/;

let wasm: string;
let gateway: Gateway | undefined;

async function start(level: string, module: string = wasm): Promise<void> {
  await gateway?.stop();
  gateway = undefined;
  gateway = await startGateway(module, { config: { header: 'allow', value: 'true' }, logLevel: level });
}

const envoy = () => gateway!.envoy;

async function setLevel(level: string): Promise<void> {
  const res = await fetch(`${envoy().adminUrl}/logging?wasm=${level}`, { method: 'POST' });
  expect(res.status).toBe(200);
}

/** Allowed and denied requests, alternating, several on one keep-alive connection; returns what each got. */
async function traffic(count: number): Promise<Array<{ allowed: boolean; status: number; body: string; type: string | null }>> {
  const out = [];
  for (let i = 0; i < count; i++) {
    const allowed = i % 2 === 0;
    const res = await fetch(`${gateway!.url}/status/200`, { headers: allowed ? { allow: 'true' } : { allow: 'nope' } });
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

const linesSince = (from: number) => envoy().log().slice(from);

beforeAll(async () => {
  wasm = await compilePlugin();
});

afterAll(async () => {
  await gateway?.stop();
});

describe('the reference plugin at each log level', () => {
  it('at warning (a gateway\'s default) it enforces the policy and writes none of its info lines', async () => {
    await start('warning');
    const from = envoy().log().length;
    expectPolicy(await traffic(40));
    const log = linesSince(from);
    expect(log).not.toMatch(REQUEST_LINE);
    expect(log).not.toContain(DENY_LINE);
    expect(log).not.toMatch(SDK_DEBUG_LINE);
  });

  it('at info it logs each request and each denial with the request\'s context id, and no debug lines', async () => {
    await start('info');
    const from = envoy().log().length;
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
    const from = envoy().log().length;
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
    let from = envoy().log().length;
    expectPolicy(await traffic(6));
    expect(linesSince(from)).toMatch(SDK_DEBUG_LINE);
    await setLevel('warning');
    from = envoy().log().length;
    expectPolicy(await traffic(6));
    expect(linesSince(from)).not.toMatch(REQUEST_LINE);
    await setLevel('info');
    from = envoy().log().length;
    expectPolicy(await traffic(6));
    expect(linesSince(from)).toMatch(REQUEST_LINE);
    expect(envoy().alive()).toBe(true);
    expect(envoy().log()).not.toMatch(/wasm log.*(panic|abort|unreachable)|Function: proxy_on_\w+ failed/i);
  });
});

// The template in plugin/ (AssemblyScript 0.28, its own proxy-wasm layer) has
// one path at every level: it asks Envoy for the level when a request starts
// and builds no line Envoy would drop.
describe('the template (plugin/) at each log level', () => {
  let template: string;
  beforeAll(async () => {
    template = await compilePlugin(makePlugin({ from: TEMPLATE_DIR }));
  });

  it('at warning it enforces the policy and writes none of its info lines', async () => {
    await start('warning', template);
    const from = envoy().log().length;
    expectPolicy(await traffic(40));
    const log = linesSince(from);
    expect(log).not.toMatch(REQUEST_LINE);
    expect(log).not.toContain(DENY_LINE);
  });

  it('at info and at debug it logs each request and each denial with the request\'s context id', async () => {
    for (const level of ['info', 'debug']) {
      await start(level, template);
      const from = envoy().log().length;
      expectPolicy(await traffic(10));
      const log = linesSince(from);
      const ids = [...log.matchAll(/#(\d+) wasm-as: on_http_request_headers/g)].map((m) => m[1]);
      expect(ids, level).toHaveLength(10);
      expect(new Set(ids).size, level).toBe(10);
      expect(log.split(DENY_LINE).length - 1, level).toBe(5);
    }
  });

  it('follows a level changed on a running Envoy, in both directions', async () => {
    await start('info', template);
    expectPolicy(await traffic(6));
    await setLevel('warning');
    let from = envoy().log().length;
    expectPolicy(await traffic(6));
    expect(linesSince(from)).not.toMatch(REQUEST_LINE);
    await setLevel('info');
    from = envoy().log().length;
    expectPolicy(await traffic(6));
    expect(linesSince(from)).toMatch(REQUEST_LINE);
    expect(envoy().alive()).toBe(true);
    expect(envoy().log()).not.toMatch(/wasm log.*(panic|abort|unreachable)|Function: proxy_on_\w+ failed/i);
  });
});
