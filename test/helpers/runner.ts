// Runs a composite action's steps the way the runner does, for the steps our
// action.yml has: each `run:` step in order with `bash`, the env its YAML maps,
// fresh GITHUB_OUTPUT / GITHUB_ENV files per step, a shared
// GITHUB_STEP_SUMMARY, the step's `if:`, and then the action's outputs from
// the steps context. It evaluates only the expressions action.yml uses and
// throws on any other, so a new form must be taught here before it ships.
//
// Only test/integration/action.test.ts uses it, for the one check act
// (test/infra/act.ts) cannot make: which environment each step's processes
// get. GitHub's runner gives a composite action's step the env its YAML maps
// and no variable for the action's inputs (the workflow's, the job's and the
// runner's own variables aside), and so does this emulation; act
// v0.2.89 adds an INPUT_<NAME> variable for every input of the action to every
// step (credentials included), and in host mode the whole environment of the
// machine it runs on. Under act a credential seen by the plugin's build script
// proves nothing about action.yml. Everything else a runner does with the
// action (stages, `if:`, outputs, the reusable workflow) is tested under act
// in test/integration/act.test.ts; do not add such tests here.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';

type Obj = Record<string, any>;

export interface StepRecord {
  id: string;
  outcome: 'success' | 'failure' | 'skipped';
  outputs: Record<string, string>;
  stdout: string;
  stderr: string;
}

export interface ActionRun {
  steps: StepRecord[];
  outputs: Record<string, string>;
  summary: string;
  failed: boolean;
}

/** Reads name=value and name<<DELIM … DELIM lines of a GITHUB_OUTPUT file. */
export function parseCommandFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== heredoc[2]; i++) body.push(lines[i]);
      out[heredoc[1]] = body.join('\n');
    } else if (line.includes('=')) {
      out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return out;
}

interface Contexts {
  inputs: Record<string, string>;
  steps: Record<string, { outputs: Record<string, string>; outcome: string; conclusion: string }>;
}

function evaluate(expr: string, ctx: Contexts): string {
  const e = expr.trim();
  if (e === 'toJSON(inputs)') return JSON.stringify(ctx.inputs, null, 2);
  if (e === 'toJSON(steps)') return JSON.stringify(ctx.steps, null, 2);
  let m = /^toJSON\(inputs\.([\w-]+)\)$/.exec(e);
  if (m) {
    if (!(m[1] in ctx.inputs)) throw new Error(`expression uses undeclared input ${m[1]}`);
    return JSON.stringify(ctx.inputs[m[1]]);
  }
  m = /^steps\.([\w-]+)\.outputs\.([\w-]+)$/.exec(e);
  if (m) return ctx.steps[m[1]]?.outputs[m[2]] ?? '';
  m = /^inputs\.([\w-]+)$/.exec(e);
  if (m) {
    if (!(m[1] in ctx.inputs)) throw new Error(`expression uses undeclared input ${m[1]}`);
    return ctx.inputs[m[1]];
  }
  throw new Error(`the test runner does not know the expression \${{ ${e} }}`);
}

function substitute(value: string, ctx: Contexts): string {
  return value.replace(/\$\{\{([\s\S]*?)\}\}/g, (_, e: string) => evaluate(e, ctx));
}

function condition(expr: string | undefined, ctx: Contexts): boolean {
  if (expr === undefined) return Object.values(ctx.steps).every((s) => s.outcome !== 'failure');
  const e = expr.replace(/^\$\{\{|\}\}$/g, '').trim();
  const m = /^inputs\.([\w-]+) == '([^']*)'$/.exec(e);
  if (!m) throw new Error(`the test runner does not know the condition ${expr}`);
  if (!(m[1] in ctx.inputs)) throw new Error(`condition uses undeclared input ${m[1]}`);
  // Like the runner: a step with a condition of its own but no status
  // function still runs only if nothing before it failed.
  return Object.values(ctx.steps).every((s) => s.outcome !== 'failure') && ctx.inputs[m[1]] === m[2];
}

function bash(script: string, env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', script], { env, cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

export async function runCompositeAction(options: {
  actionDir: string;
  /** action.yml text; default the file in actionDir. */
  actionYaml?: string;
  with: Record<string, string>;
  workdir: string;
  env?: Record<string, string>;
}): Promise<ActionRun> {
  const action = YAML.parse(options.actionYaml ?? fs.readFileSync(path.join(options.actionDir, 'action.yml'), 'utf8')) as Obj;
  if (action.runs?.using !== 'composite') throw new Error('not a composite action');
  const inputs: Record<string, string> = {};
  for (const [name, spec] of Object.entries<Obj>(action.inputs ?? {})) inputs[name] = spec.default !== undefined ? String(spec.default) : '';
  for (const [name, value] of Object.entries(options.with)) {
    // The runner warns about an unexpected input; our tests treat it as an error.
    if (!(name in inputs)) throw new Error(`unexpected input ${name}`);
    inputs[name] = value;
  }
  const ctx: Contexts = { inputs, steps: {} };
  const temp = fs.mkdtempSync(path.join(options.workdir, 'runner-'));
  const summaryFile = path.join(temp, 'summary.md');
  fs.writeFileSync(summaryFile, '');
  const addedEnv: Record<string, string> = {};
  const records: StepRecord[] = [];

  for (const [i, step] of (action.runs.steps as Obj[]).entries()) {
    const id = step.id ?? `__step${i}`;
    if (!condition(step.if, ctx)) {
      ctx.steps[id] = { outputs: {}, outcome: 'skipped', conclusion: 'skipped' };
      records.push({ id, outcome: 'skipped', outputs: {}, stdout: '', stderr: '' });
      continue;
    }
    if (step.shell !== 'bash' || typeof step.run !== 'string') throw new Error(`step ${id}: only bash run steps are supported`);
    const outputFile = path.join(temp, `output-${i}`);
    const envFile = path.join(temp, `env-${i}`);
    fs.writeFileSync(outputFile, '');
    fs.writeFileSync(envFile, '');
    const stepEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries<string>(step.env ?? {})) stepEnv[k] = substitute(String(v), ctx);
    const env = {
      ...process.env,
      ...options.env,
      ...addedEnv,
      ...stepEnv,
      GITHUB_ACTIONS: 'true',
      GITHUB_ACTION_PATH: options.actionDir,
      GITHUB_OUTPUT: outputFile,
      GITHUB_ENV: envFile,
      GITHUB_STEP_SUMMARY: summaryFile,
      RUNNER_TEMP: temp,
    };
    const r = await bash(substitute(step.run, ctx), env, options.workdir);
    const outputs = parseCommandFile(fs.readFileSync(outputFile, 'utf8'));
    Object.assign(addedEnv, parseCommandFile(fs.readFileSync(envFile, 'utf8')));
    const outcome = r.code === 0 ? 'success' : 'failure';
    ctx.steps[id] = { outputs, outcome, conclusion: outcome };
    records.push({ id, outcome, outputs, stdout: r.stdout, stderr: r.stderr });
  }

  const outputs: Record<string, string> = {};
  for (const [name, spec] of Object.entries<Obj>(action.outputs ?? {})) outputs[name] = substitute(String(spec.value), ctx);
  return { steps: records, outputs, summary: fs.readFileSync(summaryFile, 'utf8'), failed: records.some((r) => r.outcome === 'failure') };
}
