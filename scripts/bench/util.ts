// Shared pieces of the benchmark: the tools it needs (installed when
// missing), building the plugin from the working tree or from a git ref,
// statistics and markdown tables.
import { execFile, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const BUNDLE = path.join(ROOT, 'dist', 'index.js');

export function log(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `bench-${prefix}-`));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function which(program: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * wrk, from the distribution's package (Debian and Ubuntu ship it), installed
 * with apt-get when missing, as root or through sudo.
 */
export function ensureWrk(): string {
  const found = which('wrk');
  if (found) return found;
  if (!which('apt-get')) throw new Error('wrk is not installed and apt-get is not available: install wrk (https://github.com/wg/wrk) and run again');
  const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  if (sudo.length > 0 && !which('sudo')) throw new Error('wrk is not installed and installing it needs root: run `apt-get install -y wrk` as root');
  log('installing wrk with apt-get');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args: string[]) => {
    const [cmd, ...rest] = [...sudo, 'apt-get', ...args];
    execFileSync(cmd, rest, { env, stdio: ['ignore', 'ignore', 'inherit'] });
  };
  try {
    apt(['install', '-y', '-q', '--no-install-recommends', 'wrk']);
  } catch {
    apt(['update', '-q']);
    apt(['install', '-y', '-q', '--no-install-recommends', 'wrk']);
  }
  const installed = which('wrk');
  if (!installed) throw new Error('apt-get install wrk succeeded but wrk is not on PATH');
  return installed;
}

export interface Spawned {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command without blocking the event loop (the bench's own servers keep answering). */
export function runAsync(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; onLine?: (line: string, ms: number) => void } = {}): Promise<Spawned> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    const onData = (chunk: Buffer) => {
      if (!options.onLine) return;
      const now = performance.now() - started;
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) options.onLine(line, now);
    };
    child.stdout.on('data', (c: Buffer) => ((stdout += c.toString('utf8')), onData(c)));
    child.stderr.on('data', (c: Buffer) => ((stderr += c.toString('utf8')), onData(c)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, ms: performance.now() - started }));
  });
}

export function execAsync(command: string, args: string[], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(command, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${command} ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
}

/** plugin/ as it is at a git ref (a commit, a tag, HEAD), for a before/after comparison. */
export async function pluginAtRef(ref: string, dest: string): Promise<string> {
  const listing = await execAsync('git', ['ls-tree', '-r', '--name-only', ref, '--', 'plugin'], ROOT);
  const files = listing.split('\n').filter((f) => f && !f.startsWith('plugin/node_modules/') && !f.startsWith('plugin/build/'));
  if (files.length === 0) throw new Error(`git ref ${ref} has no plugin/ directory`);
  for (const file of files) {
    const target = path.join(dest, path.relative('plugin', file));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, await execAsync('git', ['show', `${ref}:${file}`], ROOT));
  }
  return dest;
}

/** The action bundle (dist/) as committed at a git ref; returns its index.js. */
export async function bundleAtRef(ref: string, dest: string): Promise<string> {
  const listing = await execAsync('git', ['ls-tree', '-r', '--name-only', ref, '--', 'dist'], ROOT);
  const files = listing.split('\n').filter(Boolean);
  if (!files.includes('dist/index.js')) throw new Error(`git ref ${ref} has no dist/index.js`);
  for (const file of files) {
    const target = path.join(dest, path.relative('dist', file));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    // Binary-safe: the bundle is not diffed as text (.gitattributes).
    fs.writeFileSync(target, execFileSync('git', ['show', `${ref}:${file}`], { cwd: ROOT, maxBuffer: 256 * 1024 * 1024 }));
  }
  return path.join(dest, 'index.js');
}

/** Outputs of one `asm-wasm <stage> --json` run. */
export interface StageRun {
  ok: boolean;
  ms: number;
  outputs: Record<string, string>;
  error?: string;
  /** Output lines with the time (ms from the stage's start) they appeared. */
  lines: Array<{ ms: number; line: string }>;
}

/**
 * Runs one stage the way the composite action does: a fresh `node
 * dist/index.js <stage>` with the inputs in ASM_WASM_INPUTS and the earlier
 * steps' outputs in ASM_WASM_STEPS.
 */
export async function runStage(
  stage: string,
  inputs: Record<string, string>,
  steps: Record<string, { outputs: Record<string, string> }>,
  env: NodeJS.ProcessEnv = process.env,
  options: { cwd?: string; bundle?: string } = {},
): Promise<StageRun> {
  const lines: StageRun['lines'] = [];
  const r = await runAsync(process.execPath, [options.bundle ?? BUNDLE, stage, '--json'], {
    // The job's working directory: a stage may write there (the OCI layout when there is no image).
    cwd: options.cwd ?? path.dirname(inputs['plugin-dir'] ?? ROOT),
    // Not as a workflow step: no job summary or step outputs of the job running the bench.
    env: { ...env, ASM_WASM_INPUTS: JSON.stringify(inputs), ASM_WASM_STEPS: JSON.stringify(steps), GITHUB_ACTIONS: '', GITHUB_OUTPUT: '', GITHUB_STEP_SUMMARY: '' },
    onLine: (line, ms) => lines.push({ ms, line }),
  });
  let parsed: { ok?: boolean; outputs?: Record<string, string>; error?: string };
  try {
    parsed = JSON.parse(r.stdout);
  } catch {
    parsed = { ok: false, error: `no JSON from the stage (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-5).join(' | ')}` };
  }
  return { ok: parsed.ok === true && r.code === 0, ms: r.ms, outputs: parsed.outputs ?? {}, error: parsed.error, lines };
}

/** Builds a plugin directory with the action's own toolchain and build stages; returns plugin.wasm. */
export async function buildPluginDir(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  // Only toolchain and build: nothing is written outside the plugin directory.
  const inputs = { 'plugin-dir': dir };
  const tool = await runStage('toolchain', inputs, {}, env);
  if (!tool.ok) throw new Error(`toolchain stage failed for ${dir}: ${tool.error}`);
  const build = await runStage('build', inputs, { toolchain: { outputs: tool.outputs } }, env);
  if (!build.ok) throw new Error(`build stage failed for ${dir}: ${build.error}`);
  return build.outputs['wasm-path'];
}

export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** The q-quantile (0..1) of values, interpolated between neighbours. */
export function quantile(values: number[], q: number): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const at = (v.length - 1) * q;
  const lo = Math.floor(at);
  return v[lo] + (v[Math.min(lo + 1, v.length - 1)] - v[lo]) * (at - lo);
}

/** A markdown table; the first row is the header. */
export function table(rows: Array<Array<string | number>>): string {
  const [head, ...body] = rows.map((r) => r.map(String));
  return [`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a';
}

export function ms(n: number): string {
  return Number.isFinite(n) ? (n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${Math.round(n)} ms`) : 'n/a';
}

export function mib(kib: number): string {
  return Number.isFinite(kib) ? `${(kib / 1024).toFixed(1)} MiB` : 'n/a';
}
