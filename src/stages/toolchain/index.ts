// The toolchain stage: the AssemblyScript compiler the plugin pins, and the
// plugin's dependencies, installed (or found in a cache).
import { installToolchain, type ToolchainResult } from '../../toolchain/index.js';
import type { Stage, StageContext } from '../stage.js';
import { renderToolchain } from './render.js';

export type ToolchainRecord = ToolchainResult;

export async function runToolchain(ctx: StageContext): Promise<ToolchainRecord> {
  const { inputs } = ctx;
  return ctx.group('Install the AssemblyScript toolchain', () =>
    installToolchain({ pluginDir: inputs.pluginDir, assemblyscriptVersion: inputs.assemblyscriptVersion }),
  );
}

export const toolchainStage: Stage<ToolchainRecord> = {
  run: runToolchain,
  render: renderToolchain,
  keep: (results, record) => {
    results.toolchain = record;
  },
};
