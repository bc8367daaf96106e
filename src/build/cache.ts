// Reusing a compiled module when the compiler's exact inputs are unchanged.
//
// The key is built from what the compiler actually read, not from a guess at
// which files matter. Every compile runs asc with a small preload (NODE_OPTIONS
// --import) that records, in the asc process only, each file asc read (with a
// hash of its content), each file it looked for and did not find (a file that
// appears there later changes how an import resolves), each directory it
// listed or only checked for, and each file it wrote. A build is stored under a first key (the
// compiler version and its installed folder, which the lockfile's hash names;
// the build command and every package.json script it runs; the Node version);
// it is reused when, under that key, a stored build's recorded inputs all
// hash as they did. Its key is the hash of the first key and those inputs.
//
// Nothing is reused when the key could miss an input:
// - a script that runs anything but asc and `npm run <script>` (a generator,
//   a copy step, a shell variable): what it reads is not known;
// - a compiler not installed by the toolchain stage into the tool cache (a
//   plugin's own node_modules can be edited in place);
// - a transform (`--transform`, or `transform` in asconfig.json): it is code
//   loaded by asc that may read anything;
// - a trace that is missing or does not show the entry file being read
//   (an older compiler that reads files another way);
// - an output written outside the plugin directory.
// The store is outside the plugin: <tool cache>/asm-wasm-builds/. Setting
// ASM_WASM_BUILD_REUSE=off in the environment compiles every time.
//
// In a workflow with the Actions cache, a first key's folder of the store is
// saved there after a compile, under the first key and the new build's key
// (asm-wasm-build-<platform>-<arch>-<first key>-<build key>), and restored
// on a miss in the local store by the first key's prefix (the latest saved).
// What is restored is only a candidate: a build in it is reused exactly as a
// local one is, when every input it recorded hashes as it did and every
// output's bytes hash as stored, so a restored store never widens the key.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BuildPlan } from './plan.js';
import { tracerFile, type Trace } from './trace.js';
import { cacheKey, openActionsCache, type ActionsCache } from '../actions-cache.js';

export const CACHE_DIR_NAME = 'asm-wasm-builds';
/** The toolchain stage's folder in the tool cache (toolchain/index.ts TOOL_NAME). */
const TOOLCHAIN_DIR_NAME = 'asm-wasm-assemblyscript';
/** Bumped when what a key covers changes. */
const FORMAT = 2;
/** Stored builds kept per first key (one per set of inputs: the last few edits of a plugin). */
const ENTRIES_KEPT = 8;

