// How long the pipeline takes: each stage run as the composite action runs
// it (a fresh `node dist/index.js <stage>`), on a fresh copy of the bundled
// plugin, pushing to a local registry.
//   cold: empty tool cache, npm cache and pip cache, fresh registry;
//   warm: the same caches and registry again, on another fresh copy (the next
//         job on a runner that keeps its tool cache);
//   restored: a fresh runner whose tool cache holds only what the action's
//         cache restores, at the same path (the Actions cache restores a
//         folder where it was saved, and the build store's keys name the
//         toolchain's path): the toolchain folder; then the toolchain and
//         Envoy; then both and the compiled-module store's folders (all three
//         are what the action saves now); npm and pip caches empty. Each is
//         copied from the cold run's tool cache with cp -a (times kept, as the
//         cache's tar keeps them) and not timed (on a runner it is the cache's
//         download).
// Each stage's time is split at lines it logs (see PHASES), so the table says
// where the time goes: Node loading the bundle, npm, the compiler, Envoy.
// The deploy stage runs twice, as a pull request check and a deploy would:
// a server-side dry run, then the apply, against a local kube-apiserver
// (test/infra/kube.ts; its binaries are built once from the Go module proxy).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startKube, type Kube } from '../../test/infra/kube.js';
import { startRegistry, type TestRegistry } from '../../test/infra/registry.js';
import { copyPlugin, TEMPLATE_DIR } from '../../test/helpers/cli.js';
import { BUNDLE, ROOT, log, median, ms, runAsync, runStage, table, tempDir, which, type StageRun } from './util.js';

/**
 * The stages timed, in order. `deploy:<mode>` is the deploy stage with that
 * `deploy-mode`; it needs a kubeconfig, which is the local API server's
 * unless one is given with --input kubeconfig=...
 */
export const PIPELINE_STAGES = ['toolchain', 'build', 'test', 'push', 'deploy:dry-run', 'deploy:apply'];

interface Phase {
  name: string;
  from: RegExp;
  to: RegExp;
}

/** Named spans inside a stage, from the first line matching `from` to the first later line matching `to`. */
const PHASES: Record<string, Phase[]> = {
  toolchain: [{ name: 'npm ci', from: /\[command\].*npm ci/, to: /added \d+ packages|up to date/ }],
  build: [{ name: 'compile (asc)', from: /\[command\].*(npm run|asc)/, to: /root id/ }],
  test: [
    { name: 'find/install Envoy', from: /^== Test in Envoy/, to: /^Envoy [\d.]+ from / },
    { name: 'Envoy start-up', from: /^starting Envoy/, to: /^Envoy ready/ },
    { name: 'cases', from: /^Envoy ready/, to: /^output test-failed/ },
  ],
  push: [{ name: 'pack + push', from: /^== (Push|Write)/, to: /^output digest/ }],
  deploy: [{ name: 'API server', from: /^== (Dry-run|Apply|Delete) WasmPlugin/, to: /^output result/ }],
};

export interface StageTiming {
  stage: string;
  ok: boolean;
  ms: number;
  /** Node start-up and loading the bundle: until the stage's first line. */
  startupMs: number;
  /** After the last line until the process exited. */
  exitMs: number;
  phases: Record<string, number>;
  error?: string;
}

export interface PipelineRun {
  kind: PipelineKind;
  /** Which bundle ran: 'current', or the baseline's label. */
  bundle: string;
  totalMs: number;
  stages: StageTiming[];
}

export interface PipelineBench {
  bundle: string;
  baseline?: string;
  runs: PipelineRun[];
  floor: { bundleLoadMs: number; nodeMs: number; ascMs?: number; deployStartMs?: number };
}

export function timing(stage: string, r: StageRun): StageTiming {
  const lines = r.lines.filter((l) => l.line.trim() !== '');
  const startupMs = lines[0]?.ms ?? r.ms;
  const exitMs = r.ms - (lines[lines.length - 1]?.ms ?? r.ms);
  const phases: Record<string, number> = {};
  for (const p of PHASES[stage] ?? []) {
    const from = lines.find((l) => p.from.test(l.line.trim()));
    const to = from && lines.find((l) => l.ms >= from.ms && l !== from && p.to.test(l.line.trim()));
    if (from && to) phases[p.name] = to.ms - from.ms;
  }
  return { stage, ok: r.ok, ms: r.ms, startupMs, exitMs, phases, error: r.ok ? undefined : r.error };
}

