// How the pipeline's cost grows: the test stage with 5 and with 100 cases,
// and with a small module (the template, about 40 KB) against a large one
// (the guide's Rust plugin as Debian's toolchain builds it, about 6 MB, most
// of it debug sections); and the build stage's checks of each module. Each
// stage is a fresh `node <bundle> <stage>`, as the action runs it, and the
// variants are run in turn, several times, so noise hits them alike.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { checkRootId } from '../../src/build/rootid.js';
import { validateModule } from '../../src/build/validate.js';
import { copyPlugin, TEMPLATE_DIR } from '../../test/helpers/cli.js';
import { timing, type StageTiming } from './pipeline.js';
import { BUNDLE, log, median, ms, runStage, table, tempDir } from './util.js';

export interface GrowthRow {
  label: string;
  cases: number;
  wasmBytes: number;
  /** Median over runs of the whole test stage. */
  stageMs: number;
  envoyStartMs: number;
  casesMs: number;
  runs: StageTiming[];
}

export interface GrowthBench {
  rows: GrowthRow[];
  /** The build stage's checks (validate + root id) per module, in this process. */
  checks: Array<{ label: string; wasmBytes: number; ms: number }>;
}

function casesFile(dir: string, name: string, cases: unknown[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, stringify({ cases }));
  return file;
}

export async function benchGrowth(o: { bundle?: string; rustWasm?: string; runs?: number; env?: NodeJS.ProcessEnv }): Promise<GrowthBench> {
  const bundle = o.bundle ?? BUNDLE;
  const work = tempDir('growth');
  try {
    const plugin = copyPlugin(path.join(work, 'plugin'), TEMPLATE_DIR);
    const inputs = { 'plugin-dir': plugin };
    const tool = await runStage('toolchain', inputs, {}, o.env, { bundle });
    if (!tool.ok) throw new Error(`toolchain: ${tool.error}`);
    const build = await runStage('build', inputs, { toolchain: { outputs: tool.outputs } }, o.env, { bundle });
    if (!build.ok) throw new Error(`build: ${build.error}`);
    const wasm = build.outputs['wasm-path'];
    const base = (parse(fs.readFileSync(path.join(plugin, 'tests.yaml'), 'utf8')) as { cases: Array<{ name: string }> }).cases;
    const many = Array.from({ length: 100 }, (_, i) => ({ ...base[i % base.length], name: `${base[i % base.length].name} (${i + 1})` }));
    const variants: Array<{ label: string; cases: number; wasm: string; tests: string }> = [
      { label: 'template, 5 cases', cases: base.length, wasm, tests: casesFile(work, 'five.yaml', base) },
      { label: 'template, 100 cases', cases: many.length, wasm, tests: casesFile(work, 'hundred.yaml', many) },
    ];
    if (o.rustWasm) {
      // Two cases every module here answers alike, so only the module differs.
      const two = (body: string) => [
        { name: 'allowed', request: { path: '/status/200', headers: { allow: 'true' } }, expect: { status: 200, upstream: true } },
        { name: 'denied', request: { path: '/status/200' }, expect: { status: 403, body, upstream: false } },
      ];
      variants.push(
        { label: 'template module, 2 cases', cases: 2, wasm, tests: casesFile(work, 'two-as.yaml', two('Forbidden by ASM Wasm Plugin, assemblyscript version\n')) },
        { label: 'large module (Rust plugin), 2 cases', cases: 2, wasm: o.rustWasm, tests: casesFile(work, 'two-rust.yaml', two('Forbidden by ASM Wasm Plugin, rust version\n')) },
      );
    }
    const runs = new Map<string, StageTiming[]>(variants.map((v) => [v.label, []]));
    for (let i = 0; i < (o.runs ?? 3); i++) {
      for (const v of variants) {
        const r = await runStage('test', { ...inputs, tests: v.tests, 'wasm-path': v.wasm }, {}, o.env, { bundle });
        if (!r.ok) throw new Error(`test stage (${v.label}) failed: ${r.error}`);
        runs.get(v.label)!.push(timing('test', r));
      }
      log(`growth: run ${i + 1}/${o.runs ?? 3} done`);
    }
    const rows = variants.map((v) => {
      const t = runs.get(v.label)!;
      return {
        label: v.label,
        cases: v.cases,
        wasmBytes: fs.statSync(v.wasm).size,
        stageMs: median(t.map((x) => x.ms)),
        envoyStartMs: median(t.map((x) => x.phases['Envoy start-up'] ?? NaN)),
        casesMs: median(t.map((x) => x.phases.cases ?? NaN)),
        runs: t,
      };
    });
    const checks: GrowthBench['checks'] = [];
    for (const v of variants.filter((x, i, all) => all.findIndex((y) => y.wasm === x.wasm) === i)) {
      const bytes = fs.readFileSync(v.wasm);
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        await validateModule(bytes);
        await checkRootId(bytes, 'header-authorization');
        times.push(performance.now() - t0);
      }
      checks.push({ label: v.wasm === wasm ? 'template' : 'Rust plugin', wasmBytes: bytes.length, ms: median(times) });
    }
    return { rows, checks };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export function growthTable(g: GrowthBench): string {
  const rows: Array<Array<string | number>> = [['test stage', 'cases', 'module', 'whole stage', 'Envoy start-up', 'cases', 'per case']];
  for (const r of g.rows) {
    rows.push([r.label, r.cases, `${(r.wasmBytes / 1024).toFixed(0)} KiB`, ms(r.stageMs), ms(r.envoyStartMs), ms(r.casesMs), `${(r.casesMs / r.cases).toFixed(1)} ms`]);
  }
  const checks = g.checks.map((c) => `${c.label} (${(c.wasmBytes / 1024).toFixed(0)} KiB) ${ms(c.ms)}`).join(', ');
  return `${table(rows)}\n\nThe build stage's checks of the module (parse, imports, exports, root id): ${checks}.`;
}
