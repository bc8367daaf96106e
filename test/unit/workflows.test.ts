// The workflows users copy are product: an input name, an output that is
// never set or a secret that reaches a fork is a bug they meet in production.
// These tests read the YAML the way GitHub does and check the wiring.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';

const ROOT = path.resolve(import.meta.dirname, '../..');
const WORKFLOWS = [
  ...fs.readdirSync(path.join(ROOT, '.github/workflows')).map((f) => path.join('.github/workflows', f)),
  ...fs.readdirSync(path.join(ROOT, 'examples/workflows')).map((f) => path.join('examples/workflows', f)),
].filter((f) => f.endsWith('.yml'));
// The action by its published tag (what users write), `./` in this repository,
// and `./.asm-wasm-action`: the reusable workflow's checkout of its own commit.
const ACTION_REF = /^(org\/asm-wasm-action@v1|\.\/|\.\/\.asm-wasm-action)$/;
const SELF_DIR = '.asm-wasm-action';
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

/** Whether a value reads a secret by a computed name (`secrets[...]`). */
function readsSecretByName(value: unknown): boolean {
  return expressions(value).some((e) => /\bsecrets\[/.test(e));
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
    // actionlint 1.7.12 does not know the job context's workflow_sha and
    // workflow_repository (documented in GitHub's contexts reference); only
    // those two reports are ignored, and only for the job context.
    const ignore = 'property "workflow_(sha|repository)" is not defined in object type \\{check_run_id';
    const out = execFileSync(bin!, ['-no-color', '-ignore', ignore, ...WORKFLOWS], { cwd: ROOT, encoding: 'utf8' });
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

  it('sets least permissions: contents: read at the top (the reusable workflow: on every job but publish)', () => {
    if (file !== '.github/workflows/wasm-plugin.yml') {
      expect(wf.permissions).toEqual({ contents: 'read' });
      return;
    }
    // Publish takes the calling job's grant (see the workflow); every other job names its own.
    expect(wf.permissions).toBeUndefined();
    for (const [name, job] of jobs) {
      if (name === 'publish') expect(job.permissions, name).toBeUndefined();
      else expect(job.permissions, name).toEqual({ contents: 'read' });
    }
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
      if (job.secrets === 'inherit') continue;
      expect(typeof (job.secrets ?? {}), `${jobName}: secrets is inherit or a map`).toBe('object');
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
      const usesSecrets = references(job, 'secrets').length > 0 || readsSecretByName(job);
      const pushes = (job.steps ?? []).some((s: Obj) => ACTION_REF.test(s.uses ?? '') && s.with?.image);
      const deploys = (job.steps ?? []).some((s: Obj) => s.with?.deploy === 'true');
      if (!usesSecrets && !pushes && !deploys) continue;
      expect(String(job.if).replace(/\s+/g, ' '), `${name} must not run for a fork's pull request`).toContain(forkGuard);
    }
  });

  it('the job that runs the pull request code holds no secret and cannot write packages', () => {
    const build = reusable.jobs['build-and-test'];
    expect(references(build, 'secrets')).toEqual([]);
    expect(readsSecretByName(build)).toBe(false);
    expect(build.permissions).toEqual({ contents: 'read' });
    for (const step of build.steps) if (step.uses?.startsWith('actions/checkout@')) expect(step.with?.['persist-credentials']).toBe(false);
  });

  it('the signing key reaches the publish job\'s push step alone; the deploy job gets the public key', () => {
    for (const [jobName, job] of Object.entries<Obj>(reusable.jobs)) {
      for (const step of job.steps ?? []) {
        const names = references(step, 'secrets').filter((n) => /^SIGN_KEY/.test(n));
        if (jobName === 'publish' && step.id === 'push') expect(names.sort()).toEqual(['SIGN_KEY', 'SIGN_KEY_PASSWORD']);
        else expect(names, `${jobName} ${step.name ?? step.id ?? step.uses}`).toEqual([]);
      }
    }
    const deployStep = reusable.jobs.deploy.steps.find((s: Obj) => s.id === 'deploy');
    expect(deployStep.with['verify-key']).toBe('${{ inputs.verify-key }}');
    expect(deployStep.with['sign-key']).toBeUndefined();
  });

  it('deploys run in an environment, one at a time per environment', () => {
    const deploy = reusable.jobs.deploy;
    expect(deploy.environment).toBe('${{ inputs.environment }}');
    expect(deploy.concurrency.group).toContain('inputs.environment');
    expect(deploy.concurrency['cancel-in-progress']).toBe(false);
  });
});

