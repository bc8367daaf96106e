// Stage 2, build: compile the plugin the way its own configuration says,
// know which .wasm that wrote, then prove the module is one Envoy will load
// and that it registers the root id we deploy with.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { log } from '../log.js';
import { UserError } from '../errors.js';
import { run } from '../exec.js';
import { annotate } from '../github.js';
import { closeCache, openCache, reuse, reuseFromActionsCache, saveToActionsCache, store, type ActionsCacheReuse } from './cache.js';
import { countDiagnostics, formatDiagnostic, inPluginFiles, parseDiagnostics, type Diagnostic } from './diagnostics.js';
import { planBuild, type BuildPlan } from './plan.js';
import { readModuleFile, sha256File } from './module-file.js';
import { checkRootId } from './rootid.js';
import { validateModule, type ModuleInfo } from './validate.js';

export { buildAscArgs, DEFAULT_OUTPUT, outputOfScript, planBuild } from './plan.js';
export { parseDiagnostics, type Diagnostic } from './diagnostics.js';

export interface BuildOptions {
  pluginDir: string;
  /** Entry file for asc when no script or configuration names one. */
  entry: string;
  /** asconfig.json target (default release). */
  target?: string;
  /** The root id the pipeline deploys with (spec.pluginName). */
  pluginName: string;
  /** node_modules from the toolchain stage. */
  nodeModules: string;
  /** The compiler version installed there. */
  compilerVersion: string;
  /** The plugin's direct dependencies (name → version). */
  direct: Record<string, string>;
  /** Environment for the plugin's own scripts and the compiler (no secrets). */
  env?: Record<string, string>;
}

export interface BuildResult {
  wasmPath: string;
  sha256: string;
  size: number;
  module: ModuleInfo;
  rootId: string;
  /** How it was compiled, for the log and summary. */
  command: string;
  compilerVersion: string;
  target: string;
  /** Where the output path was learnt from. */
  outputFrom: string;
  diagnostics: Diagnostic[];
  /** The stored build that was reused instead of compiling (its key), if any. */
  reusedKey?: string;
  /** Where the reused build was: the local store, or the store restored from the Actions cache. */
  reusedFrom?: 'store' | 'actions-cache';
}

/** A failed compile, with the diagnostics for the summary. */
export class CompileError extends UserError {
  constructor(
    readonly diagnostics: Diagnostic[],
    message: string,
    details?: string,
  ) {
    super(message, details);
  }
}

/** Where a separate `build` leaves its record for a later `test` or `push` in another process. */
export const BUILD_RECORD = path.join('.asm-wasm', 'build.json');

export interface BuildRecord {
  wasmPath: string;
  sha256: string;
  size: number;
  compilerVersion: string;
}

function sha256(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

/** .wasm files under the plugin (node_modules excluded), with their modification times. */
function wasmFiles(dir: string, depth = 0, out = new Map<string, number>()): Map<string, number> {
  if (depth > 4) return out;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) wasmFiles(p, depth + 1, out);
    else if (e.isFile() && e.name.endsWith('.wasm')) out.set(p, fs.statSync(p).mtimeMs);
  }
  return out;
}

/** The .wasm the build wrote: the planned one, else the one new file, else an error saying what to set. */
function producedFile(plan: BuildPlan, before: Map<string, number>, pluginDir: string): string {
  if (plan.output && fs.existsSync(plan.output)) return plan.output;
  const after = wasmFiles(pluginDir);
  const fresh = [...after].filter(([f, t]) => before.get(f) !== t).map(([f]) => f);
  const rel = (f: string) => path.relative(pluginDir, f);
  if (fresh.length === 1) return fresh[0];
  if (plan.output) {
    throw new UserError(
      `\`${plan.command}\` succeeded but did not write ${rel(plan.output)} (from ${plan.outputFrom})${fresh.length ? `; it wrote ${fresh.map(rel).join(', ')}` : ''}; make the script and asconfig.json agree on the output file`,
    );
  }
  throw new UserError(
    fresh.length === 0
      ? `\`${plan.command}\` succeeded but wrote no .wasm file under ${pluginDir}; give the compiler an output (-o build/plugin.wasm, or outFile in asconfig.json)`
      : `\`${plan.command}\` wrote several .wasm files (${fresh.map(rel).join(', ')}); add an \`asbuild:release\` script that builds the one to deploy, or name its output with -o`,
  );
}