export function ensureRegistryTools(): void {
  if (which('docker-registry') && which('skopeo') && which('htpasswd') && which('openssl')) return;
  log('installing the local registry (test/infra/install-registry.sh)');
  execFileSync('bash', [path.join(ROOT, 'test/infra/install-registry.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
}

/** One bundle's pipeline: its own caches, repository and WasmPlugin name, so no bundle warms another's run. */
interface Lane {
  label: string;
  bundle: string;
  env: NodeJS.ProcessEnv;
  inputs: Record<string, string>;
}

export type PipelineKind = 'cold' | 'warm' | 'restored: toolchain' | 'restored: toolchain + Envoy' | 'restored: toolchain + Envoy + build store';

async function runPipeline(kind: PipelineKind, lane: Lane, stageList: string[]): Promise<PipelineRun> {
  const checkout = tempDir(`pipeline-${kind.replace(/\W+/g, '-')}`);
  const pluginDir = copyPlugin(path.join(checkout, 'plugin'), TEMPLATE_DIR);
  const inputs: Record<string, string> = { 'plugin-dir': pluginDir, ...lane.inputs };
  const steps: Record<string, { outputs: Record<string, string> }> = {};
  const stages: StageTiming[] = [];
  const started = performance.now();
  for (const stage of stageList) {
    const [name, mode] = stage.split(':');
    const r = await runStage(name, mode ? { ...inputs, 'deploy-mode': mode } : inputs, steps, lane.env, { cwd: checkout, bundle: lane.bundle });
    steps[name] = { outputs: r.outputs };
    const t = { ...timing(name, r), stage };
    stages.push(t);
    log(`pipeline (${kind}, ${lane.label}): ${stage} ${r.ok ? 'ok' : 'FAILED'} in ${ms(r.ms)}`);
    if (!r.ok) {
      log(r.lines.slice(-15).map((l) => `  ${l.line}`).join('\n'));
      break;
    }
  }
  fs.rmSync(checkout, { recursive: true, force: true });
  return { kind, bundle: lane.label, totalMs: performance.now() - started, stages };
}

/**
 * Times the pipeline cold, then warm. With a baseline bundle (dist/ of an
 * earlier commit), both are timed in the same run, interleaved: cold current,
 * cold baseline, warm current, warm baseline.
 */
export async function benchPipeline(o: {
  stages?: string[];
  extraInputs?: Record<string, string>;
  bundle?: string;
  baseline?: { label: string; bundle: string };
  warmRuns?: number;
  /** Also run on a tool cache holding only what the action's cache restores. */
  restored?: boolean;
}): Promise<PipelineBench> {
  const bundle = o.bundle ?? BUNDLE;
  ensureRegistryTools();
  const stages = o.stages ?? PIPELINE_STAGES;
  const extraInputs = { ...(o.extraInputs ?? {}) };
  let kube: Kube | undefined;
  if (stages.some((s) => s.startsWith('deploy')) && !extraInputs.kubeconfig) {
    log('starting the local API server (test/infra/kube.ts)');
    kube = await startKube();
    extraInputs.kubeconfig = kube.kubeconfig('deployer');
  }
  let registry: TestRegistry;
  try {
    registry = await startRegistry('http');
  } catch (err) {
    await kube?.stop();
    throw err;
  }
  const caches = tempDir('pipeline-caches');
  const lane = (label: string, laneBundle: string, i: number): Lane => {
    const dir = path.join(caches, `lane-${i}`);
    return {
      label,
      bundle: laneBundle,
      env: {
        ...process.env,
        RUNNER_TOOL_CACHE: path.join(dir, 'tool-cache'),
        RUNNER_TEMP: path.join(dir, 'runner-temp'),
        // A hosted runner starts with no npm or pip cache either.
        npm_config_cache: path.join(dir, 'npm-cache'),
        PIP_CACHE_DIR: path.join(dir, 'pip-cache'),
      },
      inputs: { image: `${registry.host}/bench-${i}/header-authorization`, tags: 'bench', name: `header-authorization-bench-${i}`, ...extraInputs },
    };
  };
  const lanes = [lane('current', bundle, 0), ...(o.baseline ? [lane(o.baseline.label, o.baseline.bundle, 1)] : [])];
  try {
    const runs: PipelineRun[] = [];
    for (const l of lanes) runs.push(await runPipeline('cold', l, stages));
    for (let i = 0; i < (o.warmRuns ?? 1); i++) for (const l of lanes) runs.push(await runPipeline('warm', l, stages));
    if (o.restored) {
      // Seeded from the current lane's tool cache, which the cold run filled,
      // into the same path: that folder waits aside, and is put back after.
      const donor = lanes[0].env.RUNNER_TOOL_CACHE!;
      const filled = `${donor}.filled`;
      fs.renameSync(donor, filled);
      // What the action saves of the build store: each first key's folder (not the preload beside them).
      const builds = path.join(filled, 'asm-wasm-builds');
      const stores = fs.existsSync(builds) ? fs.readdirSync(builds).filter((f) => fs.statSync(path.join(builds, f)).isDirectory()).map((f) => path.join('asm-wasm-builds', f)) : [];
      const seeds: Array<[PipelineKind, string[]]> = [
        ['restored: toolchain', ['asm-wasm-assemblyscript']],
        ['restored: toolchain + Envoy', ['asm-wasm-assemblyscript', 'envoy']],
        ['restored: toolchain + Envoy + build store', ['asm-wasm-assemblyscript', 'envoy', ...stores]],
      ];
      try {
        for (const [kind, tools] of seeds) {
          const l = lane('current', bundle, runs.length + 10);
          l.env.RUNNER_TOOL_CACHE = donor;
          fs.rmSync(donor, { recursive: true, force: true });
          for (const t of tools) {
            fs.mkdirSync(path.dirname(path.join(donor, t)), { recursive: true });
            // cp -a: the toolchain's links and every file's time stay as they are, as the cache's tar keeps them.
            execFileSync('cp', ['-a', path.join(filled, t), path.join(donor, t)]);
          }
          runs.push(await runPipeline(kind, l, stages));
        }
      } finally {
        fs.rmSync(donor, { recursive: true, force: true });
        fs.renameSync(filled, donor);
      }
    }

    // The floor: what a warm run cannot avoid with this design.
    const loads: number[] = [];
    for (let i = 0; i < 3; i++) loads.push((await runAsync(process.execPath, [bundle, '--help'])).ms);
    const nodes: number[] = [];
    for (let i = 0; i < 3; i++) nodes.push((await runAsync(process.execPath, ['-e', '0'])).ms);
    const floor: PipelineBench['floor'] = { bundleLoadMs: median(loads), nodeMs: median(nodes) };
    // A deploy stage's first line comes after it has loaded the Kubernetes client.
    const deployStarts = runs.filter((r) => r.kind === 'warm' && r.bundle === 'current').flatMap((r) => r.stages.filter((s) => s.stage.startsWith('deploy')).map((s) => s.startupMs));
    if (deployStarts.length > 0) floor.deployStartMs = median(deployStarts);
    const asc = path.join(lanes[0].env.RUNNER_TOOL_CACHE!, 'asm-wasm-assemblyscript');
    // asc alone, as the template's release build runs it, with the compiler version it pins.
    const template = JSON.parse(fs.readFileSync(path.join(TEMPLATE_DIR, 'package.json'), 'utf8')) as { scripts?: Record<string, string>; devDependencies?: Record<string, string> };
    const pinned = template.devDependencies?.assemblyscript ?? '';
    const ascDir = fs.existsSync(asc)
      ? fs.readdirSync(asc).filter((v) => v.startsWith(`${pinned}-`)).map((v) => path.join(asc, v, 'x64', 'node_modules')).find((d) => fs.existsSync(path.join(d, '.bin', 'asc')))
      : undefined;
    if (ascDir) {
      const scratch = copyPlugin(path.join(tempDir('pipeline-asc'), 'plugin'), TEMPLATE_DIR);
      fs.symlinkSync(ascDir, path.join(scratch, 'node_modules'), 'dir');
      const script = template.scripts?.['asbuild:release'] ?? template.scripts?.asbuild ?? '';
      const args = script.replace(/^asc\s+/, '').split(/\s+/).filter(Boolean);
      const times: number[] = [];
      for (let i = 0; i < 2; i++) times.push((await runAsync(path.join(ascDir, '.bin', 'asc'), args, { cwd: scratch })).ms);
      floor.ascMs = Math.min(...times);
      fs.rmSync(path.dirname(scratch), { recursive: true, force: true });
    }
    return { bundle: path.relative(ROOT, bundle) || bundle, baseline: o.baseline?.label, runs, floor };
  } finally {
    await registry.close();
    await kube?.stop();
    fs.rmSync(caches, { recursive: true, force: true });
  }
}

export function pipelineTable(b: PipelineBench): string {
  const column = (r: PipelineRun) => (r.bundle === 'current' ? r.kind : `${r.kind} (${r.bundle})`);
  const runs = [...b.runs].sort((x, y) => Number(x.bundle !== 'current') - Number(y.bundle !== 'current'));
  const rows: Array<Array<string | number>> = [['stage', ...runs.map(column), 'where the warm time goes']];
  const stageNames = b.runs[0].stages.map((s) => s.stage);
  const warm = b.runs.find((r) => r.kind === 'warm' && r.bundle === 'current') ?? b.runs[0];
  for (const name of stageNames) {
    const w = warm.stages.find((s) => s.stage === name);
    const parts = w
      ? [`${w.stage.startsWith('deploy') ? 'node + bundle + Kubernetes client' : 'node + bundle'} ${ms(w.startupMs)}`, ...Object.entries(w.phases).map(([k, v]) => `${k} ${ms(v)}`), ...(w.exitMs > 100 ? [`exit ${ms(w.exitMs)}`] : [])]
      : [];
    rows.push([name, ...runs.map((r) => {
      const s = r.stages.find((x) => x.stage === name);
      return s ? `${ms(s.ms)}${s.ok ? '' : ' (failed)'}` : '';
    }), parts.join(', ')]);
  }
  rows.push(['**total**', ...runs.map((r) => `**${ms(r.totalMs)}**`), '']);
  return table(rows);
}

export function coldDetails(b: PipelineBench): string {
  const cold = b.runs.find((r) => r.kind === 'cold' && r.bundle === 'current');
  if (!cold) return '';
  return cold.stages
    .map((s) => `${s.stage}: ${[`node + bundle ${ms(s.startupMs)}`, ...Object.entries(s.phases).map(([k, v]) => `${k} ${ms(v)}`), `exit ${ms(s.exitMs)}`].join(', ')}`)
    .join('; ');
}
