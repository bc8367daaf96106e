// What every stage has in common: the context it runs in, what it returns
// and what its renderer makes of that. A stage is a folder under src/stages/
// with `run` (typed inputs and earlier stages' results in, a typed record of
// what happened out) and `render` (that record to outputs, the job-summary
// section and the error that fails the step; pure). src/stages/run.ts is the glue that talks to
// the runner.
import { readBuildRecord, type BuildResult } from '../build/index.js';
import { validateModule } from '../build/validate.js';
import { readModuleFile } from '../build/module-file.js';
import { UserError } from '../errors.js';
import type { Inputs } from '../inputs.js';
import type { DeployResult } from '../k8s/deploy.js';
import type { LocalTestReport } from '../localtest/index.js';
import type { PushResult } from '../oci/index.js';
import { overridesFromInputs, readPluginFile, resolvePlugin, type PluginFile, type PluginOverrides, type ResolvedPlugin } from '../plugin/index.js';
import type { ToolchainResult } from '../toolchain/index.js';

export const STAGE_NAMES = ['toolchain', 'build', 'test', 'push', 'deploy'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

/** What the stages produce, passed along in-process or through step outputs. */
export interface Results {
  toolchain?: ToolchainResult;
  build?: Pick<BuildResult, 'wasmPath' | 'sha256' | 'size'> & Partial<BuildResult>;
  test?: LocalTestReport;
  push?: Pick<PushResult, 'url' | 'digest'> & Partial<PushResult>;
  deploy?: DeployResult;
}

/**
 * The plugin model of this run: wasmplugin.yaml read strictly, the inputs
 * that name its fields, and the two resolved without an image yet (what the
 * build and test stages use). Read once, before the first stage that needs
 * it, so a misspelt field fails before anything is built or sent.
 */
export interface PluginSpec {
  file: PluginFile;
  overrides: PluginOverrides;
  /** The file + inputs, validated: the test stage configures Envoy from it. */
  model: ResolvedPlugin;
}

export function pluginSpec(inputs: Inputs): PluginSpec {
  const file = readPluginFile(inputs.pluginDir);
  const overrides = overridesFromInputs(inputs);
  return { file, overrides, model: resolvePlugin(file, overrides, { pluginDir: inputs.pluginDir }) };
}

/** The stages that read the plugin model (the toolchain and push stages do not). */
export const NEEDS_SPEC: readonly StageName[] = ['build', 'test', 'deploy'];

export interface StageContext {
  inputs: Inputs;
  /** Earlier stages' results (this process's, or the composite action's step outputs). */
  results: Results;
  /** Set when the stages to run include one of NEEDS_SPEC. */
  spec?: PluginSpec;
  /** Runs `fn` inside a collapsible log group. */
  group<T>(title: string, fn: () => Promise<T>): Promise<T>;
  /** A progress line in the log. */
  log(line: string): void;
}

export type OutputValue = string | number | boolean;

/**
 * What the runner is told about a stage, made from its record alone. The
 * log lines of the result are the outputs (`output name=value`) and the
 * error; progress lines are written by `run` as the work happens, where a
 * person watching the log needs them.
 */
export interface StageView {
  /** Step outputs, in the order they are set. */
  outputs: Array<[string, OutputValue]>;
  /** The stage's part of the job summary (HTML and Markdown); '' for none. */
  summary: string;
  /** What fails the step (its message and details go to the log), once the outputs and the summary are written. */
  error?: Error;
}

/** How a renderer shows paths: relative to the directory the run started in. */
export interface RenderContext {
  cwd: string;
}

export interface Stage<R> {
  run(ctx: StageContext): Promise<R>;
  render(record: R, where: RenderContext): StageView;
  /** What later stages (and --json) see of the record. */
  keep(results: Results, record: R): void;
}

export function spec(ctx: StageContext): PluginSpec {
  if (!ctx.spec) throw new Error('the plugin model was not read before a stage that needs it');
  return ctx.spec;
}

/** The wasm the test (and later push) stage uses: input, build result, or the build output of an earlier step. */
export async function wasmFor(inputs: Inputs, results: Results): Promise<string> {
  // A build in this process, an earlier step's output, or the record a separate `asm-wasm build` left.
  const wasm = inputs.wasmPath ?? results.build?.wasmPath ?? (await readBuildRecord(inputs.pluginDir))?.wasmPath;
  if (!wasm) throw new UserError('no plugin.wasm: run the build stage first (input build: true, or `asm-wasm build`) or set `wasm-path`');
  if (inputs.wasmPath) {
    const v = await validateModule(readModuleFile(wasm, 'input `wasm-path`'));
    if (!v.ok) throw new UserError(`${wasm} is not a proxy-wasm plugin Envoy can load:\n- ${v.problems.join('\n- ')}`);
  }
  return wasm;
}

/** The registry credentials of the inputs, for `registry`; username and password only when it is the `image` input's registry. */
export function registryLogin(inputs: Inputs, registry: string): { username?: string; password?: string; dockerConfigPath?: string; caFile?: string; insecure?: boolean } {
  const own = !inputs.image || inputs.image.registry === registry;
  return {
    username: own ? inputs.registryUsername : undefined,
    password: own ? inputs.registryPassword : undefined,
    dockerConfigPath: inputs.dockerConfig,
    caFile: inputs.registryCa,
    insecure: inputs.registryInsecure,
  };
}
