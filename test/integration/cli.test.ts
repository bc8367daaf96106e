// The CLI as a plugin author runs it: the committed bundle in its own process.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { ROOT, copyProject, makePlugin, runCli } from '../helpers/cli.js';

const toolCache = inject('toolCache');
const BIN = path.join(ROOT, 'bin', 'asm-wasm.js');

interface Proc {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], onStdout?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<Proc> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, RUNNER_TOOL_CACHE: toolCache, GITHUB_ACTIONS: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      onStdout?.(stdout, child);
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

async function reachable(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

const SLOW_TESTS = ['cases:', '  - name: slow', '    request: {path: /delay/8, headers: {allow: "true"}}', '    expect: {status: 200}', ''].join('\n');

describe('asm-wasm CLI', () => {
  it('--help lists the stages and options', async () => {
    const r = await start(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: asm-wasm <stage> \[options\]/);
    expect(r.stdout).toMatch(/--plugin-dir dir\s+Directory of the AssemblyScript plugin/);
    expect(r.stdout).toMatch(/--json/);
  });

  it('exits non-zero with the reason on stderr and --json on stdout', async () => {
    const r = await start(['build', '--plugin-dir', '/nonexistent', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: expect.stringMatching(/plugin-dir/) });
    expect(r.stderr).toMatch(/error: input `plugin-dir`/);
  });

  it('stops Envoy and the upstream on Ctrl-C', async () => {
    const plugin = makePlugin({ files: { 'slow.yaml': SLOW_TESTS } });
    let admin = '';
    const r = await start(['run', '--plugin-dir', plugin, '--tests', path.join(plugin, 'slow.yaml')], (text, child) => {
      const m = /Envoy ready: listener 127\.0\.0\.1:\d+, admin (\S+)/.exec(text);
      if (m && !admin) {
        admin = m[1];
        setTimeout(() => child.kill('SIGINT'), 500);
      }
    });
    expect(admin).not.toBe('');
    expect(r.code).toBe(130);
    expect(await reachable(`${admin}/ready`)).toBe(false);
  });

  it('stops Envoy when the test-timeout runs out, and says so', async () => {
    const plugin = makePlugin({ files: { 'slow.yaml': SLOW_TESTS } });
    const r = await runCli(['run', '--plugin-dir', plugin, '--tests', path.join(plugin, 'slow.yaml'), '--test-timeout', '4'], { RUNNER_TOOL_CACHE: toolCache });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the local Envoy test did not finish within 4s \(input test-timeout\)/);
    const admin = /Envoy ready: listener 127\.0\.0\.1:\d+, admin (\S+)/.exec(r.stdout)![1];
    expect(await reachable(`${admin}/ready`)).toBe(false);
  });
});

describe('the committed bundle', () => {
  // The bundler rewrites some path computations into paths inside dist/; the
  // tests that run the source cannot see that, so the bundle itself builds
  // and tests a plugin with no build configuration (asc on the entry, the
  // default output) and one with asconfig.json targets.
  it.each([
    ['as019-yarn', 'build/plugin.wasm', 'the default output'],
    ['as028-gcore', 'build/release.wasm', 'asconfig.json target "release"'],
  ])('builds and tests %s into %s', async (fixture, output, from) => {
    const plugin = copyProject(fixture);
    const run = await start(['run', '--plugin-dir', plugin, '--no-push', '--json']);
    const json = JSON.parse(run.stdout) as { ok: boolean; error?: string; outputs: Record<string, string>; results: any };
    expect(json.error).toBeUndefined();
    expect(json.outputs['wasm-path']).toBe(path.join(plugin, output));
    // Known before the compiler ran, not found afterwards by looking for a new .wasm.
    expect(json.results.build.outputFrom).toBe(from);
    expect(json.outputs['test-failed']).toBe('0');
    expect(run.code).toBe(0);
  });
});
