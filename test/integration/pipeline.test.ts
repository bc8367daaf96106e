// The real pipeline on the reference plugin and on broken plugins: the real
// AssemblyScript compiler, a real Envoy, real HTTP requests.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { fixtureSource, makePlugin, runCli, tempDir, TEMPLATE_DIR } from '../helpers/cli.js';

const toolCache = inject('toolCache');
const envoyDir = path.dirname(inject('envoyPath'));
const env = { RUNNER_TOOL_CACHE: toolCache };

describe('the pipeline on the reference plugin', () => {
  it('builds plugin.wasm, runs every case through Envoy, and sets outputs and a summary', async () => {
    const plugin = makePlugin({ from: TEMPLATE_DIR });
    const outputFile = path.join(tempDir('out'), 'output');
    const summaryFile = path.join(tempDir('summary'), 'summary.md');
    fs.writeFileSync(outputFile, '');
    fs.writeFileSync(summaryFile, '');
    const run = await runCli(['run', '--plugin-dir', plugin, '--json'], {
      ...env,
      GITHUB_ACTIONS: 'true',
      GITHUB_OUTPUT: outputFile,
      GITHUB_STEP_SUMMARY: summaryFile,
    });
    expect(run.json!.error).toBeUndefined();
    expect(run.code).toBe(0);
    const wasm = fs.readFileSync(path.join(plugin, 'build', 'plugin.wasm'));
    const sha = crypto.createHash('sha256').update(wasm).digest('hex');
    expect(run.json!.outputs).toMatchObject({
      'assemblyscript-version': '0.28.20',
      'wasm-path': path.join(plugin, 'build', 'plugin.wasm'),
      'wasm-sha256': sha,
      'wasm-size': String(wasm.length),
      'test-passed': '5',
      'test-failed': '0',
    });
    const report = run.json!.results.test;
    const byName = Object.fromEntries(report.cases.map((c: any) => [c.name, c]));
    // allow: true reaches the upstream, which answers with the teapot.
    expect(byName['a request with allow true reaches the upstream'].actual).toMatchObject({ status: 418, upstream: { reached: true } });
    expect(byName['a request with allow true reaches the upstream'].actual.body).toContain('-=[ teapot ]=-');
    // No header, allow: false and allow: TRUE are denied with the plugin's body.
    for (const name of ['a request without the allow header is denied', 'allow false is denied', 'the value is compared exactly (TRUE is not true)']) {
      expect(byName[name].actual.status, name).toBe(403);
      expect(byName[name].actual.upstream.reached, name).toBe(false);
    }
    expect(byName['a request without the allow header is denied'].actual.body).toBe('Forbidden by ASM Wasm Plugin, assemblyscript version\n');
    expect(byName['a request without the allow header is denied'].actual.headers['content-type']).toBe('text/plain');

    const outputs = fs.readFileSync(outputFile, 'utf8');
    expect(outputs).toContain(sha);
    const summary = fs.readFileSync(summaryFile, 'utf8');
    expect(summary).toContain('Local Envoy test: 5 passed, 0 failed');
    expect(summary.match(/✅/g)).toHaveLength(5);
    expect(summary).toContain(sha);
    expect(summary).toContain('denies every request');
  });

  it('installs the compiler once: a second run on the same runner is a cache hit', async () => {
    const fresh = tempDir('tool-cache');
    const path0 = `${envoyDir}${path.delimiter}${process.env.PATH}`;
    const first = await runCli(['toolchain', '--plugin-dir', makePlugin(), '--json'], { RUNNER_TOOL_CACHE: fresh, PATH: path0 });
    expect(first.code).toBe(0);
    expect(first.json!.outputs['cache-hit']).toBe('false');
    expect(first.json!.results.toolchain.source).toBe('npm');
    const second = await runCli(['run', '--plugin-dir', makePlugin(), '--json'], { RUNNER_TOOL_CACHE: fresh, PATH: path0 });
    expect(second.code).toBe(0);
    expect(second.json!.outputs['cache-hit']).toBe('true');
    expect(second.json!.results.toolchain.source).toBe('tool-cache');
    expect(second.stdout + second.stderr).not.toMatch(/npm ci/);
  });

  it('a changed plugin configuration changes the behaviour', async () => {
    const plugin = makePlugin({
      files: {
        'token-tests.yaml': [
          'cases:',
          '  - name: the configured header and value let the request through',
          '    request: {path: /status/418, headers: {x-api-key: s3cret}}',
          '    expect: {status: 418, upstream: true}',
          '  - name: the old allow header no longer does',
          '    request: {path: /status/418, headers: {allow: "true"}}',
          '    expect: {status: 401, body: "no key\\n", upstream: false}',
          '',
        ].join('\n'),
      },
    });
    const config = '{"header": "x-api-key", "value": "s3cret", "denyStatus": 401, "denyBody": "no key\\n"}';
    const ok = await runCli(['run', '--plugin-dir', plugin, '--plugin-config', config, '--tests', path.join(plugin, 'token-tests.yaml'), '--json'], env);
    expect(ok.json!.error).toBeUndefined();
    expect(ok.code).toBe(0);
    expect(ok.json!.outputs['test-passed']).toBe('2');

    // The reference cases fail under this configuration, and say why.
    const bad = await runCli(['test', '--plugin-dir', plugin, '--wasm-path', path.join(plugin, 'build', 'plugin.wasm'), '--plugin-config', config, '--json'], env);
    expect(bad.code).toBe(1);
    expect(bad.json!.error).toMatch(/local Envoy test case\(s\) failed/);
    expect(bad.json!.error).toMatch(/status: expected 418, got 401/);
  });
});

