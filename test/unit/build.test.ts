import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildAscArgs, outputOfScript, parseDiagnostics, planBuild } from '../../src/build/index.js';
import { resolveTarget } from '../../src/build/asconfig.js';
import { formatDiagnostic } from '../../src/build/diagnostics.js';

function dir(files: Record<string, string> = {}): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'asm-wasm-plan-'));
  for (const [f, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
    fs.writeFileSync(path.join(d, f), text);
  }
  return d;
}

// What `npx asinit .` writes on 0.28, with wasi-shim's base file beside it.
const ASINIT = JSON.stringify({
  extends: './node_modules/@assemblyscript/wasi-shim/asconfig.json',
  targets: {
    debug: { outFile: 'build/debug.wasm', textFile: 'build/debug.wat', sourceMap: true, debug: true },
    release: { outFile: 'build/release.wasm', textFile: 'build/release.wat', sourceMap: true, optimizeLevel: 3, shrinkLevel: 0, converge: false, noAssert: false },
  },
  options: { bindings: 'esm' },
});
const WASI_SHIM = JSON.stringify({ options: { use: 'abort=wasi_abort,trace=wasi_trace,seed=wasi_seed' } });

describe('buildAscArgs picks flags by compiler line', () => {
  it.each([
    ['0.14.13', ['a.ts', '--binaryFile', 'o.wasm', '--optimize', '--noAssert', '--runtime', 'full', '--use', 'abort=abort_proc_exit']],
    ['0.17.14', ['a.ts', '--binaryFile', 'o.wasm', '--optimize', '--noAssert', '--runtime', 'full', '--use', 'abort=abort_proc_exit']],
    ['0.19.23', ['a.ts', '--binaryFile', 'o.wasm', '--optimize', '--noAssert', '--use', 'abort=abort_proc_exit']],
    ['0.20.0', ['a.ts', '--outFile', 'o.wasm', '--optimize', '--noAssert', '--use', 'abort=abort_proc_exit']],
    ['0.28.20', ['a.ts', '--outFile', 'o.wasm', '--optimize', '--noAssert', '--use', 'abort=abort_proc_exit']],
  ])('%s', (version, args) => {
    expect(buildAscArgs(version, 'a.ts', 'o.wasm', 'abort_proc_exit')).toEqual(args);
  });

  it('leaves abort alone for an SDK it does not know', () => {
    expect(buildAscArgs('0.28.20', 'a.ts', 'o.wasm')).not.toContain('--use');
  });

  it('refuses a compiler older than 0.14', () => {
    expect(() => buildAscArgs('0.13.8', 'a.ts', 'o.wasm')).toThrow(/older than 0\.14\.0/);
  });
});

describe('outputOfScript', () => {
  const plugin = dir();
  const o = (v: string, scripts: Record<string, string> = {}) => ({ compilerVersion: v, scripts, pluginDir: plugin });
  it.each([
    ['0.14.13', 'asc assembly/index.ts -b build/plugin.wasm --optimize', 'build/plugin.wasm'],
    ['0.19.23', 'asc assembly/index.ts --binaryFile out/x.wasm -O', 'out/x.wasm'],
    ['0.14.13', 'asc a.ts --binaryFile=dist/p.wasm', 'dist/p.wasm'],
    ['0.14.13', 'asc a.ts -o build/optimized.wasm', 'build/optimized.wasm'],
    ['0.28.20', 'asc a.ts -o build/optimized.wasm', 'build/optimized.wasm'],
    ['0.28.20', 'asc a.ts --outFile=build/o.wasm --bindings esm', 'build/o.wasm'],
  ])('%s: %s -> %s', (v, script, out) => {
    expect(outputOfScript(script, o(v))?.output).toBe(path.join(plugin, out));
  });

  it('does not take -b for the output on 0.20+, where it is --bindings', () => {
    expect(outputOfScript('asc a.ts -b esm', o('0.28.20'))).toBeUndefined();
    expect(outputOfScript('asc a.ts -b build/x.wasm', o('0.28.20'))).toBeUndefined();
  });

  it('says nothing when the script names no .wasm', () => {
    expect(outputOfScript('asc a.ts -t build/x.wat', o('0.14.13'))).toBeUndefined();
  });

  it('follows `npm run` into the scripts it runs, and the asconfig target they name', () => {
    const p = dir({ 'asconfig.json': ASINIT, 'node_modules/@assemblyscript/wasi-shim/asconfig.json': WASI_SHIM });
    const scripts = {
      'asbuild:debug': 'asc assembly/index.ts --target debug',
      'asbuild:release': 'asc assembly/index.ts --target release',
      asbuild: 'npm run asbuild:debug && npm run asbuild:release',
    };
    const out = outputOfScript(scripts.asbuild, { compilerVersion: '0.28.20', scripts, pluginDir: p });
    expect(out).toEqual({ output: path.join(p, 'build/release.wasm'), from: 'asconfig.json target "release"' });
    expect(outputOfScript(scripts['asbuild:debug'], { compilerVersion: '0.28.20', scripts, pluginDir: p })?.output).toBe(path.join(p, 'build/debug.wasm'));
    // asc's default target is release.
    expect(outputOfScript('asc assembly/index.ts', { compilerVersion: '0.28.20', scripts, pluginDir: p })?.output).toBe(path.join(p, 'build/release.wasm'));
  });
});

