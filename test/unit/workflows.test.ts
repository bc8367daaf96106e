// The workflows users copy are product: an input name, an output that is
// never set or a secret that reaches a fork is a bug they meet in production.
// These tests read the YAML the way GitHub does and check the wiring.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';

const ROOT = path.resolve(import.meta.dirname, '../..');
const WORKFLOWS = [
  ...fs.readdirSync(path.join(ROOT, '.github/workflows')).map((f) => path.join('.github/workflows', f)),
  ...fs.readdirSync(path.join(ROOT, 'examples/workflows')).map((f) => path.join('examples/workflows', f)),
].filter((f) => f.endsWith('.yml'));
const ACTION_REF = /^(org\/asm-wasm-action@v1|\.\/)$/;
const REUSABLE_REF = 'org/asm-wasm-action/.github/workflows/wasm-plugin.yml@v1';

type Obj = Record<string, any>;
const load = (file: string): Obj => YAML.parse(fs.readFileSync(path.join(ROOT, file), 'utf8'));
const action = load('action.yml');
const reusable = load('.github/workflows/wasm-plugin.yml');

/** Every `${{ … }}` expression in a value, recursively. */
function expressions(value: unknown): string[] {
  if (typeof value === 'string') return [...value.matchAll(/\$\{\{([\s\S]*?)\}\}/g)].map((m) => m[1].trim());
  if (Array.isArray(value)) return value.flatMap(expressions);
  if (value && typeof value === 'object') return Object.values(value).flatMap(expressions);
  return [];
}

/** Names used as `<context>.name` in expressions (and bare `if:` conditions). */
function references(value: unknown, context: string, bareIf?: string): string[] {
  const exprs = [...expressions(value), ...(bareIf ? [bareIf] : [])];
  const re = new RegExp(`\\b${context}\\.([A-Za-z_][\\w-]*)`, 'g');
  return exprs.flatMap((e) => [...e.matchAll(re)].map((m) => m[1]));
}

describe('actionlint', () => {
  it('passes on every workflow', () => {
    const bin = process.env.ACTIONLINT;
    expect(bin, 'ACTIONLINT is not set: run the tests with `npm test`, which builds actionlint').toBeTruthy();
    expect(fs.existsSync(bin!), `${bin} does not exist`).toBe(true);
    const out = execFileSync(bin!, ['-no-color', ...WORKFLOWS], { cwd: ROOT, encoding: 'utf8' });
    expect(out).toBe('');
  });
});

describe('action.yml', () => {
  it('describes every input and output', () => {
    for (const [name, input] of Object.entries<Obj>(action.inputs)) expect(input.description, name).toBeTruthy();
    for (const [name, output] of Object.entries<Obj>(action.outputs)) expect(output.description, name).toBeTruthy();
  });

  it('uses only inputs it declares', () => {
    for (const name of references(action.runs, 'inputs', undefined)) expect(Object.keys(action.inputs)).toContain(name);
    for (const step of action.runs.steps) for (const name of references(step, 'inputs', step.if)) expect(Object.keys(action.inputs)).toContain(name);
  });
});

