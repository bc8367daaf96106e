// Plugins as users have them today, each through toolchain → build → test
// against the real compiler, the real package managers and a real Envoy:
// AssemblyScript 0.28 with asconfig.json targets and the maintained SDK,
// 0.20–0.27 locked with pnpm, 0.15–0.19 locked with yarn, a local folder
// dependency, and the refusals (a CDN-only host function, an SDK on the
// wrong compiler). The 0.14 + proxy-runtime line is the reference plugin
// (pipeline.test.ts).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { copyProject, makePlugin, runCli, tempDir } from '../helpers/cli.js';
import { TOOL_NAME } from '../../src/toolchain/index.js';

const toolCache = inject('toolCache');
const envoyPath = inject('envoyPath');
const env = { RUNNER_TOOL_CACHE: toolCache };

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

describe('AssemblyScript 0.28, asconfig.json targets, @gcoredev/proxy-wasm-sdk-as and wasi-shim', () => {
  it('builds the release target and passes its cases in Envoy', async () => {
    const plugin = copyProject('as028-gcore');
    const run = await runCli(['run', '--plugin-dir', plugin, '--envoy-path', envoyPath, '--json'], env);
    expect(run.json!.error).toBeUndefined();
    expect(run.code).toBe(0);
    const wasm = path.join(plugin, 'build', 'release.wasm');
    expect(run.json!.outputs).toMatchObject({
      'assemblyscript-version': '0.28.20',
      'wasm-path': wasm,
      'wasm-sha256': sha256(wasm),
      'test-failed': '0',
    });
    expect(Number(run.json!.outputs['test-passed'])).toBeGreaterThanOrEqual(5);
    expect(run.json!.results.build).toMatchObject({ command: 'npm run asbuild:release', target: 'release', compilerVersion: '0.28.20' });
    // The debug target was not built: the build ran the release script alone.
    expect(fs.existsSync(path.join(plugin, 'build', 'debug.wasm'))).toBe(false);
    expect(run.json!.results.build.module.imports.some((i: string) => i.startsWith('wasi_snapshot_preview1.'))).toBe(true);
  });

  it('builds the target an input picks', async () => {
    const plugin = copyProject('as028-gcore');
    const run = await runCli(['run', '--plugin-dir', plugin, '--asc-target', 'debug', '--no-test', '--no-push', '--json'], env);
    expect(run.json!.error).toBeUndefined();
    expect(run.json!.outputs['wasm-path']).toBe(path.join(plugin, 'build', 'debug.wasm'));
  });

  it('runs as separate commands: toolchain (needs only the folder), build, then test', async () => {
    const plugin = copyProject('as028-gcore');
    // toolchain needs no WasmPlugin settings at all.
    const manifest = fs.readFileSync(path.join(plugin, 'wasmplugin.yaml'));
    fs.rmSync(path.join(plugin, 'wasmplugin.yaml'));
    const toolchain = await runCli(['toolchain', '--plugin-dir', plugin], env);
    expect(toolchain.stderr).toBe('');
    expect(toolchain.code).toBe(0);
    fs.writeFileSync(path.join(plugin, 'wasmplugin.yaml'), manifest);
    const build = await runCli(['build', '--plugin-dir', plugin], env);
    expect(build.code, build.stderr).toBe(0);
    const test = await runCli(['test', '--plugin-dir', plugin, '--envoy-path', envoyPath, '--json'], env);
    expect(test.json!.error).toBeUndefined();
    expect(test.json!.outputs['test-failed']).toBe('0');
    // A module changed after the build is not tested as if it were the build's.
    fs.appendFileSync(path.join(plugin, 'build', 'release.wasm'), Buffer.from([0]));
    const stale = await runCli(['test', '--plugin-dir', plugin, '--envoy-path', envoyPath], env);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/release\.wasm changed since the build stage built it; run the build stage again/);
  });

  it('turns 0.28 diagnostics into annotations on the file and line, and a summary table', async () => {
    const plugin = copyProject('as028-gcore');
    const index = path.join(plugin, 'assembly', 'index.ts');
    const lines = fs.readFileSync(index, 'utf8').split('\n');
    lines.push('export function broken(): i32 {', '  return notDeclaredAnywhere + 1;', '}');
    fs.writeFileSync(index, lines.join('\n'));
    const summary = path.join(tempDir('summary'), 'summary.md');
    fs.writeFileSync(summary, '');
    const run = await runCli(['run', '--plugin-dir', plugin, '--no-test'], { ...env, GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summary });
    expect(run.code).toBe(1);
    const line = lines.length - 1;
    expect(run.stdout).toMatch(new RegExp(`::error file=.*assembly/index\\.ts,line=${line},col=\\d+::TS2304: Cannot find name 'notDeclaredAnywhere'`));
    expect(run.stdout).toMatch(new RegExp(`::error::the plugin did not compile \\(1 error\\); first: .*assembly/index\\.ts:${line}:\\d+ error TS2304`));
    const text = fs.readFileSync(summary, 'utf8');
    expect(text).toContain('Build failed: 1 error');
    expect(text).toContain(`assembly/index.ts:${line}:`);
    expect(text).toContain('TS2304');
  });

  it('refuses a module that imports a host function Envoy lacks, at build time, naming it', async () => {
    const plugin = copyProject('as028-cdn-import');
    const run = await runCli(['run', '--plugin-dir', plugin, '--envoy-path', envoyPath], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/is not a proxy-wasm plugin Envoy can load/);
    expect(run.stderr).toMatch(/imports env\.proxy_get_secret, a host function of Gcore FastEdge that Envoy 1\.40 does not provide/);
    // Refused before any Envoy started.
    expect(run.stdout).not.toMatch(/starting Envoy/);
  });

  it('fails first, naming both versions, when the SDK needs another compiler', async () => {
    // The reference plugin's SDK (proxy-runtime 0.1.8) on the current compiler.
    const plugin = makePlugin();
    const summary = path.join(tempDir('summary'), 'summary.md');
    fs.writeFileSync(summary, '');
    const run = await runCli(['run', '--plugin-dir', plugin, '--assemblyscript-version', '0.28.20'], { ...env, GITHUB_STEP_SUMMARY: summary });
    expect(run.code).toBe(1);
    // The job summary says it too, with the SDK table.
    const text = fs.readFileSync(summary, 'utf8');
    expect(text).toContain('<h3>Toolchain: refused</h3>');
    expect(text).toContain('<td>❌</td><td>@solo-io/proxy-runtime</td><td>0.1.8</td>');
    expect(run.stderr).toMatch(
      /@solo-io\/proxy-runtime 0\.1\.8 builds with AssemblyScript >=0\.14\.0 <0\.15\.0, but the plugin's compiler is 0\.28\.20; pin assemblyscript 0\.14\.13 for this SDK, or move the plugin/,
    );
    // Nothing was installed or compiled for it.
    expect(fs.existsSync(path.join(plugin, 'node_modules'))).toBe(false);
    expect(run.stdout).not.toMatch(/Build plugin\.wasm/);
  });
});

