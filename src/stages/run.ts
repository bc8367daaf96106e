// The glue between the stages and the runner, in one place: each stage runs
// with log groups, then what its renderer made of the record becomes step
// outputs and a job-summary section, and its error fails the step.
import * as core from '@actions/core';
import { group, setOutput } from '../github.js';
import type { Inputs } from '../inputs.js';
import { writeSummary } from '../summary.js';
import { STAGES } from './index.js';
import { NEEDS_SPEC, pluginSpec, type Results, type Stage, type StageContext, type StageName } from './stage.js';

/** Runs one stage: its work, then its outputs, its summary and its error. */
export async function runStage<R>(stage: Stage<R>, ctx: StageContext): Promise<void> {
  const record = await stage.run(ctx);
  stage.keep(ctx.results, record);
  const view = stage.render(record, { cwd: process.cwd() });
  for (const [name, value] of view.outputs) setOutput(name, value);
  await writeSummary(view.summary);
  if (view.error) throw view.error;
}

/** Runs `stages` in order; `results` holds what each produced (also when one fails). */
export async function runStages(stages: readonly StageName[], inputs: Inputs, results: Results): Promise<void> {
  // The plugin's WasmPlugin settings are read (and checked) once, before the
  // first stage that needs them: the toolchain and push stages do not.
  const ctx: StageContext = {
    inputs,
    results,
    spec: stages.some((s) => NEEDS_SPEC.includes(s)) ? pluginSpec(inputs) : undefined,
    group,
    log: (line) => core.info(line),
  };
  for (const name of stages) await runStage(STAGES[name], ctx);
}
