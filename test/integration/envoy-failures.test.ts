// Failures Envoy reports, and plugins that call other services, through the
// real pipeline: the real compiler, a real Envoy 1.40, real requests. Each
// message must quote Envoy's own line.
import * as path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { fixtureSource, makePlugin, runCli } from '../helpers/cli.js';

const env = { RUNNER_TOOL_CACHE: inject('toolCache') };

const AUTHZ_UPSTREAMS = [
  'upstreams:',
  '  authz:                 # the cluster the plugin calls',
  '    status: 403',
  '    body: "not on the list\\n"',
  '    paths:',
  '      /check/alice: {status: 200, body: "ok\\n"}',
].join('\n');

describe('Envoy load and start failures quote Envoy', () => {
  it('a trap in proxy_on_configure: the stage fails naming the function, in Envoy\'s words', async () => {
    const plugin = makePlugin({ source: fixtureSource('trap-on-configure') });
    const run = await runCli(['run', '--plugin-dir', plugin, '--no-push', '--json'], env);
    expect(run.code).toBe(1);
    expect(run.json!.error).toMatch(
      /the plugin trapped in proxy_on_configure while applying its configuration \(plugin-config \/ spec\.pluginConfig\); its last log line: configure-trap: reading \d+ bytes of configuration; Envoy: "Function: proxy_on_configure failed: Uncaught RuntimeError: unreachable"/,
    );
  });
});

describe('a plugin that calls a declared upstream', () => {
  it('passes its cases against the fake, and fails a case that expects the wrong thing', async () => {
    const plugin = makePlugin({
      source: fixtureSource('http-call'),
      files: {
        'tests.yaml': [
          AUTHZ_UPSTREAMS,
          'cases:',
          '  - name: alice is let through once authz answers 200',
          '    request: {path: /status/418, headers: {x-user: alice}}',
          '    expect: {status: 418, upstream: true, calls: {authz: 1}}',
          '  - name: bob is denied with the body authz sent',
          '    request: {path: /status/418, headers: {x-user: bob}}',
          '    expect: {status: 403, body: "not on the list\\n", upstream: false, calls: {authz: 1}}',
          '',
        ].join('\n'),
        'wrong-tests.yaml': [
          AUTHZ_UPSTREAMS,
          'cases:',
          '  - name: alice is let through once authz answers 200',
          '    request: {path: /status/418, headers: {x-user: alice}}',
          '    expect: {status: 418, calls: {authz: 1}}',
          '  - name: bob is let through (wrong)',
          '    request: {path: /status/418, headers: {x-user: bob}}',
          '    expect: {status: 418, calls: {authz: 0}}',
          '',
        ].join('\n'),
        'no-upstream-tests.yaml': [
          'cases:',
          '  - name: alice is let through, but authz is not declared',
          '    request: {path: /status/418, headers: {x-user: alice}}',
          '    expect: {status: 418}',
          '',
        ].join('\n'),
      },
    });
    const ok = await runCli(['run', '--plugin-dir', plugin, '--no-push', '--json'], env);
    expect(ok.json!.error).toBeUndefined();
    expect(ok.code).toBe(0);
    const report = ok.json!.results.test;
    expect(report.afterCases).toEqual([]);
    expect(report.cases.map((c: any) => [c.passed, c.actual.status])).toEqual([
      [true, 418],
      [true, 403],
    ]);
    // The fake saw the plugin's own call, with the path it built.
    expect(report.cases[1].calls.authz.map((r: any) => `${r.method} ${r.path}`)).toEqual(['GET /check/bob']);

    const wasm = path.join(plugin, 'build', 'plugin.wasm');
    const wrong = await runCli(['test', '--plugin-dir', plugin, '--wasm-path', wasm, '--tests', path.join(plugin, 'wrong-tests.yaml'), '--json'], env);
    expect(wrong.code).toBe(1);
    expect(wrong.json!.error).toMatch(/1 of 2 local Envoy test case\(s\) failed/);
    expect(wrong.json!.error).toMatch(/bob is let through \(wrong\) \(wrong-tests\.yaml:11\)\n\s+status: expected 418, got 403\n\s+calls to authz: expected 0, got 1 \(GET \/check\/bob\)/);

    // Without the declaration Envoy has no cluster "authz": the call cannot be made.
    const undeclared = await runCli(['test', '--plugin-dir', plugin, '--wasm-path', wasm, '--tests', path.join(plugin, 'no-upstream-tests.yaml'), '--json'], env);
    expect(undeclared.code).toBe(1);
    expect(undeclared.json!.error).toMatch(/status: expected 418, got 500/);
  });
});

describe('traps outside the cases', () => {
  it('a trap in proxy_on_done at shutdown fails the stage though every case passed', async () => {
    const plugin = makePlugin({
      source: fixtureSource('trap-on-done'),
      files: {
        'tests.yaml': ['cases:', '  - name: the request reaches the upstream', '    request: {path: /status/418}', '    expect: {status: 418, upstream: true}', ''].join('\n'),
      },
    });
    const run = await runCli(['run', '--plugin-dir', plugin, '--no-push', '--json'], env);
    expect(run.code).toBe(1);
    const report = run.json!.results.test;
    expect(report.cases[0]).toMatchObject({ name: 'the request reaches the upstream', passed: true });
    expect(report.afterCases).toHaveLength(1);
    expect(report.afterCases[0]).toMatch(
      /^the plugin trapped in proxy_on_done at shutdown, after Envoy was told to stop; Envoy: "Function: proxy_on_done failed: Uncaught RuntimeError: unreachable"/,
    );
    expect(report.envoyLog).toMatch(/done-trap: root context \d+ is done/);
    expect(report.failed).toBe(0);
    expect(run.json!.outputs['test-failed']).toBe('0');
    expect(run.json!.error).toMatch(/^the plugin failed outside the test cases:\n- the plugin trapped in proxy_on_done at shutdown/);
  });
});