function sha256(data: string | Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** Where builds are stored: beside the toolchains in the tool cache. */
export function buildCacheRoot(): string | undefined {
  const tc = process.env.RUNNER_TOOL_CACHE;
  return tc ? path.join(tc, CACHE_DIR_NAME) : undefined;
}

// ---- what may be cached ----

export interface CacheContext {
  pluginDir: string;
  plan: BuildPlan;
  scripts: Record<string, string>;
  compilerVersion: string;
  nodeModules: string;
  /** The entry input, used when the plan runs asc without a configuration. */
  entry: string;
}

/** The commands a script runs, split where the shell would run them one after another. */
function commandsOf(script: string): string[] {
  return script.split(/&&|;/).map((c) => c.trim()).filter(Boolean);
}

/**
 * The scripts a build runs (the plan's and those it runs with `npm run`), or
 * why its inputs cannot be known: any command other than asc or
 * `npm|pnpm|yarn run <script>`, or shell syntax that brings in something
 * from outside (variables, substitutions, redirections, pipes).
 */
export function scriptChain(name: string, scripts: Record<string, string>, seen: string[] = []): { chain: Record<string, string> } | { reason: string } {
  if (seen.includes(name)) return { reason: `script "${name}" runs itself` };
  const text = scripts[name];
  if (text === undefined) return { reason: `script "${name}" does not exist` };
  if (/[$`<>|&]/.test(text.replace(/&&/g, ''))) return { reason: `script "${name}" uses shell syntax (variables, redirection, pipes or background jobs)` };
  const chain: Record<string, string> = { [name]: text };
  for (const command of commandsOf(text)) {
    const words = command.split(/\s+/);
    if (words[0] === 'asc' || /^(\.\/)?node_modules\/\.bin\/asc$/.test(words[0])) {
      if (words.some((w) => w === '--transform' || w.startsWith('--transform='))) return { reason: `script "${name}" loads a compiler transform` };
      continue;
    }
    const run = /^(npm|pnpm|yarn)\s+(?:run|run-script)\s+([\w:.-]+)$/.exec(command);
    if (run) {
      const inner = scriptChain(run[2], scripts, [...seen, name]);
      if ('reason' in inner) return inner;
      Object.assign(chain, inner.chain);
      continue;
    }
    return { reason: `script "${name}" runs \`${command}\`, not only asc` };
  }
  return { chain };
}

/** Whether `file` is `dir` or inside it. */
function within(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export interface CacheSession {
  /** The first key (hash). */
  firstKey: string;
  /** The compiler's installed folder (real path), in the first key. */
  toolchain: string;
  dir: string;
  /** Environment to add to the compile, so it is traced. */
  env: Record<string, string>;
  traceDir: string;
}

/** A cache session for this build, or the reason there is none. */
export function openCache(ctx: CacheContext): CacheSession | { reason: string } {
  if (/^(0|false|off|no)$/i.test(process.env.ASM_WASM_BUILD_REUSE ?? '')) return { reason: 'ASM_WASM_BUILD_REUSE is off' };
  const root = buildCacheRoot();
  if (!root) return { reason: 'no tool cache directory (RUNNER_TOOL_CACHE)' };
  let real: string;
  try {
    real = fs.realpathSync(ctx.nodeModules);
  } catch {
    return { reason: `${ctx.nodeModules} does not exist` };
  }
  let toolchains = '';
  try {
    toolchains = fs.realpathSync(path.join(process.env.RUNNER_TOOL_CACHE!, TOOLCHAIN_DIR_NAME));
  } catch {
    // no toolchain in the tool cache
  }
  if (!toolchains || !within(toolchains, real)) {
    return { reason: "the compiler is not one the toolchain stage installed into the tool cache (a plugin's own node_modules can change in place)" };
  }
  let chain: Record<string, string> = {};
  if (ctx.plan.kind === 'script') {
    const c = scriptChain(ctx.plan.script!, ctx.scripts);
    if ('reason' in c) return c;
    chain = c.chain;
  }
  const firstKey = sha256(
    JSON.stringify({
      format: FORMAT,
      compiler: ctx.compilerVersion,
      // The installed folder's name holds the hash of what the lockfile installs.
      toolchain: real,
      node: process.version,
      plan: { kind: ctx.plan.kind, script: ctx.plan.script, args: ctx.plan.args, target: ctx.plan.target, output: ctx.plan.output && path.relative(ctx.pluginDir, ctx.plan.output) },
      scripts: chain,
      entry: ctx.entry,
    }),
  );
  const dir = path.join(root, firstKey.slice(0, 32));
  const traceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'asm-wasm-asc-trace-'));
  const preload = pathToFileURL(tracerFile(root)).href;
  const existing = process.env.NODE_OPTIONS ?? '';
  return { firstKey, toolchain: real, dir, traceDir, env: { ASM_WASM_ASC_TRACE: traceDir, NODE_OPTIONS: `${existing} --import=${preload}`.trim() } };
}

// ---- stored builds ----

/** A file's path as stored: relative to the plugin when inside it (checkouts move), else absolute. */
function stored(pluginDir: string, file: string): string {
  return within(pluginDir, file) ? `./${path.relative(pluginDir, file).split(path.sep).join('/')}` : file;
}

function resolveStored(pluginDir: string, p: string): string {
  return p.startsWith('./') ? path.join(pluginDir, p.slice(2)) : p;
}

interface Entry {
  key: string;
  created: string;
  reads: Record<string, string | null>;
  lists: Record<string, string | null>;
  probes: Record<string, boolean>;
  outputs: Array<{ path: string; sha256: string; mode: number }>;
  stdout: string;
  stderr: string;
}

interface Manifest {
  entries: Entry[];
}

function readManifest(dir: string): Manifest {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
    return Array.isArray(m.entries) ? m : { entries: [] };
  } catch {
    return { entries: [] };
  }
}

/**
 * The compiler's own files (asc, Binaryen: about 20 MB) are in the
 * toolchain folder the first key names, which the toolchain stage writes
 * once; they are checked by size and modification time rather than hashed
 * again on every build.
 */
function statPrint(file: string): string | null {
  try {
    const st = fs.statSync(file);
    return `stat:${st.size}:${Math.round(st.mtimeMs)}`;
  } catch {
    return null;
  }
}

function unchangedFile(file: string, recorded: string | null): boolean {
  return recorded !== null && recorded.startsWith('stat:') ? statPrint(file) === recorded : fileHash(file) === recorded;
}

function fileHash(file: string): string | null {
  try {
    return sha256(fs.readFileSync(file));
  } catch {
    return null;
  }
}

function listHash(dir: string): string | null {
  try {
    return sha256(fs.readdirSync(dir).sort().join('\n'));
  } catch {
    return null;
  }
}

