// Shared pieces of the benchmark: the tools it needs (installed when
// missing), building the plugin from the working tree or from a git ref,
// statistics and markdown tables.
import { execFile, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

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
export function runAsync(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; onLine?: (line: string, ms: number) => void; onSpawn?: (pid: number) => void } = {},
): Promise<Spawned> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
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
  /** Peak memory, when the run was measured. */
  peak?: StagePeak;
}

/** Peak resident memory (VmHWM) of a stage's Node process and of what it started. */
export interface StagePeak {
  /** The stage's own Node process: its getrusage maxrss, written as it exits. */
  nodeKiB: number;
  /** Every process the stage started (Envoy, python, ...), by pid: the highest VmHWM seen. */
  children: Array<{ pid: number; name: string; hwmKiB: number }>;
}

/** Written to a file and preloaded (`node --import`) into a measured stage: its peak RSS as it exits. */
const PEAK_PRELOAD = `import { writeFileSync } from 'node:fs';
const dir = process.env.ASM_WASM_BENCH_PEAK_DIR;
if (dir) process.on('exit', () => {
  try { writeFileSync(dir + '/' + process.pid + '.json', JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS })); } catch {}
});
`;

/**
 * Follows a process and its descendants, reading each one's VmHWM (the
 * kernel's high-water mark of resident memory) from /proc every
 * `intervalMs`. VmHWM only grows, so the last reading before a process
 * exits is its peak up to that moment.
 */
export class PeakWatcher {
  private readonly seen = new Map<number, { name: string; hwmKiB: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly root: number, intervalMs = 25) {
    this.poll();
    this.timer = setInterval(() => this.poll(), intervalMs);
  }

  private poll(): void {
    const stack = [this.root];
    while (stack.length > 0) {
      const pid = stack.pop()!;
      let status: string;
      try {
        status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      } catch {
        continue;
      }
      const name = /^Name:\s+(.*)$/m.exec(status)?.[1] ?? '?';
      const hwm = Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
      const prev = this.seen.get(pid);
      if (Number.isFinite(hwm) && (!prev || hwm > prev.hwmKiB)) this.seen.set(pid, { name, hwmKiB: hwm });
      try {
        // Node and Python start their children from the main thread.
        for (const child of fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/)) if (child) stack.push(Number(child));
      } catch {
        // exited
      }
    }
  }

  stop(): Array<{ pid: number; name: string; hwmKiB: number }> {
    clearInterval(this.timer);
    return [...this.seen].filter(([pid]) => pid !== this.root).map(([pid, v]) => ({ pid, ...v }));
  }
}

/** The highest peak among a stage's children with this process name (e.g. "envoy"). */
export function childPeakKiB(peak: StagePeak | undefined, name: string): number {
  const found = (peak?.children ?? []).filter((c) => c.name === name).map((c) => c.hwmKiB);
  return found.length > 0 ? Math.max(...found) : NaN;
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
  options: { cwd?: string; bundle?: string; measure?: boolean } = {},
): Promise<StageRun> {
  const lines: StageRun['lines'] = [];
  let peakDir: string | undefined;
  let watcher: PeakWatcher | undefined;
  let stagePid: number | undefined;
  const nodeArgs: string[] = [];
  if (options.measure) {
    peakDir = tempDir('peak');
    const preload = path.join(peakDir, 'preload.mjs');
    fs.writeFileSync(preload, PEAK_PRELOAD);
    nodeArgs.push('--import', pathToFileURL(preload).href);
  }
  const r = await runAsync(process.execPath, [...nodeArgs, options.bundle ?? BUNDLE, stage, '--json'], {
    // The job's working directory: a stage may write there (the OCI layout when there is no image).
    cwd: options.cwd ?? path.dirname(inputs['plugin-dir'] ?? ROOT),
    // Not as a workflow step: no job summary or step outputs of the job running the bench.
    env: {
      ...env,
      ASM_WASM_INPUTS: JSON.stringify(inputs),
      ASM_WASM_STEPS: JSON.stringify(steps),
      GITHUB_ACTIONS: '',
      GITHUB_OUTPUT: '',
      GITHUB_STEP_SUMMARY: '',
      ...(peakDir ? { ASM_WASM_BENCH_PEAK_DIR: peakDir } : {}),
    },
    onLine: (line, ms) => lines.push({ ms, line }),
    onSpawn: (pid) => {
      stagePid = pid;
      if (options.measure) watcher = new PeakWatcher(pid);
    },
  });
  let peak: StagePeak | undefined;
  if (peakDir) {
    const children = watcher?.stop() ?? [];
    let nodeKiB = NaN;
    for (const f of fs.readdirSync(peakDir)) {
      const pid = Number(f.replace(/\.json$/, ''));
      if (!f.endsWith('.json') || !Number.isInteger(pid)) continue;
      const kib = (JSON.parse(fs.readFileSync(path.join(peakDir, f), 'utf8')) as { maxRssKiB: number }).maxRssKiB;
      if (pid === stagePid) {
        nodeKiB = kib;
        continue;
      }
      // A Node process the stage started (none do in test or push).
      const child = children.find((c) => c.pid === pid);
      if (child) child.hwmKiB = Math.max(child.hwmKiB, kib);
      else children.push({ pid, name: 'node', hwmKiB: kib });
    }
    fs.rmSync(peakDir, { recursive: true, force: true });
    peak = { nodeKiB, children };
  }
  let parsed: { ok?: boolean; outputs?: Record<string, string>; error?: string };
  try {
    parsed = JSON.parse(r.stdout);
  } catch {
    parsed = { ok: false, error: `no JSON from the stage (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-5).join(' | ')}` };
  }
  return { ok: parsed.ok === true && r.code === 0, ms: r.ms, outputs: parsed.outputs ?? {}, error: parsed.error, lines, peak };
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

/**
 * The action bundle of the working tree (src/ as it is now), made with
 * esbuild outside dist/ (which only `npm run build` writes), split like the
 * committed bundle so the deploy stage's modules load only there. Returns
 * its index.js.
 */
export async function bundleWorkingTree(dest: string): Promise<string> {
  fs.mkdirSync(dest, { recursive: true });
  const esbuild = path.join(ROOT, 'node_modules', '.bin', 'esbuild');
  await execAsync(esbuild, [
    path.join(ROOT, 'src', 'index.ts'),
    '--bundle',
    '--splitting',
    '--format=esm',
    '--platform=node',
    '--target=node20',
    `--outdir=${dest}`,
    '--out-extension:.js=.mjs',
    '--log-level=warning',
    // CommonJS packages in an ES module bundle call require().
    "--banner:js=import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);",
  ], ROOT);
  return path.join(dest, 'index.mjs');
}
