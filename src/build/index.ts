// Stage 2, build: compile the plugin, then prove the module is one Envoy
// will load and that it registers the root id we deploy with.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import { UserError } from '../errors.js';
import { run } from '../exec.js';
import { annotate } from '../github.js';
import { checkRootId } from './rootid.js';
import { validateModule, type ModuleInfo } from './validate.js';

export interface BuildOptions {
  pluginDir: string;
  /** Entry file for asc when the plugin has no `asbuild` script. */
  entry: string;
  /** The root id the pipeline deploys with (spec.pluginName). */
  pluginName: string;
  /** node_modules from the toolchain stage. */
  nodeModules: string;
}

export interface BuildResult {
  wasmPath: string;
  sha256: string;
  size: number;
  module: ModuleInfo;
  rootId: string;
  /** How it was compiled, for the log and summary. */
  command: string;
}

/** Default output when we run asc ourselves. */
export const DEFAULT_OUTPUT = 'build/plugin.wasm';

/**
 * asc arguments for an optimized plugin build. `--use abort=abort_proc_exit`
 * routes AssemblyScript's abort to the SDK's handler: without it the module
 * imports env.abort, which Envoy does not provide.
 */
export function buildAscArgs(entry: string, output: string): string[] {
  return [entry, '--binaryFile', output, '--use', 'abort=abort_proc_exit', '--optimize', '--runtime', 'full', '--noAssert'];
}

/** The output file an asbuild script writes (its -b / --binaryFile / -o argument). */
export function outputOfScript(script: string): string | undefined {
  const m = /(?:^|\s)(?:-b|--binaryFile|-o|--outFile)(?:\s+|=)(\S+\.wasm)/.exec(script);
  return m?.[1];
}

export interface Diagnostic {
  level: 'error' | 'warning';
  code: string;
  message: string;
  file?: string;
  line?: number;
  column?: number;
}

/**
 * Parses the compiler's diagnostics. AssemblyScript prints
 *   ERROR TS2304: Cannot find name 'x'.
 *   <source excerpt>
 *    in assembly/index.ts(12,5)
 */
export function parseDiagnostics(output: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  let current: Diagnostic | undefined;
  for (const raw of output.split('\n')) {
    // asc colours its diagnostics; the escape sequences are dropped before parsing.
    // eslint-disable-next-line no-control-regex
    const line = raw.replace(/\x1b\[[0-9;]*m/g, '');
    const head = /^(ERROR|WARNING)\s+(\w+):\s*(.*)$/.exec(line.trim());
    if (head) {
      current = { level: head[1] === 'ERROR' ? 'error' : 'warning', code: head[2], message: head[3] };
      out.push(current);
      continue;
    }
    const where = /^\s*in\s+(.+?)\((\d+),(\d+)\)\s*$/.exec(line);
    if (where && current && current.file === undefined) {
      current.file = where[1];
      current.line = Number(where[2]);
      current.column = Number(where[3]);
    }
  }
  return out;
}

function sha256(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

export async function buildPlugin(options: BuildOptions): Promise<BuildResult> {
  const { pluginDir } = options;
  const pkg = JSON.parse(fs.readFileSync(path.join(pluginDir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const script = pkg.scripts?.asbuild;
  let output: string;
  let command: string;
  let result;
  const env = { PATH: `${path.join(options.nodeModules, '.bin')}${path.delimiter}${process.env.PATH ?? ''}` };
  if (script) {
    const out = outputOfScript(script);
    if (!out) {
      throw new UserError(`the plugin's asbuild script does not name its output; add \`-b build/plugin.wasm\` to it (${script})`);
    }
    output = path.resolve(pluginDir, out);
    command = 'npm run asbuild';
    fs.rmSync(output, { force: true });
    result = await run('npm', ['run', '--silent', 'asbuild'], { cwd: pluginDir, env, allowFailure: true });
  } else {
    const entry = path.resolve(pluginDir, options.entry);
    if (!fs.existsSync(entry)) {
      throw new UserError(
        `input \`entry\`: ${entry} does not exist; set entry to the plugin's main AssemblyScript file, or add an asbuild script to package.json`,
      );
    }
    output = resolveIn(pluginDir, DEFAULT_OUTPUT);
    fs.mkdirSync(path.dirname(output), { recursive: true });
    fs.rmSync(output, { force: true });
    const args = buildAscArgs(path.relative(pluginDir, entry), path.relative(pluginDir, output));
    command = `asc ${args.join(' ')}`;
    result = await run(path.join(options.nodeModules, '.bin', 'asc'), args, { cwd: pluginDir, env, allowFailure: true });
  }

  const diagnostics = parseDiagnostics(`${result.stdout}\n${result.stderr}`);
  for (const d of diagnostics) {
    // Diagnostics inside the compiler's standard library (~lib/) have no file to point at.
    if (!d.file || d.file.startsWith('~lib/')) continue;
    const file = path.relative(process.cwd(), path.resolve(pluginDir, d.file));
    annotate(d.level, `${d.code}: ${d.message}`, { file, line: d.line, column: d.column });
  }
  if (result.exitCode !== 0 || !fs.existsSync(output)) {
    const errors = diagnostics.filter((d) => d.level === 'error');
    const first = errors[0];
    const where = first?.file ? ` at ${path.join(path.relative(process.cwd(), pluginDir), first.file)}:${first.line}:${first.column}` : '';
    throw new UserError(
      `the plugin did not compile${errors.length ? `: ${errors.length} error(s), first${where}: ${first.code} ${first.message}` : ` (\`${command}\` exited with ${result.exitCode})`}`,
      `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-40).join('\n'),
    );
  }

  const bytes = fs.readFileSync(output);
  const validation = await validateModule(bytes);
  if (!validation.ok) {
    throw new UserError(`${path.relative(process.cwd(), output)} is not a proxy-wasm plugin Envoy can load:\n- ${validation.problems.join('\n- ')}`);
  }
  const rootCheck = await checkRootId(bytes, options.pluginName);
  if (!rootCheck.ok) throw new UserError(rootCheck.message);
  core.info(rootCheck.message);

  return {
    wasmPath: output,
    sha256: sha256(bytes),
    size: bytes.length,
    module: validation.info!,
    rootId: options.pluginName,
    command,
  };
}

/**
 * path.resolve, hidden from the bundler: ncc rewrites path.resolve calls whose
 * arguments it can partly read into paths inside dist/.
 */
function resolveIn(dir: string, file: string): string {
  return path.resolve(...[dir, file]);
}