describe('bad input fails with a clear message', () => {
  it('a missing plugin directory', async () => {
    const run = await runCli(['run', '--plugin-dir', '/nonexistent/plugin'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/input `plugin-dir`: \/nonexistent\/plugin is not a directory/);
  });

  it('a missing entry file', async () => {
    const plugin = makePlugin({ asbuild: null });
    const run = await runCli(['run', '--plugin-dir', plugin, '--entry', 'assembly/main.ts'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/input `entry`: .*assembly\/main\.ts does not exist/);
  });

  it('a compile error, with the file and line as an annotation', async () => {
    const plugin = makePlugin({ source: fixtureSource('compile-error') });
    const run = await runCli(['run', '--plugin-dir', plugin], { ...env, GITHUB_ACTIONS: 'true' });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/::error file=.*assembly\/index\.ts,line=4,col=\d+::TS2304: Cannot find name 'notDeclaredAnywhere'/);
    expect(run.stdout).toMatch(/::error::the plugin did not compile \(1 error[^)]*\); first: .*assembly\/index\.ts:4:\d+ error TS2304: Cannot find name 'notDeclaredAnywhere'/);
  });

  it('a module that is not a proxy-wasm plugin', async () => {
    const plugin = makePlugin({ source: fixtureSource('not-proxy-wasm'), asbuild: 'asc assembly/index.ts -b build/plugin.wasm --optimize' });
    const run = await runCli(['run', '--plugin-dir', plugin], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/is not a proxy-wasm plugin Envoy can load/);
    expect(run.stderr).toMatch(/no proxy-wasm ABI marker/);
    expect(run.stderr).toMatch(/no allocator/);
  });

  it('a module built without the SDK abort handler (imports env.abort)', async () => {
    const plugin = makePlugin({ asbuild: 'asc assembly/index.ts -b build/plugin.wasm --optimize' });
    const run = await runCli(['run', '--plugin-dir', plugin], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/imports env\.abort, which Envoy does not provide: compile with `--use abort=abort_proc_exit`/);
  });

  it('a plugin name the plugin does not register', async () => {
    const plugin = makePlugin({ from: TEMPLATE_DIR });
    const run = await runCli(['run', '--plugin-dir', plugin, '--plugin-name', 'header_authorization'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/the plugin does not register root id "header_authorization".*Missing root context factory/);
  });

  it('a plugin that traps while handling a request', async () => {
    const plugin = makePlugin({ source: fixtureSource('trap') });
    const run = await runCli(['run', '--plugin-dir', plugin, '--json'], env);
    expect(run.code).toBe(1);
    expect(run.json!.error).toMatch(/the plugin trapped while handling this request: .*unreachable/);
  });

  it('a configuration the plugin rejects: Envoy refuses to load it and says why', async () => {
    const plugin = makePlugin({ from: TEMPLATE_DIR });
    const run = await runCli(['run', '--plugin-dir', plugin, '--plugin-config', '{"denyStatus": "forbidden"}'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/the plugin rejected its configuration \(plugin-config \/ spec\.pluginConfig\): wasm-as: rejected configuration: pluginConfig\.denyStatus must be an integer HTTP status/);
  });

  it('a configuration that is not valid JSON for the plugin', async () => {
    const plugin = makePlugin({ from: TEMPLATE_DIR });
    const run = await runCli(['run', '--plugin-dir', plugin, '--plugin-config', '{"headr": "allow"}'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/rejected its configuration.*unknown key "headr"/);
  });

  it('a malformed tests.yaml, with the line', async () => {
    const plugin = makePlugin({ files: { 'tests.yaml': 'cases:\n  - name: x\n    expect:\n      status: "four hundred"\n' } });
    const run = await runCli(['run', '--plugin-dir', plugin], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/tests\.yaml:4: cases\[0\]\.expect\.status: must be an HTTP status code/);
  });

  it('no Envoy found and none installable', async () => {
    const plugin = makePlugin();
    const run = await runCli(['run', '--plugin-dir', plugin, '--envoy-version', '1.0.1', '--envoy-download-url', 'http://127.0.0.1:9'], {
      ...env,
      RUNNER_TOOL_CACHE: tempDir('empty-cache'),
      PATH: process.env.PATH!.split(path.delimiter).filter((d) => !fs.existsSync(path.join(d, 'envoy'))).join(path.delimiter),
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/no Envoy 1\.0\.1 found and none installable/);
    expect(run.stderr).toMatch(/set `envoy-path`/);
  });
});
