// `npm run bench`: what the plugin costs each request, whether its memory
// holds steady under load, and how long the pipeline takes. A script, not a
// timed test: it measures side by side in one run, prints markdown tables and
// writes the figures as JSON (and the tables as markdown next to it).
//
//   npm run bench                                  everything (about 6 minutes)
//   npm run bench -- --only requests,soak          skip the pipeline timings
//   npm run bench -- --baseline-ref HEAD           also measure plugin/ as committed, side by side
//   npm run bench -- --plugin gcore=bench/candidates/gcore   also measure another plugin project or .wasm
//   npm run bench -- --plugin my=x.wasm --root-id my_root --config '{}' --deny-status 401 --deny-body 'no'
//                                                  any module, with its own root id, configuration and deny response
//   npm run bench -- --quick                       a short smoke run
//   npm run bench -- --only growth --bundle tree --out bench/growth.json
//                                                  how the test and push stages grow (cases, Envoy versions, module size)
//
// It installs what it lacks: wrk (apt-get), Envoy (the action's installer),
// the AssemblyScript toolchain (the action's toolchain stage), Debian's Rust
// toolchain for the Rust lane (apt-get; bench/rust-plugin/ is the guide's
// plugin) and, for the pipeline timings, the local registry
// (test/infra/install-registry.sh).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { installEnvoy } from '../src/envoy/install.js';
import { DEFAULT_ENVOY_DOWNLOAD_URL, DEFAULT_ENVOY_VERSION } from '../src/inputs.js';
import { benchGrowth, CASE_COUNTS, ENVOY_MATRIX, GROWTH_PARTS, growthTable, MODULE_MIB, type GrowthBench, type GrowthPart } from './bench/growth.js';
import { benchPipeline, coldDetails, pipelineTable, PIPELINE_STAGES, type PipelineBench } from './bench/pipeline.js';
import { benchRequests, DENY_BODY, requestTable, variants, type ExtraPlugin, type RequestBench } from './bench/requests.js';
import { buildRustPlugin, RUST_DENY_BODY, RUST_PLUGIN_DIR } from './bench/rust.js';
import { benchSoak, soakTable, type SoakResult } from './bench/soak.js';
import { copyPlugin, LEGACY_PLUGIN_DIR, TEMPLATE_DIR } from '../test/helpers/cli.js';
import { ROOT, buildPluginDir, bundleAtRef, bundleWorkingTree, ensureWrk, log, ms, pluginAtRef, tempDir } from './bench/util.js';

const SECTIONS = ['requests', 'soak', 'pipeline', 'growth'] as const;
type Section = (typeof SECTIONS)[number];

interface Options {
  only: Set<Section>;
  out: string;
  seconds: number;
  rounds: number;
  connections: number;
  soakRequests: number;
  burstSeconds: number;
  baselineRef?: string;
  baselineWasm?: string;
  /** Extra plugins (--plugin): a plugin directory to build, or a .wasm, with what it needs to run and what it denies with. */
  plugins: PluginOption[];
  oldTemplate: boolean;
  rust: boolean;
  pipelineStages: string[];
  inputs: Record<string, string>;
  bundle?: string;
  warmRuns: number;
  envoyVersions: string[];
  caseCounts: number[];
  moduleMiB: number[];
  growthParts: GrowthPart[];
  restored: boolean;
}

interface PluginOption {
  tag: string;
  path: string;
  rootId?: string;
  /** Plugin configuration text; null: none. */
  configuration?: string | null;
  denyStatus?: number;
  denyBody?: string;
  denyContentType?: string;
  allow?: { name: string; value: string };
}