describe('other compiler lines and package managers', () => {
  it('0.20–0.27 locked with pnpm, built by an asbuild script with -o', async () => {
    const plugin = copyProject('as024-pnpm');
    const run = await runCli(['run', '--plugin-dir', plugin, '--envoy-path', envoyPath, '--json'], env);
    expect(run.json!.error).toBeUndefined();
    expect(run.json!.results.toolchain).toMatchObject({ packageManager: 'pnpm' });
    expect(run.json!.outputs['assemblyscript-version']).toMatch(/^0\.2[0-7]\./);
    expect(run.json!.outputs['test-failed']).toBe('0');
  });

  it('0.15–0.19 locked with yarn 1, no configuration: asc with that line\'s flags', async () => {
    const plugin = copyProject('as019-yarn');
    const run = await runCli(['run', '--plugin-dir', plugin, '--envoy-path', envoyPath, '--json'], env);
    expect(run.json!.error).toBeUndefined();
    expect(run.json!.results.toolchain).toMatchObject({ packageManager: 'yarn' });
    expect(run.json!.outputs['assemblyscript-version']).toMatch(/^0\.1[5-9]\./);
    expect(run.json!.results.build.command).toMatch(/^asc assembly\/index\.ts --binaryFile build\/plugin\.wasm/);
    expect(run.json!.outputs['test-failed']).toBe('0');
  });

  it('a local folder dependency is installed next to the plugin, never cached, and the build sees the folder', async () => {
    const plugin = makePlugin();
    const shared = path.join(path.dirname(plugin), 'shared');
    fs.mkdirSync(path.join(shared, 'assembly'), { recursive: true });
    fs.writeFileSync(path.join(shared, 'package.json'), JSON.stringify({ name: 'shared', version: '1.0.0' }));
    fs.writeFileSync(path.join(shared, 'assembly', 'index.ts'), 'export const SHARED_ANSWER: i32 = 42;\n');
    const pkg = JSON.parse(fs.readFileSync(path.join(plugin, 'package.json'), 'utf8'));
    pkg.devDependencies.shared = 'file:../shared';
    fs.writeFileSync(path.join(plugin, 'package.json'), JSON.stringify(pkg, null, 2));
    // A lockfile that records the folder, as `npm install` writes it.
    const { execFileSync } = await import('node:child_process');
    execFileSync('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: plugin });
    const index = path.join(plugin, 'assembly', 'index.ts');
    fs.appendFileSync(index, '\nimport { SHARED_ANSWER } from "shared";\nexport function sharedAnswer(): i32 { return SHARED_ANSWER; }\n');
    const cacheBefore = fs.readdirSync(path.join(toolCache, TOOL_NAME)).length;
    const run = await runCli(['run', '--plugin-dir', plugin, '--envoy-path', envoyPath, '--json'], env);
    expect(run.json!.error).toBeUndefined();
    expect(run.json!.results.toolchain).toMatchObject({ source: 'in-place', cacheHit: false });
    expect(fs.lstatSync(path.join(plugin, 'node_modules')).isSymbolicLink()).toBe(false);
    expect(fs.existsSync(path.join(plugin, 'node_modules', 'shared', 'assembly', 'index.ts'))).toBe(true);
    expect(run.json!.results.build.module.exports).toContain('sharedAnswer');
    expect(fs.readdirSync(path.join(toolCache, TOOL_NAME)).length).toBe(cacheBefore);
  });
});
