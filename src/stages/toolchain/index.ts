// The toolchain stage: the AssemblyScript compiler the plugin pins, and the
// plugin's dependencies, installed (or found in a cache). An SDK that does not
// fit the compiler is a record too: the summary shows what each SDK needs.
import { installToolchain, SdkMismatchError, type ToolchainResult } from '../../toolchain/index.js';
import type { SdkCheck } from '../../toolchain/compat.js';
import type { Stage, StageContext } from '../stage.js';
import { renderToolchain } from './render.js';

/** Refused before anything was installed: the SDKs do not fit the compiler. */
export interface ToolchainRefused {
  refused: true;
  compilerVersion: string;
  sdks: SdkCheck[];
  error: SdkMismatchError;
}

export type ToolchainRecord = ToolchainResult | ToolchainRefused;

export async function runToolchain(ctx: StageContext): Promise<ToolchainRecord> {
  const { inputs } = ctx;
  return ctx.group('Install the AssemblyScript toolchain', async () => {
    try {
      return await installToolchain({ pluginDir: inputs.pluginDir, assemblyscriptVersion: inputs.assemblyscriptVersion });
    } catch (err) {
      if (err instanceof SdkMismatchError) return { refused: true, compilerVersion: err.compilerVersion, sdks: err.checks, error: err };
      throw err;
    }
  });
}

export const toolchainStage: Stage<ToolchainRecord> = {
  run: runToolchain,
  render: renderToolchain,
  keep: (results, record) => {
    if (!('refused' in record)) results.toolchain = record;
  },
};