const HELP = `Usage: npm run bench -- [options]

  --only list             sections to run, of: ${SECTIONS.join(', ')} (default: all)
  --out file              JSON results (default: bench/results.json; the tables go to the same name with .md)
  --seconds n             seconds per load round (default: 5)
  --rounds n              load rounds per variant, interleaved (default: 5)
  --connections n         wrk connections (default: 16)
  --soak-requests n       requests through each build in the soak (default: 300000)
  --baseline-ref ref      also measure plugin/ and dist/ as they are at this git ref, side by side (e.g. HEAD)
  --baseline-wasm file    the same with a prebuilt plugin.wasm
  --plugin [name=]path    also measure this plugin (a plugin directory, built with the action's stages,
                          a .wasm, or a .wat), side by side, with the reference and heavy configs (repeatable);
                          the options below apply to the --plugin before them:
    --root-id id            the root id Envoy loads it with (default: plugin/'s spec.pluginName)
    --config json|@file|none  its plugin configuration (default: plugin/'s pluginConfig)
                            (with --root-id or --config, only that configuration is measured)
    --deny-status n         the status it denies with (default: 403)
    --deny-body text|@file  the exact body it denies with (default: plugin/'s; "any": not checked)
    --deny-content-type t   the content-type it denies with (default: text/plain; "any": not checked)
    --allow name=value      the header an allowed request carries (default: allow=true)
  --no-old-template       do not measure the 0.14 + proxy-runtime template (test/fixtures/projects/as014-solo)
  --no-rust               do not measure the guide's Rust plugin (bench/rust-plugin, built with Debian's rustc)
  --pipeline-stages list  stages to time (default: ${PIPELINE_STAGES.join(',')})
  --input name=value      an extra action input for every timed stage (repeatable), e.g. kubeconfig=...
  --bundle file|tree      the action bundle to time (default: dist/index.js; tree: the working tree's src/,
                          bundled with esbuild outside dist/)
  --envoy-versions list   growth: the Envoy matrix (default: ${ENVOY_MATRIX.join(',')})
  --growth-cases list     growth: test files of this many cases (default: ${CASE_COUNTS.join(',')})
  --growth-modules list   growth: module sizes in MiB (default: ${MODULE_MIB.join(',')})
  --growth-parts list     growth: what to measure, of: ${GROWTH_PARTS.join(', ')} (default: all)
  --warm-runs n           warm pipeline runs after the cold one (default: 1)
  --restored              pipeline: also run on a fresh tool cache holding only what the action's cache restores
                          (the toolchain; then the toolchain and Envoy)
  --quick                 short rounds and soak, for a smoke run
`;

function parseOptions(argv: string[]): Options {
  const o: Options = {
    only: new Set(SECTIONS),
    out: path.join(ROOT, 'bench', 'results.json'),
    seconds: 5,
    rounds: 5,
    connections: 16,
    soakRequests: 300_000,
    burstSeconds: 3,
    pipelineStages: PIPELINE_STAGES,
    inputs: {},
    warmRuns: 1,
    envoyVersions: ENVOY_MATRIX,
    caseCounts: CASE_COUNTS,
    moduleMiB: MODULE_MIB,
    growthParts: [...GROWTH_PARTS],
    restored: false,
    plugins: [],
    oldTemplate: true,
    rust: true,
  };
  const num = (flag: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} needs a positive number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        return process.exit(0);
      case '--only': {
        const wanted = value().split(',').map((s) => s.trim()) as Section[];
        for (const s of wanted) if (!SECTIONS.includes(s)) throw new Error(`--only: unknown section ${s}; sections are ${SECTIONS.join(', ')}`);
        o.only = new Set(wanted);
        break;
      }
      case '--out': o.out = path.resolve(value()); break;
      case '--seconds': o.seconds = num(flag, value()); break;
      case '--rounds': o.rounds = num(flag, value()); break;
      case '--connections': o.connections = num(flag, value()); break;
      case '--soak-requests': o.soakRequests = num(flag, value()); break;
      case '--baseline-ref': o.baselineRef = value(); break;
      case '--baseline-wasm': o.baselineWasm = path.resolve(value()); break;
      case '--plugin': {
        const v = value();
        const eq = v.indexOf('=');
        const file = path.resolve(eq > 0 ? v.slice(eq + 1) : v);
        const tag = eq > 0 ? v.slice(0, eq) : path.basename(file).replace(/\.wasm$/, '');
        if (!/^[a-z0-9._-]+$/i.test(tag)) throw new Error(`--plugin: the name ${JSON.stringify(tag)} may only hold letters, digits, '.', '_' and '-'`);
        if (!fs.existsSync(file)) throw new Error(`--plugin: ${file} does not exist`);
        if (tag === 'as014' || o.plugins.some((p) => p.tag === tag)) throw new Error(`--plugin: the name ${tag} is taken; give another with name=path`);
        if (tag === 'rust') throw new Error('--plugin: the name rust is the Rust lane; give another with name=path');
        o.plugins.push({ tag, path: file });
        break;
      }
      case '--root-id': lastPlugin(o, flag).rootId = value(); break;
      case '--config': {
        const v = value();
        lastPlugin(o, flag).configuration = v === 'none' ? null : v.startsWith('@') ? fs.readFileSync(v.slice(1), 'utf8') : v;
        break;
      }
      case '--deny-status': {
        const n = num(flag, value());
        if (!Number.isInteger(n) || n < 200 || n > 599) throw new Error('--deny-status needs an HTTP status from 200 to 599');
        lastPlugin(o, flag).denyStatus = n;
        break;
      }
      case '--deny-body': {
        const v = value();
        lastPlugin(o, flag).denyBody = v.startsWith('@') ? fs.readFileSync(v.slice(1), 'utf8') : v;
        break;
      }
      case '--deny-content-type': lastPlugin(o, flag).denyContentType = value(); break;
      case '--allow': {
        const v = value();
        const eq = v.indexOf('=');
        if (eq <= 0) throw new Error('--allow needs name=value');
        lastPlugin(o, flag).allow = { name: v.slice(0, eq).toLowerCase(), value: v.slice(eq + 1) };
        break;
      }
      case '--no-old-template': o.oldTemplate = false; break;
      case '--no-rust': o.rust = false; break;
      case '--pipeline-stages': o.pipelineStages = value().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--input': {
        const v = value();
        const eq = v.indexOf('=');
        if (eq <= 0) throw new Error('--input needs name=value');
        o.inputs[v.slice(0, eq)] = v.slice(eq + 1);
        break;
      }
      case '--bundle': {
        const v = value();
        o.bundle = v === 'tree' ? 'tree' : path.resolve(v);
        break;
      }
      case '--envoy-versions': {
        o.envoyVersions = value().split(',').map((s) => s.trim()).filter(Boolean);
        for (const v of o.envoyVersions) if (!/^\d+\.\d+\.\d+$/.test(v)) throw new Error(`--envoy-versions: ${v} is not a release version`);
        break;
      }
      case '--growth-cases': o.caseCounts = value().split(',').map((s) => num(flag, s)); break;
      case '--growth-modules': o.moduleMiB = value().split(',').map((s) => num(flag, s)); break;
      case '--growth-parts': {
        o.growthParts = value().split(',').map((s) => s.trim()) as GrowthPart[];
        for (const p of o.growthParts) if (!GROWTH_PARTS.includes(p)) throw new Error(`--growth-parts: unknown part ${p}; parts are ${GROWTH_PARTS.join(', ')}`);
        break;
      }
      case '--warm-runs': o.warmRuns = num(flag, value()); break;
      case '--restored': o.restored = true; break;
      case '--quick':
        o.seconds = 2;
        o.rounds = 2;
        o.soakRequests = 40_000;
        o.burstSeconds = 1;
        break;
      default:
        throw new Error(`unknown option ${flag}\n\n${HELP}`);
    }
  }
  return o;
}

