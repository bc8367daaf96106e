// How a plugin is compiled, decided before anything runs, and which .wasm
// that writes. In order:
//   1. the plugin's `asbuild:<target>` script (asinit writes asbuild:release
//      and asbuild:debug), else its `asbuild` script;
//   2. without a script, asc on the entries with `--target <target>` when the
//      plugin has asconfig.json;
//   3. without either, asc on the entry with the flags its compiler line
//      takes (compat.ts) and the SDK's abort handler.
// The .wasm a script writes is read from its own flags (-o/--outFile, or
// -b/--binaryFile before 0.20, where -b is not yet --bindings), its --target
// or --config, the scripts it runs with `npm run`, or asconfig.json's release
// target, which is asc's default.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.js';
import { abortAlias, compilerLine, outputFlag } from '../toolchain/compat.js';
import { ASCONFIG, resolveTarget } from './asconfig.js';

/** Default output when the build runs asc without a configuration. */
export const DEFAULT_OUTPUT = 'build/plugin.wasm';
export const DEFAULT_TARGET = 'release';

export interface PlanOptions {
  pluginDir: string;
  scripts: Record<string, string>;
  compilerVersion: string;
  /** asconfig.json target; default release. */
  target?: string;
  /** Entry for asc when nothing else names one, relative to pluginDir. */
  entry: string;
  /** Direct dependencies (name → version), for the SDK's abort handler. */
  direct: Record<string, string>;
}

export interface BuildPlan {
  /** 'script': `npm run <script>`; 'asc': asc with `args`. */
  kind: 'script' | 'asc';
  script?: string;
  args?: string[];
  /** The .wasm it writes (absolute), when it can be known before it runs. */
  output?: string;
  /** Where `output` was read from, for the log. */
  outputFrom: string;
  /** The command, for the log and the summary. */
  command: string;
  target: string;
  config?: string;
}

function tokenize(script: string): string[] {
  return (script.match(/"[^"]*"|'[^']*'|\S+/g) ?? []).map((t) => t.replace(/^["']|["']$/g, ''));
}

/** The value of a flag in a token list: `--flag value` or `--flag=value`. */
function flagValue(tokens: string[], names: string[]): string | undefined {
  for (let i = 0; i < tokens.length; i++) {
    for (const n of names) {
      if (tokens[i] === n && tokens[i + 1] !== undefined) return tokens[i + 1];
      if (tokens[i].startsWith(`${n}=`)) return tokens[i].slice(n.length + 1);
    }
  }
  return undefined;
}

/**
 * The .wasm a script writes, relative to the plugin directory, when its text
 * says so. Returns undefined when it cannot be told from the text.
 */
export function outputOfScript(
  script: string,
  o: { compilerVersion: string; scripts: Record<string, string>; pluginDir: string },
  depth = 0,
): { output: string; from: string } | undefined {
  if (depth > 4) return undefined;
  // Commands joined with && or ; : the last one that says where it writes wins.
  const commands = script.split(/&&|;|\|\|/).map((c) => c.trim()).filter(Boolean);
  let found: { output: string; from: string } | undefined;
  for (const command of commands) {
    const tokens = tokenize(command);
    const run = /^(?:npm|pnpm|yarn)$/.test(tokens[0] ?? '') ? tokens.slice(1).filter((t) => t !== 'run' && t !== 'run-script' && !t.startsWith('-')) : undefined;
    if (run && run.length > 0 && o.scripts[run[0]] !== undefined && run[0] !== 'install') {
      const inner = outputOfScript(o.scripts[run[0]], o, depth + 1);
      if (inner) found = inner;
      continue;
    }
    if (!tokens.some((t) => /(^|\/)asc(\.js)?$/.test(t))) continue;
    const names = compilerLine(o.compilerVersion) === 'outFile' ? ['-o', '--outFile'] : ['-b', '--binaryFile', '-o', '--outFile'];
    const explicit = flagValue(tokens, names);
    if (explicit && explicit.endsWith('.wasm')) {
      found = { output: path.resolve(o.pluginDir, explicit), from: `the script's ${tokens[tokens.indexOf(explicit) - 1]?.split('=')[0] ?? 'output'} flag` };
      continue;
    }
    const config = path.resolve(o.pluginDir, flagValue(tokens, ['--config']) ?? ASCONFIG);
    if (!fs.existsSync(config)) continue;
    const target = flagValue(tokens, ['--target']) ?? DEFAULT_TARGET;
    const resolved = resolveTarget(config, target, compilerLine(o.compilerVersion) === 'outFile');
    if (resolved.wasmFile) found = { output: resolved.wasmFile, from: `${path.basename(config)} target "${target}"` };
  }
  return found;
}

