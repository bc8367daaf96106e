import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CompileError, type BuildResult } from '../../../src/build/index.js';
import { renderBuild } from '../../../src/stages/build/render.js';
import { expectGolden } from '../../helpers/golden.js';

const CWD = '/work/repo';
const SHA = 'c0ffee'.repeat(10) + 'c0ff';

function built(over: Partial<BuildResult> = {}): BuildResult {
  return {
    wasmPath: path.join(CWD, 'plugins/header-auth/build/plugin.wasm'),
    sha256: SHA,
    size: 18_342,
    module: {
      abi: 'proxy_abi_version_0_2_1',
      allocator: 'proxy_on_memory_allocate',
      exports: ['_start', 'proxy_abi_version_0_2_1', 'proxy_on_context_create', 'proxy_on_request_headers'],
      imports: ['env.proxy_log', 'env.proxy_get_header_map_value', 'env.proxy_send_local_response'],
    },
    rootId: 'header-auth',
    command: 'asc assembly/index.ts --target release --outFile build/plugin.wasm',
    compilerVersion: '0.28.9',
    target: 'release',
    outputFrom: 'the command line',
    diagnostics: [],
    ...over,
  };
}

describe('the build stage\'s summary', () => {
  it('shows the module, its size, sha256, ABI and root id (golden)', () => {
    const view = renderBuild({ ok: true, build: built() }, { cwd: CWD });
    expectGolden('build-summary-success.md', view.summary);
    expect(view.summary).toContain('<td>plugins/header-auth/build/plugin.wasm</td>');
    expect(view.outputs).toEqual([
      ['wasm-path', path.join(CWD, 'plugins/header-auth/build/plugin.wasm')],
      ['wasm-sha256', SHA],
      ['wasm-size', 18_342],
    ]);
    expect(view.error).toBeUndefined();
  });

  it('counts the warnings of a build that succeeded and lists them collapsed (golden)', () => {
    const view = renderBuild(
      {
        ok: true,
        build: built({ diagnostics: [{ level: 'warning', code: 'AS235', message: 'Only variables, functions and enums become WebAssembly module exports.', file: 'assembly/index.ts', line: 7, column: 1 }] }),
      },
      { cwd: CWD },
    );
    expectGolden('build-summary-warnings.md', view.summary);
    expect(view.summary).toContain('; compiler: 1 warning');
  });

  it('turns a failed compile into a table of diagnostics with paths from the run\'s directory, and fails with it (golden)', () => {
    const error = new CompileError(
      [
        { level: 'error', code: 'TS2304', message: 'Cannot find name \'notDeclaredAnywhere\'.', file: 'assembly/index.ts', line: 42, column: 5 },
        { level: 'warning', code: 'AS235', message: 'Only variables, functions and enums become <exports>.', file: '~lib/rt/common.ts', line: 3, column: 1 },
        { level: 'error', code: 'AS100', message: 'Not implemented.' },
      ],
      'the plugin did not compile (2 errors, 1 warning); first: assembly/index.ts:42:5 error TS2304',
      'ERROR TS2304: Cannot find name \'notDeclaredAnywhere\'.\n   in assembly/index.ts(42,5)',
    );
    const view = renderBuild({ ok: false, error, pluginDir: path.join(CWD, 'plugins/header-auth') }, { cwd: CWD });
    expectGolden('build-summary-failed.md', view.summary);
    expect(view.error).toBe(error);
    expect(view.outputs).toEqual([]);
    expect(view.summary).toContain('<h3>Build failed: 2 errors, 1 warning</h3>');
    expect(view.summary).toContain('<td>plugins/header-auth/assembly/index.ts:42:5</td>');
    // The standard library's files are named as the compiler names them; a diagnostic without a file has an empty cell.
    expect(view.summary).toContain('<td>~lib/rt/common.ts:3:1</td>');
    expect(view.summary).toContain('&lt;exports&gt;');
  });

  it('lists at most 50 diagnostics in the table', () => {
    const many = Array.from({ length: 60 }, (_, i) => ({ level: 'error' as const, code: 'TS2304', message: `m${i}`, file: 'a.ts', line: i + 1, column: 1 }));
    const view = renderBuild({ ok: false, error: new CompileError(many, 'did not compile'), pluginDir: CWD }, { cwd: CWD });
    expect(view.summary.match(/<td>❌<\/td>/g)).toHaveLength(50);
    expect(view.summary).toContain('Build failed: 60 errors');
    expect(view.summary).not.toContain('<details>');
  });
});