function lastPlugin(o: Options, flag: string): PluginOption {
  const p = o.plugins[o.plugins.length - 1];
  if (!p) throw new Error(`${flag} applies to the --plugin before it; give --plugin first`);
  return p;
}

/** The lane's options as the request bench takes them. */
function extraOf(p: PluginOption, label: string, wasm: string): ExtraPlugin {
  const any = (v: string | undefined) => (v === 'any' ? undefined : v);
  const denyGiven = p.denyStatus !== undefined || p.denyBody !== undefined || p.denyContentType !== undefined;
  return {
    tag: p.tag,
    label,
    wasm,
    rootId: p.rootId,
    configuration: p.configuration,
    allow: p.allow,
    deny: denyGiven
      ? { status: p.denyStatus ?? 403, body: p.denyBody === undefined ? DENY_BODY : any(p.denyBody), contentType: any(p.denyContentType ?? 'text/plain') }
      : undefined,
  };
}

/** Runs fn with stdout sent to stderr: the installers log with @actions/core, and stdout is for the tables. */
async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) =>
    typeof chunk === 'string' && chunk.startsWith('::debug::') ? true : (process.stderr.write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest)) as typeof process.stdout.write;
  try {
    return await fn();
  } finally {
    process.stdout.write = write;
  }
}