describe('the publish job attests build provenance of the pushed digest', () => {
  const publish = reusable.jobs.publish;
  const steps: Obj[] = publish.steps;
  const at = (pred: (s: Obj) => boolean) => steps.findIndex(pred);
  const push = at((s) => s.id === 'push');
  const attest = at((s) => String(s.uses ?? '').startsWith('actions/attest-build-provenance@'));
  const guard = steps.find((s) => s.name === 'The job may attest provenance')!;

  it('after the push, with the pushed digest, pushed to the registry', () => {
    expect(attest).toBeGreaterThan(push);
    expect(steps[attest].if).toBe('inputs.provenance');
    expect(steps[attest].with).toEqual({
      'subject-name': '${{ steps.attest-login.outputs.subject-name }}',
      'subject-digest': '${{ steps.push.outputs.digest }}',
      'push-to-registry': true,
    });
    // The registry credentials it reads live in a home of its own, removed whatever happens.
    expect(steps[attest].env).toEqual({ HOME: '${{ steps.attest-login.outputs.home }}' });
    const cleanup = steps.slice(attest + 1).find((s) => String(s.run ?? '').includes('attest-home'));
    expect(cleanup?.if).toBe('always()');
  });

  it('fails before anything is pushed when the job cannot get an OIDC token', () => {
    expect(steps.indexOf(guard)).toBeLessThan(push);
    const run = (env: Record<string, string>) => spawnSync('bash', ['-eo', 'pipefail', '-c', guard.run], { env: { PATH: process.env.PATH!, ...env }, encoding: 'utf8' });
    const refused = run({});
    expect(refused.status).not.toBe(0);
    expect(refused.stdout).toMatch(/grant 'id-token: write' and 'attestations: write'/);
    expect(run({ ACTIONS_ID_TOKEN_REQUEST_URL: 'https://token.example/' }).status).toBe(0);
  });

  it('writes the attestation\'s registry login where only that step looks, and takes the subject from the pushed image', () => {
    const login = steps.find((s) => s.id === 'attest-login')!;
    const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'asm-wasm-attest-login-'));
    const out = path.join(temp, 'out');
    const env = { PATH: process.env.PATH!, HOME: '/home/runner', RUNNER_TEMP: temp, GITHUB_OUTPUT: out, IMAGE_REF: 'registry.example.com:5000/team/p@sha256:' + 'a'.repeat(64) };
    const r = spawnSync('bash', ['-eo', 'pipefail', '-c', login.run], { env: { ...env, REGISTRY_USERNAME: 'u', REGISTRY_PASSWORD: 'p:w' }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).toBe(`subject-name=registry.example.com:5000/team/p\nhome=${temp}/attest-home\n`);
    const config = path.join(temp, 'attest-home', '.docker', 'config.json');
    expect(JSON.parse(fs.readFileSync(config, 'utf8'))).toEqual({ auths: { 'registry.example.com:5000': { auth: Buffer.from('u:p:w').toString('base64') } } });
    expect(fs.statSync(config).mode & 0o077).toBe(0);
    // No credentials given: the runner's own login (its HOME) is used.
    fs.rmSync(out);
    expect(spawnSync('bash', ['-eo', 'pipefail', '-c', login.run], { env, encoding: 'utf8' }).status).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).toBe('subject-name=registry.example.com:5000/team/p\nhome=/home/runner\n');
  });

  it('the examples that publish grant exactly what it needs (no packages: write: their registry is not GHCR)', () => {
    for (const file of ['examples/workflows/deploy.yml', 'examples/workflows/multi-cluster.yml']) {
      const wf = load(file);
      const callers = Object.values<Obj>(wf.jobs).filter((j) => j.uses === REUSABLE_REF && j.with?.publish === true);
      expect(callers.length, file).toBeGreaterThan(0);
      for (const job of callers) expect(job.permissions, file).toEqual({ contents: 'read', 'id-token': 'write', attestations: 'write' });
    }
  });
});

