// Runs the CLI entry in this process, as `asm-wasm <args>` would, with its
// own environment, and captures what it prints.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../src/main.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  json?: { ok: boolean; error?: string; outputs: Record<string, string>; results: any };
}

export async function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  const saved = { ...process.env };
  const out: string[] = [];
  const err: string[] = [];
  const stdout = process.stdout.write;
  const stderr = process.stderr.write;
  process.stdout.write = ((c: string | Uint8Array) => (out.push(String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => (err.push(String(c)), true)) as typeof process.stderr.write;
  for (const k of ['GITHUB_ACTIONS', 'GITHUB_OUTPUT', 'GITHUB_STEP_SUMMARY', 'ASM_WASM_INPUTS', 'ASM_WASM_STEPS']) delete process.env[k];
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    const code = await main(args);
    const text = out.join('');
    let json;
    if (args.includes('--json')) json = JSON.parse(text);
    return { code, stdout: text, stderr: err.join(''), json };
  } finally {
    process.stdout.write = stdout;
    process.stderr.write = stderr;
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `asm-wasm-${prefix}-`));
}

/** The reference plugin (the template users copy), on the current compiler. */
export const TEMPLATE_DIR = path.join(ROOT, 'plugin');

/** plugin/build/plugin.wasm, built with the template's own scripts when no earlier test has built it. Returns its path. */
export function ensureTemplateBuilt(): string {
  const wasm = path.join(TEMPLATE_DIR, 'build', 'plugin.wasm');
  if (fs.existsSync(wasm)) return wasm;
  if (!fs.existsSync(path.join(TEMPLATE_DIR, 'node_modules'))) execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: TEMPLATE_DIR, stdio: 'inherit' });
  execFileSync('npm', ['run', 'asbuild'], { cwd: TEMPLATE_DIR, stdio: 'inherit' });
  return wasm;
}
/**
 * The template as it was on AssemblyScript 0.14 and @solo-io/proxy-runtime
 * 0.1.8. The fixture plugins in test/fixtures/plugins/*.ts are written against
 * that SDK, so makePlugin starts from here unless told otherwise.
 */
export const LEGACY_PLUGIN_DIR = path.join(ROOT, 'test', 'fixtures', 'projects', 'as014-solo');

/**
 * A copy of a plugin project's sources (package.json, lockfile, asconfig.json,
 * sources, manifest, tests) at `dest`, without node_modules or build output.
 * `from` is a plugin directory; default: the 0.14 + proxy-runtime project.
 */
export function copyPlugin(dest: string, from: string = LEGACY_PLUGIN_DIR): string {
  const skip = new Set(['node_modules', 'build', '.asm-wasm']);
  fs.mkdirSync(dest, { recursive: true });
  fs.cpSync(from, dest, { recursive: true, filter: (f) => path.relative(from, f).split(path.sep).every((part) => !skip.has(part)) });
  return dest;
}

export interface PluginFixture {
  /** The plugin directory to start from; default: the 0.14 + proxy-runtime project (LEGACY_PLUGIN_DIR). */
  from?: string;
  /** assembly/index.ts; default: the starting project's own. */
  source?: string;
  /** The asbuild script; null for none (the build stage runs asc on `entry`). */
  asbuild?: string | null;
  /** Extra files, relative to the plugin dir. */
  files?: Record<string, string>;
}

/**
 * A copy of a plugin project (package.json, lockfile, sources, manifest,
 * tests) in a temp dir, with the given changes: by default the 0.14 +
 * proxy-runtime project, which the fixture sources are written for;
 * `from: TEMPLATE_DIR` for the reference plugin in plugin/. It has no
 * node_modules: the toolchain stage links the cached compiler in.
 */
export function makePlugin(fixture: PluginFixture = {}): string {
  const dir = copyPlugin(path.join(tempDir('plugin'), 'plugin'), fixture.from);
  if (fixture.source !== undefined) fs.writeFileSync(path.join(dir, 'assembly', 'index.ts'), fixture.source);
  if (fixture.asbuild !== undefined) {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    pkg.scripts ??= {};
    if (fixture.asbuild === null) delete pkg.scripts.asbuild;
    else pkg.scripts.asbuild = fixture.asbuild;
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  }
  for (const [f, text] of Object.entries(fixture.files ?? {})) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), text);
  }
  return dir;
}

export function fixtureSource(name: string): string {
  return fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'plugins', `${name}.ts`), 'utf8');
}

/**
 * A copy of a whole fixture project (test/fixtures/projects/<name>) in a
 * temp dir, without node_modules or build output.
 */
export function copyProject(name: string): string {
  const src = path.join(ROOT, 'test', 'fixtures', 'projects', name);
  const dest = path.join(tempDir(name), name);
  fs.cpSync(src, dest, {
    recursive: true,
    filter: (from) => !/[\\/](node_modules|build|\.asm-wasm)([\\/]|$)/.test(path.relative(src, from) ? `/${path.relative(src, from)}` : ''),
  });
  return dest;
}