function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    kernel: os.release(),
    node: process.version,
    loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  // Where the CLI keeps its tool cache on a laptop, so the bench shares it.
  const cacheHome = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  process.env.RUNNER_TOOL_CACHE ||= path.join(cacheHome, 'asm-wasm-action', 'tool-cache');
  process.env.RUNNER_TEMP ||= path.join(os.tmpdir(), 'asm-wasm-action');
  const started = Date.now();
  const results: {
    date: string;
    machine: ReturnType<typeof machine>;
    envoyVersion?: string;
    requests?: RequestBench;
    soak?: SoakResult[];
    pipeline?: PipelineBench;
    growth?: GrowthBench;
    loadAverageAtEnd?: number[];
    durationMs?: number;
  } = { date: new Date().toISOString(), machine: machine() };
  const md: string[] = [];
  const work = tempDir('run');
  try {
    let bundleLabel = o.bundle ? path.relative(ROOT, o.bundle) : 'dist/';
    if (o.bundle === 'tree') {
      log('bundling the working tree (esbuild, outside dist/)');
      o.bundle = await bundleWorkingTree(path.join(work, 'tree-bundle'));
      bundleLabel = 'working tree';
    }
    let baselineBundle: { label: string; bundle: string } | undefined;
    const baselineOf = async () => (baselineBundle ??= o.baselineRef ? { label: o.baselineRef, bundle: await bundleAtRef(o.baselineRef, path.join(work, 'baseline', 'dist')) } : undefined);
    const wantLoad = o.only.has('requests') || o.only.has('soak');
    if (wantLoad) {
      const wrk = ensureWrk();
      const envoy = await quietly(() => installEnvoy({ version: DEFAULT_ENVOY_VERSION, downloadUrl: DEFAULT_ENVOY_DOWNLOAD_URL }));
      results.envoyVersion = envoy.version;
      log(`Envoy ${envoy.version} (${envoy.source}), wrk at ${wrk}`);

      log('building plugin/ from the working tree');
      const pluginDir = copyPlugin(path.join(work, 'plugin'), TEMPLATE_DIR);
      const wasm = await buildPluginDir(pluginDir);
      // Everything else measured beside plugin/, in the same run.
      const extra: ExtraPlugin[] = [];
      if (o.oldTemplate) {
        log('building the 0.14 + proxy-runtime template (test/fixtures/projects/as014-solo)');
        extra.push({ tag: 'as014', label: 'old template (AS 0.14 + proxy-runtime 0.1.8)', wasm: await buildPluginDir(copyPlugin(path.join(work, 'as014', 'plugin'), LEGACY_PLUGIN_DIR)) });
      }
      if (o.rust) {
        log('building the guide\'s Rust plugin (bench/rust-plugin) with Debian\'s rustc and cargo');
        const rust = await buildRustPlugin(RUST_PLUGIN_DIR, path.join(work, 'rust'));
        log(`${rust.rustc}: built in ${ms(rust.ms)}`);
        extra.push({
          tag: 'rust',
          label: `Rust plugin from the guide (proxy-wasm 0.2.2, ${rust.rustc})`,
          wasm: rust.wasm,
          // It registers its root context for any root id and reads no configuration.
          configuration: null,
          deny: { status: 403, body: RUST_DENY_BODY, contentType: 'text/plain' },
          heavy: false,
          reference: true,
        });
      }
      for (const p of o.plugins) {
        if (fs.statSync(p.path).isDirectory()) {
          log(`building ${path.relative(process.cwd(), p.path) || p.path}`);
          extra.push(extraOf(p, p.tag, await buildPluginDir(copyPlugin(path.join(work, 'extra', p.tag, 'plugin'), p.path))));
        } else if (p.path.endsWith('.wat')) {
          // WebAssembly text (bench/floor/floor.wat): compiled with the Binaryen of plugin/'s toolchain.
          const binaryen = (await import(pathToFileURL(path.join(pluginDir, 'node_modules', 'binaryen', 'index.js')).href)).default as {
            parseText(text: string): { validate(): number; emitBinary(): Uint8Array };
          };
          const module = binaryen.parseText(fs.readFileSync(p.path, 'utf8'));
          if (!module.validate()) throw new Error(`--plugin: ${p.path} is not a valid module`);
          const out = path.join(work, 'extra', `${p.tag}.wasm`);
          fs.mkdirSync(path.dirname(out), { recursive: true });
          fs.writeFileSync(out, module.emitBinary());
          extra.push(extraOf(p, p.tag, out));
        } else {
          extra.push(extraOf(p, p.tag, p.path));
        }
      }
      if (o.baselineWasm) extra.push({ tag: 'before', label: `plugin (${path.basename(o.baselineWasm)})`, wasm: o.baselineWasm });
      else if (o.baselineRef) {
        log(`building plugin/ at ${o.baselineRef}`);
        extra.push({ tag: o.baselineRef, label: `plugin (${o.baselineRef})`, wasm: await buildPluginDir(await pluginAtRef(o.baselineRef, path.join(work, 'baseline', 'plugin'))) });
      }
      const all = variants({ pluginDir, wasm, extra });

      if (o.only.has('requests')) {
        const total = all.length * (o.rounds * o.seconds + 2);
        log(`requests: ${all.length} variants × ${o.rounds} rounds × ${o.seconds} s, ${o.connections} connections (about ${ms(total * 1000)})`);
        results.requests = await benchRequests({ envoyBinary: envoy.path, wrk, workDir: path.join(work, 'requests'), variants: all, seconds: o.seconds, rounds: o.rounds, connections: o.connections });
        md.push(
          `### Request cost (Envoy ${envoy.version}, ${o.connections} connections, ${o.rounds} interleaved rounds of ${o.seconds} s, half the requests denied)`,
          '',
          requestTable(results.requests),
          '',
        );
      }
      if (o.only.has('soak')) {
        const soakVariants = all.filter((v) => v.id === 'plugin' || v.id.startsWith('plugin@'));
        log(`soak: ${o.soakRequests.toLocaleString('en-US')} requests through ${soakVariants.length} build(s)`);
        results.soak = await benchSoak({ envoyBinary: envoy.path, wrk, workDir: path.join(work, 'soak'), variants: soakVariants, requests: o.soakRequests, burstSeconds: o.burstSeconds, connections: o.connections });
        md.push(`### Memory under sustained load (${o.soakRequests.toLocaleString('en-US')} requests per build, reference config)`, '', soakTable(results.soak), '');
      }
    }
    if (o.only.has('pipeline')) {
      const baseline = await baselineOf();
      log(`pipeline: ${o.pipelineStages.join(', ')}, cold then warm${baseline ? `, beside dist/ at ${baseline.label}` : ''}`);
      results.pipeline = await quietly(() => benchPipeline({ stages: o.pipelineStages, extraInputs: o.inputs, bundle: o.bundle, baseline, warmRuns: o.warmRuns, restored: o.restored }));
      const f = results.pipeline.floor;
      md.push(
        '### Pipeline time (bundled plugin, local registry; each stage a fresh `node <bundle> <stage>` as in the action)',
        '',
        pipelineTable(results.pipeline),
        '',
        `Cold run: ${coldDetails(results.pipeline)}.`,
        '',
        `Floor of a warm run: ${results.pipeline.runs[0].stages.length} stages each start Node and load the bundle (${ms(f.bundleLoadMs)}, of which Node itself ${ms(f.nodeMs)})` +
          (f.deployStartMs !== undefined ? `, a deploy stage also the Kubernetes client (${ms(f.deployStartMs)} until its first line)` : '') +
          (f.ascMs !== undefined ? `; the compiler (${ms(f.ascMs)} for asc alone)` : '') +
          '; Envoy start-up and the cases (well under a second).',
        '',
      );
    }
    if (o.only.has('growth')) {
      const runs = o.warmRuns >= 3 ? o.warmRuns : 3;
      log(`growth: the test stage with ${o.caseCounts.join(', ')} cases, Envoy ${o.envoyVersions.join(', ')}, modules of ${o.moduleMiB.join(', ')} MiB; the push stage of each module`);
      const baseline = await baselineOf();
      results.growth = await quietly(() =>
        benchGrowth({ bundle: o.bundle, bundleLabel, baseline, runs, envoyVersions: o.envoyVersions, caseCounts: o.caseCounts, moduleMiB: o.moduleMiB, parts: o.growthParts }),
      );
      md.push(`### How the cost grows (each stage a fresh \`node <bundle> <stage>\`, median of ${runs} runs; peaks are VmHWM)`, '', growthTable(results.growth), '');
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  results.loadAverageAtEnd = os.loadavg().map((l) => Number(l.toFixed(2)));
  results.durationMs = Date.now() - started;
  const m = results.machine;
  md.unshift(
    `Measured ${results.date.slice(0, 10)} on ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}; load average ${m.loadAverageAtStart[0]} at the start, ${results.loadAverageAtEnd[0]} at the end.`,
    '',
  );
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  fs.writeFileSync(o.out, `${JSON.stringify(results, null, 2)}\n`);
  const mdFile = o.out.replace(/\.json$/, '') + '.md';
  fs.writeFileSync(mdFile, `${md.join('\n')}\n`);
  process.stdout.write(`\n${md.join('\n')}\n`);
  log(`wrote ${path.relative(process.cwd(), o.out)} and ${path.relative(process.cwd(), mdFile)} in ${ms(results.durationMs)}`);
}

main().catch((err) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