describe.each(WORKFLOWS)('%s', (file) => {
  const wf = load(file);
  const on = wf.on ?? {};
  const declaredInputs = Object.keys(on.workflow_call?.inputs ?? on.workflow_dispatch?.inputs ?? {});
  const declaredSecrets = Object.keys(on.workflow_call?.secrets ?? {});
  const jobs = Object.entries<Obj>(wf.jobs);

  it('sets least permissions: contents: read at the top', () => {
    expect(wf.permissions).toEqual({ contents: 'read' });
  });

  it('pins every third-party action to a full commit SHA with its version in a comment', () => {
    const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
    for (const m of text.matchAll(/uses:\s*(\S+)(.*)$/gm)) {
      const [ref, rest] = [m[1], m[2]];
      if (ACTION_REF.test(ref) || ref === REUSABLE_REF) continue;
      expect(ref, `${file}: ${ref}`).toMatch(/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/);
      expect(rest, `${file}: ${ref} needs a # vX.Y.Z comment`).toMatch(/#\s*v\d+\.\d+\.\d+/);
    }
  });

  it('uses only inputs and secrets it declares', () => {
    for (const [, job] of jobs) {
      for (const name of references(job, 'inputs', job.if)) expect(declaredInputs, `inputs.${name}`).toContain(name);
      if (on.workflow_call) for (const name of references(job, 'secrets', job.if)) expect(declaredSecrets, `secrets.${name}`).toContain(name);
    }
    for (const [name, spec] of Object.entries<Obj>(on.workflow_call?.inputs ?? {})) expect(spec.description, name).toBeTruthy();
    for (const [name, spec] of Object.entries<Obj>(on.workflow_call?.secrets ?? {})) expect(spec.description, name).toBeTruthy();
  });

  it('passes the action only inputs it declares, and reads only outputs it sets', () => {
    for (const [jobName, job] of jobs) {
      const steps: Obj[] = job.steps ?? [];
      const ours = new Map(steps.filter((s) => s.id && ACTION_REF.test(s.uses ?? '')).map((s) => [s.id, s]));
      for (const step of steps) {
        if (!ACTION_REF.test(step.uses ?? '')) continue;
        for (const key of Object.keys(step.with ?? {})) expect(Object.keys(action.inputs), `${jobName}: with.${key}`).toContain(key);
      }
      for (const e of expressions(job)) {
        for (const m of e.matchAll(/\bsteps\.([\w-]+)\.outputs\.([\w-]+)/g)) {
          const step = ours.get(m[1]);
          if (!step) continue; // another action's step
          expect(Object.keys(action.outputs), `${jobName}: steps.${m[1]}.outputs.${m[2]}`).toContain(m[2]);
        }
      }
    }
  });

  it('reads needs.<job>.outputs only from jobs it needs, that declare them', () => {
    const byName = Object.fromEntries(jobs);
    for (const [jobName, job] of jobs) {
      const needs = [job.needs ?? []].flat();
      for (const e of [...expressions(job), ...(job.if ? [job.if] : [])]) {
        for (const m of e.matchAll(/\bneeds\.([\w-]+)\.(outputs\.([\w-]+)|result)/g)) {
          expect(needs, `${jobName} reads needs.${m[1]}`).toContain(m[1]);
          if (m[3]) {
            const producer = byName[m[1]];
            const outputs = producer.uses === REUSABLE_REF ? reusable.on.workflow_call.outputs : producer.outputs;
            expect(Object.keys(outputs ?? {}), `${jobName}: needs.${m[1]}.outputs.${m[3]}`).toContain(m[3]);
          }
        }
      }
    }
  });

  it('passes the reusable workflow only inputs and secrets it declares', () => {
    for (const [jobName, job] of jobs) {
      if (job.uses !== REUSABLE_REF) continue;
      for (const key of Object.keys(job.with ?? {})) expect(Object.keys(reusable.on.workflow_call.inputs), `${jobName}: with.${key}`).toContain(key);
      for (const key of Object.keys(job.secrets ?? {})) expect(Object.keys(reusable.on.workflow_call.secrets), `${jobName}: secrets.${key}`).toContain(key);
    }
  });

  it('passes inputs to scripts only through env', () => {
    for (const [, job] of jobs) {
      for (const step of job.steps ?? []) {
        if (step.run) expect(expressions(step.run), `${file}: run: ${step.run}`).toEqual([]);
      }
    }
  });
});

describe('a pull request from a fork reaches no secret and no push', () => {
  const forkGuard = "github.event_name != 'pull_request' || github.event.pull_request.head.repo.full_name == github.repository";
  const jobs = Object.entries<Obj>(reusable.jobs);

  it('every job that reads a secret or pushes is guarded', () => {
    for (const [name, job] of jobs) {
      const usesSecrets = references(job, 'secrets').length > 0;
      const pushes = (job.steps ?? []).some((s: Obj) => ACTION_REF.test(s.uses ?? '') && s.with?.image);
      const deploys = (job.steps ?? []).some((s: Obj) => s.with?.deploy === 'true');
      if (!usesSecrets && !pushes && !deploys) continue;
      expect(String(job.if).replace(/\s+/g, ' '), `${name} must not run for a fork's pull request`).toContain(forkGuard);
    }
  });

  it('the job that runs the pull request code holds no secret and cannot write packages', () => {
    const build = reusable.jobs['build-and-test'];
    expect(references(build, 'secrets')).toEqual([]);
    expect(build.permissions).toEqual({ contents: 'read' });
    for (const step of build.steps) if (step.uses?.startsWith('actions/checkout@')) expect(step.with?.['persist-credentials']).toBe(false);
  });

  it('deploys run in an environment, one at a time per environment', () => {
    const deploy = reusable.jobs.deploy;
    expect(deploy.environment).toBe('${{ inputs.environment }}');
    expect(deploy.concurrency.group).toContain('inputs.environment');
    expect(deploy.concurrency['cancel-in-progress']).toBe(false);
  });
});
