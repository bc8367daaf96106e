import { describe, expect, it } from 'vitest';
import { renderToolchain } from '../../../src/stages/toolchain/render.js';
import type { ToolchainRecord } from '../../../src/stages/toolchain/index.js';
import { checkSdks } from '../../../src/toolchain/compat.js';
import { SdkMismatchError, type ToolchainResult } from '../../../src/toolchain/index.js';
import { expectGolden } from '../../helpers/golden.js';

function record(over: Partial<ToolchainResult> = {}): ToolchainResult {
  return {
    assemblyscriptVersion: '0.28.9',
    cacheHit: true,
    source: 'tool-cache',
    packageManager: 'npm',
    lockfile: 'package-lock.json',
    direct: { assemblyscript: '0.28.9', '@gcoredev/proxy-wasm-sdk-as': '1.0.2' },
    sdks: [{ sdk: '@gcoredev/proxy-wasm-sdk-as', sdkVersion: '1.0.2', compiler: '>=0.27.0', ok: true }],
    nodeModules: '/runner/tool-cache/asm-wasm/0.28.9-habc/x64/node_modules',
    ascPath: '/runner/tool-cache/asm-wasm/0.28.9-habc/x64/node_modules/.bin/asc',
    cacheKey: 'asm-wasm-0.28.9-habc',
    ...over,
  };
}

describe('the toolchain stage\'s summary', () => {
  it('names the compiler, where it came from and each SDK it was checked against (golden)', () => {
    const view = renderToolchain(record());
    expectGolden('toolchain-summary-cache-hit.md', view.summary);
    expect(view.outputs).toEqual([['assemblyscript-version', '0.28.9'], ['cache-hit', true]]);
    expect(view.error).toBeUndefined();
  });

  it('says a fresh install with pnpm and shows no SDK table without SDKs (golden)', () => {
    const view = renderToolchain(record({ cacheHit: false, source: 'npm', packageManager: 'pnpm', lockfile: 'pnpm-lock.yaml', sdks: [] }));
    expectGolden('toolchain-summary-installed.md', view.summary);
    expect(view.summary).not.toContain('<table>');
    expect(view.outputs).toContainEqual(['cache-hit', false]);
  });

  it('a plugin whose SDK does not fit its compiler: nothing installed, what each SDK needs, and the step fails with the fix (golden)', () => {
    // The real check, on the old template's SDK against the current compiler.
    const direct = { assemblyscript: '0.28.20', '@solo-io/proxy-runtime': '0.1.8' };
    const checked = checkSdks(direct, '0.28.20');
    expect(checked.problems.length).toBeGreaterThan(0);
    const error = new SdkMismatchError(checked.problems, '0.28.20', checked.checks);
    const refused: ToolchainRecord = { refused: true, compilerVersion: '0.28.20', sdks: checked.checks, error };
    const view = renderToolchain(refused);
    expectGolden('toolchain-summary-refused.md', view.summary);
    expect(view.outputs).toEqual([]);
    expect(view.error).toBe(error);
    expect(view.summary).toContain('❌');
  });
});