describe('planBuild', () => {
  const asinitScripts = {
    'asbuild:debug': 'asc assembly/index.ts --target debug',
    'asbuild:release': 'asc assembly/index.ts --target release',
    asbuild: 'npm run asbuild:debug && npm run asbuild:release',
    test: 'node tests',
  };

  it('runs asinit\'s asbuild:release and knows it writes build/release.wasm', () => {
    const p = dir({ 'asconfig.json': ASINIT, 'node_modules/@assemblyscript/wasi-shim/asconfig.json': WASI_SHIM });
    const plan = planBuild({ pluginDir: p, scripts: asinitScripts, compilerVersion: '0.28.20', entry: 'assembly/index.ts', direct: {} });
    expect(plan).toMatchObject({ kind: 'script', script: 'asbuild:release', output: path.join(p, 'build/release.wasm'), command: 'npm run asbuild:release' });
  });

  it('picks the script of the target an input names', () => {
    const p = dir({ 'asconfig.json': ASINIT, 'node_modules/@assemblyscript/wasi-shim/asconfig.json': WASI_SHIM });
    const plan = planBuild({ pluginDir: p, scripts: asinitScripts, compilerVersion: '0.28.20', target: 'debug', entry: 'assembly/index.ts', direct: {} });
    expect(plan).toMatchObject({ script: 'asbuild:debug', output: path.join(p, 'build/debug.wasm') });
  });

  it('runs asc with --target when there is asconfig.json but no script, taking its entries', () => {
    const p = dir({ 'asconfig.json': JSON.stringify({ entries: ['src/main.ts'], targets: { release: { outFile: 'out/r.wasm' } } }) });
    const plan = planBuild({ pluginDir: p, scripts: {}, compilerVersion: '0.28.20', entry: 'assembly/index.ts', direct: {} });
    expect(plan).toMatchObject({ kind: 'asc', args: ['src/main.ts', '--target', 'release'], output: path.join(p, 'out/r.wasm') });
  });

  it('names an output when asconfig.json has none', () => {
    const p = dir({ 'asconfig.json': JSON.stringify({ targets: { release: { optimizeLevel: 3 } } }) });
    const plan = planBuild({ pluginDir: p, scripts: {}, compilerVersion: '0.28.20', entry: 'assembly/index.ts', direct: {} });
    expect(plan.args).toEqual(['assembly/index.ts', '--target', 'release', '--outFile', 'build/plugin.wasm']);
  });

  it('refuses a target asconfig.json does not have, naming the ones it has', () => {
    const p = dir({ 'asconfig.json': ASINIT, 'node_modules/@assemblyscript/wasi-shim/asconfig.json': WASI_SHIM });
    expect(() => planBuild({ pluginDir: p, scripts: {}, compilerVersion: '0.28.20', target: 'prod', entry: 'a.ts', direct: {} })).toThrow(
      'input `asc-target`: asconfig.json has no target "prod"; it has debug, release',
    );
  });

  it('without any configuration, uses the flags of the compiler line and the SDK\'s abort handler', () => {
    const p = dir();
    const plan = planBuild({ pluginDir: p, scripts: {}, compilerVersion: '0.14.13', entry: 'assembly/index.ts', direct: { '@solo-io/proxy-runtime': '0.1.8' } });
    expect(plan.args).toEqual(['assembly/index.ts', '--binaryFile', 'build/plugin.wasm', '--optimize', '--noAssert', '--runtime', 'full', '--use', 'abort=abort_proc_exit']);
  });
});