describe('the reusable workflow runs the action from its own commit', () => {
  const jobs = Object.entries<Obj>(reusable.jobs);

  it('never names the action by a tag or another commit', () => {
    const text = fs.readFileSync(path.join(ROOT, '.github/workflows/wasm-plugin.yml'), 'utf8');
    expect(text).not.toMatch(/uses:\s*org\/asm-wasm-action@/);
    for (const [name, job] of jobs) {
      for (const step of job.steps ?? []) {
        if (!ACTION_REF.test(step.uses ?? '')) continue;
        expect(step.uses, `${name}: ${step.uses}`).toBe(`./${SELF_DIR}`);
      }
    }
  });

  it.each(jobs.filter(([, job]) => (job.steps ?? []).some((s: Obj) => s.uses === `./${SELF_DIR}`)))('%s checks it out at job.workflow_sha first', (name, job) => {
    const steps: Obj[] = job.steps;
    const use = steps.findIndex((s) => s.uses === `./${SELF_DIR}`);
    const self = steps.findIndex((s) => s.uses?.startsWith('actions/checkout@') && s.with?.path === SELF_DIR);
    expect(self, `${name}: no checkout of the action`).toBeGreaterThanOrEqual(0);
    expect(self).toBeLessThan(use);
    expect(steps[self].with).toEqual({
      repository: '${{ job.workflow_repository }}',
      ref: '${{ job.workflow_sha }}',
      path: SELF_DIR,
      'persist-credentials': false,
    });
    // The caller's checkout (the workspace root, which it cleans) comes before,
    // or it would delete the action's directory.
    const caller = steps.findIndex((s) => s.uses?.startsWith('actions/checkout@') && !s.with?.path);
    expect(caller, `${name}: the caller's checkout`).toBeGreaterThanOrEqual(0);
    expect(caller).toBeLessThan(self);
    // On a runner with no job.workflow_* (GitHub Enterprise Server), checkout
    // would take the caller's repository: a step before refuses that.
    const guard = steps.findIndex((s) => s.env?.WORKFLOW_SHA === '${{ job.workflow_sha }}' && s.env?.WORKFLOW_REPOSITORY === '${{ job.workflow_repository }}');
    expect(guard, `${name}: no check that job.workflow_sha is set`).toBeGreaterThanOrEqual(0);
    expect(guard).toBeLessThan(self);
  });

  it('the check fails when the runner does not say which commit runs', () => {
    const guard = reusable.jobs['build-and-test'].steps.find((s: Obj) => s.env?.WORKFLOW_SHA);
    const run = (env: Record<string, string>) => spawnSync('bash', ['-eo', 'pipefail', '-c', guard.run], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
    expect(run({ WORKFLOW_REPOSITORY: 'org/asm-wasm-action', WORKFLOW_SHA: '' }).status).not.toBe(0);
    expect(run({ WORKFLOW_REPOSITORY: '', WORKFLOW_SHA: 'a'.repeat(40) }).status).not.toBe(0);
    expect(run({ WORKFLOW_REPOSITORY: 'org/asm-wasm-action', WORKFLOW_SHA: 'a'.repeat(40) }).status).toBe(0);
  });
});

describe('the deploy job reads its kubeconfig and gateway URL in its environment', () => {
  const call = reusable.on.workflow_call;
  const deploy = reusable.jobs.deploy;
  const action = deploy.steps.find((s: Obj) => s.uses === `./${SELF_DIR}`);
  const guardIndex = deploy.steps.findIndex((s: Obj) => s.env?.ALLOW_UNVERIFIED);
  const guard = deploy.steps[guardIndex];

  it('by documented names, overridable by inputs', () => {
    expect(call.inputs['kubeconfig-secret'].default).toBe('ASM_KUBECONFIG');
    expect(call.inputs['cluster-kubeconfig-secret'].default).toBe('CLUSTER_KUBECONFIG');
    expect(call.inputs['gateway-url-variable'].default).toBe('GATEWAY_URL');
    // Declared, so a caller can map them by name (which works for a secret
    // stored only in the environment); the environment's value wins.
    expect(Object.keys(call.secrets)).toEqual(expect.arrayContaining(['ASM_KUBECONFIG', 'CLUSTER_KUBECONFIG']));
    expect(action.with.kubeconfig).toBe('${{ secrets[inputs.kubeconfig-secret] }}');
    expect(action.with['cluster-kubeconfig']).toBe('${{ secrets[inputs.cluster-kubeconfig-secret] }}');
    expect(action.with['verify-url']).toBe('${{ inputs.verify-url || vars[inputs.gateway-url-variable] }}');
  });

  it('takes no kubeconfig a caller job outside the environment would pass', () => {
    expect(Object.keys(call.secrets)).not.toContain('kubeconfig');
    expect(Object.keys(call.secrets)).not.toContain('cluster-kubeconfig');
    for (const [name, job] of Object.entries<Obj>(reusable.jobs)) {
      if (name === 'deploy') continue;
      expect(JSON.stringify(job), name).not.toMatch(/KUBECONFIG|kubeconfig/);
    }
  });

  it('checks before anything changes, with the values the action gets', () => {
    expect(guardIndex).toBeGreaterThanOrEqual(0);
    expect(guardIndex).toBeLessThan(deploy.steps.indexOf(action));
    expect(guard.env.VERIFY_URL).toBe(action.with['verify-url']);
    expect(guard.env.HAS_KUBECONFIG).toBe(action.with.kubeconfig.replace(/ \}\}$/, " != '' }}"));
    expect(guard.env.DEPLOY_MODE).toBe(action.with['deploy-mode']);
    expect(guard.env.ENVIRONMENT).toBe(deploy.environment);
    expect(guard.env.ALLOW_UNVERIFIED).toBe('${{ inputs.allow-unverified }}');
    expect(call.inputs['allow-unverified']).toMatchObject({ type: 'boolean', default: false });
  });

  const check = (env: Record<string, string>) => {
    const base = { DEPLOY_MODE: 'apply', ENVIRONMENT: 'production', KUBECONFIG_SECRET: 'ASM_KUBECONFIG', HAS_KUBECONFIG: 'true', GATEWAY_URL_VARIABLE: 'GATEWAY_URL', VERIFY_URL: 'http://gw', ALLOW_UNVERIFIED: 'false' };
    return spawnSync('bash', ['-eo', 'pipefail', '-c', guard.run], { env: { PATH: process.env.PATH, ...base, ...env }, encoding: 'utf8' });
  };

  it.each<[string, Record<string, string>, boolean, RegExp?]>([
    ['an apply in an environment with a kubeconfig and a gateway URL', {}, true],
    ['an apply with no gateway URL', { VERIFY_URL: '' }, false, /no gateway URL.*GATEWAY_URL.*allow-unverified/],
    ['an apply with no gateway URL, unverified on purpose', { VERIFY_URL: '', ALLOW_UNVERIFIED: 'true' }, true, /::warning::applying with no verification/],
    ['an apply with no kubeconfig', { HAS_KUBECONFIG: 'false' }, false, /secret ASM_KUBECONFIG is empty.*secrets: inherit/],
    ['an apply outside any environment', { ENVIRONMENT: '' }, false, /needs an environment/],
    ['a delete outside any environment', { DEPLOY_MODE: 'delete', ENVIRONMENT: '' }, false, /needs an environment/],
    ['a delete with no gateway URL', { DEPLOY_MODE: 'delete', VERIFY_URL: '' }, true],
    ['a dry run outside any environment, with no gateway URL', { DEPLOY_MODE: 'dry-run', ENVIRONMENT: '', VERIFY_URL: '' }, true],
    ['a dry run with no kubeconfig', { DEPLOY_MODE: 'dry-run', HAS_KUBECONFIG: 'false' }, false, /is empty/],
  ])('%s', (_, env, ok, message) => {
    const r = check(env);
    expect(r.status === 0, r.stdout + r.stderr).toBe(ok);
    if (message) expect(r.stdout).toMatch(message);
  });
});