function keyOf(firstKey: string, reads: Record<string, string | null>, lists: Record<string, string | null>): string {
  const sorted = (r: Record<string, string | null>) => Object.keys(r).sort().map((k) => [k, r[k]]);
  return sha256(JSON.stringify([firstKey, sorted(reads), sorted(lists)])).slice(0, 16);
}

export interface Reused {
  key: string;
  outputs: string[];
  stdout: string;
  stderr: string;
}

/**
 * A stored build whose inputs all hash as they did, restored into the plugin
 * (its outputs written where the compiler wrote them); undefined when none.
 */
export function reuse(session: CacheSession, dir: string): Reused | undefined {
  const pluginDir = fs.realpathSync(dir);
  const manifest = readManifest(session.dir);
  for (const e of manifest.entries) {
    // Only outputs inside the plugin, from blobs named by their hash (what store() writes).
    if (!Array.isArray(e.outputs) || !e.outputs.every((o) => safeOutput(pluginDir, o))) continue;
    const unchanged =
      Object.entries(e.reads).every(([p, h]) => unchangedFile(resolveStored(pluginDir, p), h)) &&
      Object.entries(e.lists).every(([p, h]) => listHash(resolveStored(pluginDir, p)) === h) &&
      Object.entries(e.probes ?? {}).every(([p, there]) => fs.existsSync(resolveStored(pluginDir, p)) === there);
    if (!unchanged) continue;
    const blobs = e.outputs.map((o) => ({ ...o, blob: path.join(session.dir, 'objects', o.sha256) }));
    if (!blobs.every((b) => fileHash(b.blob) === b.sha256)) continue;
    const written: string[] = [];
    for (const b of blobs) {
      const target = resolveStored(pluginDir, b.path);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.rmSync(target, { force: true });
      fs.copyFileSync(b.blob, target);
      written.push(target);
    }
    return { key: e.key, outputs: written, stdout: e.stdout, stderr: e.stderr };
  }
  return undefined;
}

/** An output as store() records it: a path inside the plugin and a blob named by a sha256. */
function safeOutput(pluginDir: string, o: { path?: unknown; sha256?: unknown }): boolean {
  return (
    typeof o.path === 'string' &&
    o.path.startsWith('./') &&
    typeof o.sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(o.sha256) &&
    within(pluginDir, resolveStored(pluginDir, o.path)) &&
    resolveStored(pluginDir, o.path) !== pluginDir
  );
}

/**
 * After a successful compile: its traces, checked, and the build stored.
 * Returns the key it was stored under, or why it was not.
 */