describe('resolveTarget', () => {
  it('follows extends, a file over the one it extends, paths relative to each file', () => {
    const p = dir({
      'asconfig.json': JSON.stringify({ extends: './base/asconfig.json', targets: { debug: { outFile: 'dbg.wasm' } } }),
      'base/asconfig.json': JSON.stringify({ entries: ['../src/a.ts'], targets: { release: { outFile: 'rel.wasm' }, debug: { outFile: 'base-dbg.wasm' } } }),
    });
    expect(resolveTarget(path.join(p, 'asconfig.json'), 'debug', true)).toMatchObject({ wasmFile: path.join(p, 'dbg.wasm'), entries: [path.join(p, 'src/a.ts')] });
    expect(resolveTarget(path.join(p, 'asconfig.json'), 'release', true).wasmFile).toBe(path.join(p, 'base/rel.wasm'));
  });

  it('reads binaryFile before 0.20', () => {
    const p = dir({ 'asconfig.json': JSON.stringify({ targets: { release: { binaryFile: 'b.wasm', outFile: 'x.wat' } } }) });
    expect(resolveTarget(path.join(p, 'asconfig.json'), 'release', false).wasmFile).toBe(path.join(p, 'b.wasm'));
  });

  it('names a missing base file and says the toolchain installs it', () => {
    const p = dir({ 'asconfig.json': ASINIT });
    expect(() => resolveTarget(path.join(p, 'asconfig.json'), 'release', true)).toThrow(/wasi-shim\/asconfig.json, which does not exist; the toolchain stage installs/);
  });

  it('refuses a cycle', () => {
    const p = dir({ 'asconfig.json': JSON.stringify({ extends: './b.json' }), 'b.json': JSON.stringify({ extends: './asconfig.json' }) });
    expect(() => resolveTarget(path.join(p, 'asconfig.json'), 'release', true)).toThrow(/extends itself/);
  });
});

describe('parseDiagnostics', () => {
  it('reads 0.14–0.19 diagnostics with their file, line and column', () => {
    const out = [
      'ERROR TS2304: Cannot find name \'nope\'.',
      '',
      '       nope();',
      '       ~~~~',
      ' in assembly/index.ts(12,5)',
      '',
      'WARNING AS201: Conversion from type \'usize\' to \'u32\' will require an explicit cast.',
      '',
      ' in ~lib/number.ts(221,21)',
      '',
      'FAILURE 1 compile error(s)',
    ].join('\n');
    expect(parseDiagnostics(out)).toEqual([
      { level: 'error', code: 'TS2304', message: "Cannot find name 'nope'.", file: 'assembly/index.ts', line: 12, column: 5 },
      { level: 'warning', code: 'AS201', message: "Conversion from type 'usize' to 'u32' will require an explicit cast.", file: '~lib/number.ts', line: 221, column: 21 },
    ]);
  });

  it('reads 0.20+ diagnostics (└─ in file(line,col)), as asc 0.28.20 prints them', () => {
    const out = [
      "ERROR TS2304: Cannot find name 'nope'.",
      '   :',
      ' 2 │ return nope();',
      '   │        ~~~~',
      '   └─ in assembly/index.ts(2,10)',
      '',
      "WARNING AS201: Conversion from type 'usize' to 'u8' will require an explicit cast when switching between 32/64-bit.",
      '   :',
      ' 4 │ export function g(x: usize): u32 { let y: u8 = x; return y; }',
      '   │                                                ~',
      '   └─ in assembly/index.ts(4,48)',
      '',
      'FAILURE 1 compile error(s)',
    ].join('\n');
    const d = parseDiagnostics(out);
    expect(d).toEqual([
      { level: 'error', code: 'TS2304', message: "Cannot find name 'nope'.", file: 'assembly/index.ts', line: 2, column: 10 },
      { level: 'warning', code: 'AS201', message: "Conversion from type 'usize' to 'u8' will require an explicit cast when switching between 32/64-bit.", file: 'assembly/index.ts', line: 4, column: 48 },
    ]);
    expect(formatDiagnostic(d[0], 'plugin/')).toBe("plugin/assembly/index.ts:2:10 error TS2304: Cannot find name 'nope'.");
  });

  it('ignores colour codes', () => {
    expect(parseDiagnostics('\x1b[91mERROR\x1b[0m TS1005: \';\' expected.\n   \x1b[90m└─\x1b[0m in a.ts(1,2)')).toEqual([
      { level: 'error', code: 'TS1005', message: "';' expected.", file: 'a.ts', line: 1, column: 2 },
    ]);
  });
});
