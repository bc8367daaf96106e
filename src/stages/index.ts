// The pipeline's stages, in order: one folder each, run from this table by
// src/stages/run.ts.
import { buildStage } from './build/index.js';
import { deployStage } from './deploy/index.js';
import { pushStage } from './push/index.js';
import type { Stage, StageName } from './stage.js';
import { testStage } from './test/index.js';
import { toolchainStage } from './toolchain/index.js';

/** Each stage's record is its own type; the glue only hands it from `run` to `keep` and `render`. */
export const STAGES: { [name in StageName]: Stage<any> } = {
  toolchain: toolchainStage,
  build: buildStage,
  test: testStage,
  push: pushStage,
  deploy: deployStage,
};

export { NEEDS_SPEC, STAGE_NAMES, pluginSpec, type PluginSpec, type Results, type StageName } from './stage.js';