export function store(session: CacheSession, given: { pluginDir: string; wasm: string; stdout: string; stderr: string }): { key: string } | { reason: string } {
  // The compiler sees the real path (its working directory), so compare with that.
  const o = { ...given, pluginDir: fs.realpathSync(given.pluginDir), wasm: fs.realpathSync(given.wasm) };
  const traces: Trace[] = [];
  for (const f of fs.readdirSync(session.traceDir)) {
    if (f.endsWith('.json')) traces.push(JSON.parse(fs.readFileSync(path.join(session.traceDir, f), 'utf8')) as Trace);
  }
  if (traces.length === 0) return { reason: 'the compiler left no record of what it read' };
  const reads: Record<string, string | null> = {};
  const lists: Record<string, string | null> = {};
  const writes = new Set<string>();
  const probes: Record<string, boolean> = {};
  for (const t of traces) {
    if (t.code !== 0) return { reason: 'a compiler process failed' };
    Object.assign(lists, t.lists);
    Object.assign(probes, t.probes ?? {});
    for (const w of t.writes) writes.add(w);
    for (const [p, h] of Object.entries(t.reads)) {
      // A file this build wrote and then read is an output, not an input.
      if (!writes.has(p)) reads[p] = h;
    }
  }
  // A compiler that reads its sources some other way leaves a record without them.
  const sources = Object.keys(reads).filter((p) => reads[p] !== null && within(o.pluginDir, p) && !p.split(path.sep).includes('node_modules') && p.endsWith('.ts'));
  if (sources.length === 0) return { reason: "the compiler's record shows no source file of the plugin being read" };
  for (const [p, h] of Object.entries(reads)) {
    if (h === null || !/\.json$/.test(p)) continue;
    try {
      const json = JSON.parse(fs.readFileSync(p, 'utf8')) as { options?: { transform?: unknown }; targets?: Record<string, { transform?: unknown }> };
      if (json.options?.transform || Object.values(json.targets ?? {}).some((t) => t?.transform)) return { reason: `${path.basename(p)} loads a compiler transform` };
    } catch {
      // not a configuration asc parsed
    }
  }
  const wasm = o.wasm;
  if (!writes.has(wasm)) return { reason: `the compiler's record does not show it writing ${path.relative(o.pluginDir, wasm)}` };
  for (const w of writes) if (!within(o.pluginDir, w)) return { reason: `the compiler wrote ${w}, outside the plugin` };

  const storedReads: Record<string, string | null> = {};
  for (const [p, h] of Object.entries(reads)) {
    let inToolchain = false;
    try {
      inToolchain = h !== null && within(session.toolchain, fs.realpathSync(p));
    } catch {
      // gone since: keep its hash, so the build is not reused
    }
    storedReads[stored(o.pluginDir, p)] = inToolchain ? statPrint(p) : h;
  }
  const storedLists: Record<string, string | null> = {};
  for (const [p, h] of Object.entries(lists)) storedLists[stored(o.pluginDir, p)] = h;
  const storedProbes: Record<string, boolean> = {};
  for (const [p, there] of Object.entries(probes)) if (!writes.has(p) && !(p in reads)) storedProbes[stored(o.pluginDir, p)] = there;
  const key = keyOf(session.firstKey, storedReads, { ...storedLists, ...Object.fromEntries(Object.entries(storedProbes).map(([p, t]) => [`probe:${p}`, String(t)])) });

  fs.mkdirSync(path.join(session.dir, 'objects'), { recursive: true });
  const outputs: Entry['outputs'] = [];
  for (const w of [...writes].sort()) {
    if (!fs.existsSync(w)) continue;
    const bytes = fs.readFileSync(w);
    const h = sha256(bytes);
    const blob = path.join(session.dir, 'objects', h);
    if (!fs.existsSync(blob)) {
      const tmp = `${blob}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, bytes);
      fs.renameSync(tmp, blob);
    }
    outputs.push({ path: stored(o.pluginDir, w), sha256: h, mode: fs.statSync(w).mode & 0o777 });
  }
  const manifest = readManifest(session.dir);
  const entries = [
    { key, created: new Date().toISOString(), reads: storedReads, lists: storedLists, probes: storedProbes, outputs, stdout: o.stdout, stderr: o.stderr },
    ...manifest.entries.filter((e) => e.key !== key),
  ].slice(0, ENTRIES_KEPT);
  const tmp = path.join(session.dir, `manifest.json.${process.pid}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify({ entries }));
  fs.renameSync(tmp, path.join(session.dir, 'manifest.json'));
  return { key };
}

// ---- the Actions cache ----

/** The Actions cache key prefix of a first key on this machine; a saved store's key adds the build's key. */
function actionsKeyPrefix(session: CacheSession): string {
  return cacheKey('asm-wasm-build', process.platform, process.arch, session.firstKey.slice(0, 32), '');
}

export interface ActionsCacheReuse {
  /** The build reused from the restored store, if one's inputs all matched. */
  reused?: Reused;
  /** The key the store was restored from, if any. */
  restoredKey?: string;
  /** The Actions cache, open, to save the store to after a compile; undefined when the run has none. */
  cache?: ActionsCache;
}

/**
 * On a miss in the local store: the first key's store restored from the
 * Actions cache (the latest saved under that first key), merged with what
 * the local store held, and a build in it reused when its inputs all match.
 */
export async function reuseFromActionsCache(session: CacheSession, dir: string): Promise<ActionsCacheReuse> {
  const cache = await openActionsCache('the compiled-module store');
  if (!cache) return {};
  const local = readManifest(session.dir);
  const restoredKey = await cache.restore([session.dir], actionsKeyPrefix(session));
  if (!restoredKey) return { cache };
  const restored = readManifest(session.dir);
  // The restore wrote its manifest over the local one: keep both (the blobs are named by content).
  const entries = [...restored.entries, ...local.entries.filter((e) => !restored.entries.some((r) => r.key === e.key))].slice(0, ENTRIES_KEPT);
  fs.mkdirSync(session.dir, { recursive: true });
  const tmp = path.join(session.dir, `manifest.json.${process.pid}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify({ entries }));
  fs.renameSync(tmp, path.join(session.dir, 'manifest.json'));
  return { reused: reuse(session, dir), restoredKey, cache };
}

/** After a compile stored as `key`: the first key's store saved to the Actions cache under it. */
export async function saveToActionsCache(cache: ActionsCache, session: CacheSession, key: string): Promise<void> {
  await cache.save([session.dir], `${actionsKeyPrefix(session)}${key}`);
}

export function closeCache(session: CacheSession): void {
  fs.rmSync(session.traceDir, { recursive: true, force: true });
}