export function planBuild(o: PlanOptions): BuildPlan {
  const target = o.target ?? DEFAULT_TARGET;
  const outFileLine = compilerLine(o.compilerVersion) === 'outFile';
  const config = path.join(o.pluginDir, ASCONFIG);
  const hasConfig = fs.existsSync(config);
  const scriptName = o.scripts[`asbuild:${target}`] !== undefined ? `asbuild:${target}` : o.scripts.asbuild !== undefined ? 'asbuild' : undefined;

  if (scriptName) {
    const out = outputOfScript(o.scripts[scriptName], { compilerVersion: o.compilerVersion, scripts: o.scripts, pluginDir: o.pluginDir });
    return {
      kind: 'script',
      script: scriptName,
      output: out?.output,
      outputFrom: out?.from ?? 'the .wasm file the script writes',
      command: `npm run ${scriptName}`,
      target,
      config: hasConfig ? config : undefined,
    };
  }

  if (hasConfig) {
    const resolved = resolveTarget(config, target, outFileLine);
    if (o.target && resolved.targets.length > 0 && !resolved.targets.includes(target)) {
      throw new UserError(`input \`asc-target\`: ${ASCONFIG} has no target "${target}"; it has ${resolved.targets.join(', ')}`);
    }
    const entries = resolved.entries.length > 0 ? resolved.entries.map((e) => path.relative(o.pluginDir, e)) : [o.entry];
    const args = [...entries, '--target', target];
    let output = resolved.wasmFile;
    let outputFrom = `${ASCONFIG} target "${target}"`;
    if (!output) {
      output = resolveIn(o.pluginDir, DEFAULT_OUTPUT);
      outputFrom = `${outputFlag(o.compilerVersion)} (${ASCONFIG} names no output)`;
      args.push(outputFlag(o.compilerVersion), DEFAULT_OUTPUT);
    }
    return { kind: 'asc', args, output, outputFrom, command: `asc ${args.join(' ')}`, target, config };
  }

  const args = buildAscArgs(o.compilerVersion, o.entry, DEFAULT_OUTPUT, abortAlias(o.direct));
  return {
    kind: 'asc',
    args,
    output: resolveIn(o.pluginDir, DEFAULT_OUTPUT),
    outputFrom: 'the default output',
    command: `asc ${args.join(' ')}`,
    target,
  };
}

/**
 * asc arguments for an optimized plugin build without a configuration, for
 * the compiler line of `version`. `--use abort=<handler>` routes
 * AssemblyScript's abort to the SDK's handler: without it the module imports
 * env.abort, which Envoy does not provide.
 */
export function buildAscArgs(version: string, entry: string, output: string, abort?: string): string[] {
  const line = compilerLine(version);
  const args = [entry, outputFlag(version), output, '--optimize', '--noAssert'];
  // Before 0.18 the runtime that frees memory is "full"; from 0.18 on the default (incremental) is.
  if (line === 'binaryFile-full') args.push('--runtime', 'full');
  if (abort) args.push('--use', `abort=${abort}`);
  return args;
}

/**
 * path.resolve, hidden from the bundler: ncc rewrites a path.resolve call
 * whose arguments it can partly read (a constant file name) into a path
 * inside dist/, which is never where the plugin is.
 */
function resolveIn(dir: string, file: string): string {
  return path.resolve(...[dir, file]);
}