export async function buildPlugin(options: BuildOptions): Promise<BuildResult> {
  const { pluginDir } = options;
  const pkg = JSON.parse(fs.readFileSync(path.join(pluginDir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const plan = planBuild({
    pluginDir,
    scripts: pkg.scripts ?? {},
    compilerVersion: options.compilerVersion,
    target: options.target,
    entry: options.entry,
    direct: options.direct,
  });
  log.info(`AssemblyScript ${options.compilerVersion}: ${plan.command}${plan.output ? ` → ${path.relative(pluginDir, plan.output)} (from ${plan.outputFrom})` : ''}`);
  if (plan.kind === 'asc' && !plan.config) {
    const entry = path.resolve(pluginDir, plan.args![0]);
    if (!fs.existsSync(entry)) {
      throw new UserError(
        `input \`entry\`: ${entry} does not exist; set entry to the plugin's main AssemblyScript file, or add an asbuild script to package.json`,
      );
    }
  }
  if (plan.output) {
    fs.mkdirSync(path.dirname(plan.output), { recursive: true });
    fs.rmSync(plan.output, { force: true });
  }
  const before = wasmFiles(pluginDir);
  const binDir = path.join(options.nodeModules, '.bin');
  const env: Record<string, string> = { ...options.env, PATH: `${binDir}${path.delimiter}${options.env?.PATH ?? process.env.PATH ?? ''}`, FORCE_COLOR: '0', NO_COLOR: '1' };

  // The module is reused when the compiler's exact inputs are unchanged (cache.ts).
  const session = openCache({ pluginDir, plan, scripts: pkg.scripts ?? {}, compilerVersion: options.compilerVersion, nodeModules: options.nodeModules, entry: options.entry });
  let reusedKey: string | undefined;
  let reusedFrom: BuildResult['reusedFrom'];
  let diagnostics: Diagnostic[];
  let output: string;
  try {
    let result: { exitCode: number; stdout: string; stderr: string };
    let hit = 'reason' in session ? undefined : reuse(session, pluginDir);
    if (hit) reusedFrom = 'store';
    // A miss in the local store: the store saved by an earlier job, from the Actions cache.
    let actions: ActionsCacheReuse = {};
    if (!hit && !('reason' in session)) {
      actions = await reuseFromActionsCache(session, pluginDir);
      hit = actions.reused;
      if (hit) reusedFrom = 'actions-cache';
      else if (actions.restoredKey) log.info(`no build in the store restored from the Actions cache (key ${actions.restoredKey}) has these exact inputs`);
    }
    if (hit) {
      reusedKey = hit.key;
      log.info(`reused the build of ${hit.key}${reusedFrom === 'actions-cache' ? ' from the Actions cache' : ''}: the compiler, its flags and every file it read are unchanged (${hit.outputs.map((f) => path.relative(pluginDir, f)).join(', ')})`);
      result = { exitCode: 0, stdout: hit.stdout, stderr: hit.stderr };
    } else {
      if ('reason' in session) log.info(`compiling without reuse: ${session.reason}`);
      const runEnv = 'reason' in session ? env : { ...env, ...session.env };
      result =
        plan.kind === 'script'
          ? await run('npm', ['run', '--silent', plan.script!], { cwd: pluginDir, env: runEnv, allowFailure: true })
          : await run(path.join(binDir, 'asc'), plan.args!, { cwd: pluginDir, env: runEnv, allowFailure: true });
    }

    diagnostics = parseDiagnostics(`${result.stdout}\n${result.stderr}`);
    const relDir = path.relative(process.cwd(), pluginDir);
    for (const d of inPluginFiles(diagnostics)) {
      const file = path.relative(process.cwd(), path.resolve(pluginDir, d.file!));
      annotate(d.level, `${d.code}: ${d.message}`, { file, line: d.line, column: d.column });
    }
    if (result.exitCode !== 0) {
      const errors = diagnostics.filter((d) => d.level === 'error');
      const shown = inPluginFiles(errors).length > 0 ? inPluginFiles(errors) : errors;
      throw new CompileError(
        diagnostics,
        errors.length
          ? `the plugin did not compile (${countDiagnostics(diagnostics)}); first: ${formatDiagnostic(shown[0], relDir ? `${relDir}/` : '')}`
          : `the plugin did not compile: \`${plan.command}\` exited with ${result.exitCode}`,
        [
          ...shown.slice(0, 20).map((d) => formatDiagnostic(d, relDir ? `${relDir}/` : '')),
          '',
          ...`${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-40),
        ].join('\n').trim(),
      );
    }
    // The one file the build produced: what is checked, recorded and stored for reuse.
    output = producedFile(plan, before, pluginDir);
    if (!hit && !('reason' in session)) {
      const stored = store(session, { pluginDir, wasm: output, stdout: result.stdout, stderr: result.stderr });
      log.info('reason' in stored ? `not stored for reuse: ${stored.reason}` : `stored the build as ${stored.key} for reuse`);
      if (actions.cache && !('reason' in stored)) await saveToActionsCache(actions.cache, session, stored.key);
    }
  } finally {
    if (!('reason' in session)) closeCache(session);
  }
  if (diagnostics.length > 0) log.info(`compiler: ${countDiagnostics(diagnostics)}`);

  const bytes = readModuleFile(output, `the build's output`);
  const size = bytes.length;
  const validation = await validateModule(bytes);
  if (!validation.ok) {
    throw new UserError(`${path.relative(process.cwd(), output)} is not a proxy-wasm plugin Envoy can load:\n- ${validation.problems.join('\n- ')}`);
  }
  const rootCheck = await checkRootId(bytes, options.pluginName);
  if (!rootCheck.ok) throw new UserError(rootCheck.message);
  log.info(rootCheck.message);

  const record: BuildRecord = { wasmPath: output, sha256: sha256(bytes), size, compilerVersion: options.compilerVersion };
  const recordFile = path.join(pluginDir, BUILD_RECORD);
  fs.mkdirSync(path.dirname(recordFile), { recursive: true });
  fs.writeFileSync(recordFile, `${JSON.stringify(record, null, 2)}\n`);

  return {
    ...record,
    module: validation.info!,
    rootId: options.pluginName,
    command: plan.command,
    target: plan.target,
    outputFrom: plan.output === output ? plan.outputFrom : 'the one .wasm file the build wrote',
    diagnostics,
    reusedKey,
    reusedFrom,
  };
}

/**
 * The last build's record, when its file is still the one it built. A stage
 * in another process (`asm-wasm build`, then `asm-wasm test`) finds the
 * module this way.
 */
export async function readBuildRecord(pluginDir: string): Promise<BuildRecord | undefined> {
  const file = path.join(pluginDir, BUILD_RECORD);
  if (!fs.existsSync(file)) return undefined;
  let record: BuildRecord;
  try {
    record = JSON.parse(fs.readFileSync(file, 'utf8')) as BuildRecord;
  } catch {
    return undefined;
  }
  if (typeof record.wasmPath !== 'string' || !fs.existsSync(record.wasmPath)) return undefined;
  const actual = await sha256File(record.wasmPath);
  if (actual !== record.sha256) {
    throw new UserError(`${record.wasmPath} changed since the build stage built it; run the build stage again (asm-wasm build) or set \`wasm-path\``);
  }
  return record;
}