describe('the examples deploy the way that works', () => {
  const examples = WORKFLOWS.filter((f) => f.startsWith('examples/'));

  it.each(examples)('%s: a call that deploys names the environment and passes its secrets', (file) => {
    for (const [name, job] of Object.entries<Obj>(load(file).jobs)) {
      if (job.uses !== REUSABLE_REF) continue;
      // The calling job cannot read an environment: no vars, and no kubeconfig
      // mapped from a secret of another name, go through it.
      expect(references(job.with ?? {}, 'vars'), `${file} ${name}`).toEqual([]);
      expect(job.with?.['verify-url'], `${file} ${name}`).toBeUndefined();
      if ((job.with?.['deploy-mode'] ?? 'none') === 'none') continue;
      expect(job.with?.environment, `${file} ${name}: environment`).toBeTruthy();
      if (job.secrets !== 'inherit') {
        for (const [key, value] of Object.entries<string>(job.secrets ?? {})) {
          if (/KUBECONFIG/i.test(key)) expect(value, `${file} ${name}: ${key} is passed by its own name`).toBe(`\${{ secrets.${key} }}`);
        }
        expect(Object.keys(job.secrets ?? {}), `${file} ${name}: the kubeconfig is passed`).toContain('ASM_KUBECONFIG');
      }
    }
  });

  it.each(examples)('%s: a job that deploys itself runs in an environment, one region after the other, stopping at the first failure', (file) => {
    for (const [name, job] of Object.entries<Obj>(load(file).jobs)) {
      const deploys = (job.steps ?? []).some((s: Obj) => ACTION_REF.test(s.uses ?? '') && s.with?.deploy === 'true');
      if (!deploys) continue;
      expect(job.environment, `${file} ${name}`).toBeTruthy();
      if (job.strategy?.matrix) {
        expect(job.strategy['max-parallel'], `${file} ${name}: one region at a time`).toBe(1);
        expect(job.strategy['fail-fast'] ?? true, `${file} ${name}: stop at the first failed region`).toBe(true);
      }
      const step = job.steps.find((s: Obj) => s.with?.deploy === 'true');
      if (step.with['deploy-mode'] === 'apply' || step.with['deploy-mode'] === undefined) {
        // An apply with no gateway URL would not verify or roll back: a step before it refuses that.
        const check = job.steps.findIndex((s: Obj) => s.run && Object.values(s.env ?? {}).includes(step.with['verify-url']));
        expect(check, `${file} ${name}: no check that the gateway URL is set`).toBeGreaterThanOrEqual(0);
        expect(check).toBeLessThan(job.steps.indexOf(step));
      }
    }
  });
});
