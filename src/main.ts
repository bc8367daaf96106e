// The one entry of the action and the CLI:
//   asm-wasm <stage> [--input value …] [--json]
// In the composite action each step runs `node dist/index.js <stage>` with the
// action's inputs as JSON in ASM_WASM_INPUTS and earlier steps' outputs in
// ASM_WASM_STEPS. On a laptop the flags give the inputs and `run` runs every
// enabled stage in one process. Either way the same stage code runs, and this
// is the one place that turns an error into a failed step.
import * as os from 'node:os';
import * as path from 'node:path';
import * as core from '@actions/core';
import { UserError } from './errors.js';
import { inActions, outputs, runnerLog } from './github.js';
import { setLogger } from './log.js';
import { INPUTS, inputsFromEnv, parseInputs, type InputSpec, type RawInputs } from './inputs.js';
import { withPluginConfigHidden } from './plugin/model.js';
import { STAGE_NAMES, type Results } from './stages/index.js';
import { runStages } from './stages/run.js';

const COMMANDS = [...STAGE_NAMES, 'run'] as const;
type Command = (typeof COMMANDS)[number];

export interface Cli {
  command: Command;
  raw: RawInputs;
  json: boolean;
  help: boolean;
}

export function usage(): string {
  const width = Math.max(...Object.entries(INPUTS).map(([k, v]) => k.length + ((v as InputSpec).value?.length ?? 0))) + 6;
  const lines = Object.entries(INPUTS).map(([name, spec]) => {
    const s = spec as InputSpec;
    const flag = `--${name} ${s.value ?? ''}`.padEnd(width);
    return `  ${flag}${s.description}${s.default ? ` (default: ${s.default})` : ''}`;
  });
  return [
    'Usage: asm-wasm <stage> [options]',
    '',
    'Stages:',
    '  toolchain   install the AssemblyScript compiler the plugin pins',
    '  build       compile plugin.wasm and check it is a proxy-wasm plugin',
    '  test        run the plugin\'s test cases through a real local Envoy',
    '  push        push the image to a registry (or write an OCI layout without one)',
    '  deploy      dry-run, apply or delete the WasmPlugin (then verify, roll back on failure)',
    '  run         every enabled stage, in order',
    '',
    'Options (the same names as the action\'s inputs):',
    ...lines,
    '  --json                  print the stage results as JSON on stdout (logs go to stderr)',
    '  --help                  show this help',
  ].join('\n');
}

/** Parses argv (without node and the script). */
export function parseArgs(argv: string[]): Cli {
  const raw: RawInputs = {};
  let command: string | undefined;
  let json = false;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') help = true;
    else if (arg === '--json') json = true;
    else if (arg.startsWith('--no-')) raw[arg.slice(5)] = 'false';
    else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
      if (!(name in INPUTS)) throw new UserError(`unknown option --${name}; run with --help to see the options`);
      if (eq > 0) raw[name] = arg.slice(eq + 1);
      else {
        const value = argv[i + 1];
        if (value === undefined || value.startsWith('--')) throw new UserError(`option --${name} needs a value`);
        raw[name] = value;
        i++;
      }
    } else if (!command) command = arg;
    else throw new UserError(`unexpected argument "${arg}"; run with --help`);
  }
  if (!help && !command) throw new UserError(`name a stage: ${COMMANDS.join(', ')} (see --help)`);
  if (command && !(COMMANDS as readonly string[]).includes(command)) {
    throw new UserError(`unknown stage "${command}"; stages are ${COMMANDS.join(', ')}`);
  }
  return { command: (command ?? 'run') as Command, raw, json, help };
}

/** Recovers earlier stages' results from the composite action's steps context. */
export function resultsFromSteps(env: NodeJS.ProcessEnv = process.env): Results {
  const text = env.ASM_WASM_STEPS;
  if (!text) return {};
  const steps = JSON.parse(text) as Record<string, { outputs?: Record<string, string> }>;
  const build = steps.build?.outputs;
  const pushed = steps.push?.outputs;
  const results: Results = {};
  if (build?.['wasm-path']) {
    results.build = { wasmPath: build['wasm-path'], sha256: build['wasm-sha256'] ?? '', size: Number(build['wasm-size'] ?? 0) };
  }
  if (pushed?.url) results.push = { url: pushed.url, digest: pushed.digest ?? '' };
  return results;
}

function defaultRunnerDirs(): void {
  // @actions/tool-cache needs these; a laptop has neither.
  const home = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  process.env.RUNNER_TOOL_CACHE ||= path.join(home, 'asm-wasm-action', 'tool-cache');
  process.env.RUNNER_TEMP ||= path.join(os.tmpdir(), 'asm-wasm-action');
}

export async function main(argv: string[]): Promise<number> {
  const realStdout = process.stdout.write.bind(process.stdout);
  let cli: Cli | undefined;
  const results: Results = {};
  outputs.length = 0;
  try {
    cli = parseArgs(argv);
    if (cli.help) {
      realStdout(`${usage()}\n`);
      return 0;
    }
    const sink = cli.json ? process.stderr.write.bind(process.stderr) : realStdout;
    // On a laptop the runner's debug commands are noise; in a workflow the runner hides them itself.
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) =>
      !inActions() && typeof chunk === 'string' && chunk.startsWith('::debug::')
        ? true
        : (sink as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest)) as typeof process.stdout.write;
    defaultRunnerDirs();
    if (inActions()) setLogger(runnerLog);
    const raw = { ...inputsFromEnv(), ...cli.raw };
    // On a laptop the signing key's password may come from cosign's own variable rather than argv.
    if (!inActions() && raw['sign-key-password'] === undefined && process.env.COSIGN_PASSWORD !== undefined) raw['sign-key-password'] = process.env.COSIGN_PASSWORD;
    const inputs = parseInputs(raw);
    Object.assign(results, resultsFromSteps());
    const stages = cli.command === 'run' ? STAGE_NAMES.filter((s) => inputs.stages[s]) : [cli.command];
    await runStages(stages, inputs, results);
    // pluginConfig values (often secrets) are hidden here as everywhere else a person reads.
    if (cli.json) realStdout(`${JSON.stringify({ ok: true, outputs: Object.fromEntries(outputs), results: withPluginConfigHidden(results) }, null, 2)}\n`);
    return 0;
  } catch (err) {
    fail(err);
    if (cli?.json) {
      realStdout(`${JSON.stringify({ ok: false, error: (err as Error).message, outputs: Object.fromEntries(outputs), results: withPluginConfigHidden(results) }, null, 2)}\n`);
    }
    return 1;
  } finally {
    process.stdout.write = realStdout;
  }
}

/** The one place that fails. */
function fail(err: unknown): void {
  if (err instanceof UserError) {
    if (err.details) core.info(err.details);
    if (inActions()) core.setFailed(err.message);
    else process.stderr.write(`error: ${err.message}\n`);
    return;
  }
  const message = `unexpected error (a bug in asm-wasm-action): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
  if (inActions()) core.setFailed(message);
  else process.stderr.write(`error: ${message}\n`);
}
