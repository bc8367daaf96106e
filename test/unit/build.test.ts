import { describe, expect, it } from 'vitest';
import { buildAscArgs, outputOfScript, parseDiagnostics } from '../../src/build/index.js';

describe('buildAscArgs', () => {
  it('builds an optimized module that routes abort to the SDK', () => {
    expect(buildAscArgs('assembly/index.ts', 'build/plugin.wasm')).toEqual([
      'assembly/index.ts', '--binaryFile', 'build/plugin.wasm', '--use', 'abort=abort_proc_exit', '--optimize', '--runtime', 'full', '--noAssert',
    ]);
  });
});

describe('outputOfScript', () => {
  it.each([
    ['asc assembly/index.ts -b build/plugin.wasm --optimize', 'build/plugin.wasm'],
    ['asc assembly/index.ts --binaryFile out/x.wasm -O', 'out/x.wasm'],
    ['asc a.ts --binaryFile=dist/p.wasm', 'dist/p.wasm'],
    ['asc a.ts -o build/optimized.wasm', 'build/optimized.wasm'],
    ['asc a.ts -t build/x.wat', undefined],
  ])('%s -> %s', (script, out) => {
    expect(outputOfScript(script)).toBe(out);
  });
});

describe('parseDiagnostics', () => {
  it('reads the compiler errors with their file, line and column', () => {
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

  it('ignores colour codes', () => {
    expect(parseDiagnostics('\x1b[91mERROR\x1b[0m TS1005: \';\' expected.\n in a.ts(1,2)')).toEqual([
      { level: 'error', code: 'TS1005', message: "';' expected.", file: 'a.ts', line: 1, column: 2 },
    ]);
  });
});
