// The build stage: plugin.wasm compiled with the toolchain's compiler and
// checked to be a proxy-wasm plugin Envoy can load.
import { buildPlugin, CompileError, type BuildResult } from '../../build/index.js';
import { installedToolchain } from '../../toolchain/index.js';
import { spec, type Stage, type StageContext } from '../stage.js';
import { renderBuild } from './render.js';

/** A module built, or a compile that failed with its diagnostics (any other error is thrown). */
export type BuildStageRecord =
  | { ok: true; build: BuildResult }
  | { ok: false; error: CompileError; pluginDir: string };

/** The compiler and dependencies to build with: the toolchain stage's, else what the plugin's node_modules and lockfile say. */
function toolchainFor(ctx: StageContext): { nodeModules: string; compilerVersion: string; direct: Record<string, string> } {
  const t = ctx.results.toolchain;
  if (t) return { nodeModules: t.nodeModules, compilerVersion: t.assemblyscriptVersion, direct: t.direct };
  return installedToolchain(ctx.inputs.pluginDir);
}

export async function runBuild(ctx: StageContext): Promise<BuildStageRecord> {
  const { inputs } = ctx;
  const tool = toolchainFor(ctx);
  try {
    const build = await ctx.group('Build plugin.wasm', () =>
      buildPlugin({
        pluginDir: inputs.pluginDir,
        entry: inputs.entry,
        target: inputs.ascTarget,
        pluginName: spec(ctx).model.wasm.pluginName!,
        ...tool,
      }),
    );
    return { ok: true, build };
  } catch (err) {
    if (err instanceof CompileError) return { ok: false, error: err, pluginDir: inputs.pluginDir };
    throw err;
  }
}

export const buildStage: Stage<BuildStageRecord> = {
  run: runBuild,
  render: renderBuild,
  keep: (results, record) => {
    if (record.ok) results.build = record.build;
  },
};
