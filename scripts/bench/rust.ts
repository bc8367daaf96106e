// The Rust lane: the service mesh guide's plugin (bench/rust-plugin/, its
// lib.rs and Cargo.toml as the guide has them, plus a Cargo.lock that
// resolves on the distribution's compiler), built from source for
// wasm32-wasi with Debian's rustc and cargo, never a rustup toolchain:
// /usr/bin/rustc and /usr/bin/cargo are called by path, with rustup's
// variables removed from the environment.
//
// The crates the lock pins are vendored once (`cargo vendor`, the only step
// that reaches the registry) into a cache directory outside the repository,
// keyed by the lock's hash; the build itself runs offline from that copy.
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT, log, runAsync } from './util.js';

export const RUST_PLUGIN_DIR = path.join(ROOT, 'bench', 'rust-plugin');
/** What the guide's plugin answers a denied request with. */
export const RUST_DENY_BODY = 'Forbidden by ASM Wasm Plugin, rust version\n';

const RUSTC = '/usr/bin/rustc';
const CARGO = '/usr/bin/cargo';
const TARGET = 'wasm32-wasi';

function apt(packages: string[]): void {
  const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args: string[]) => {
    const [cmd, ...rest] = [...sudo, 'apt-get', ...args];
    execFileSync(cmd, rest, { env, stdio: ['ignore', 'ignore', 'inherit'] });
  };
  try {
    run(['install', '-y', '-q', '--no-install-recommends', ...packages]);
  } catch {
    run(['update', '-q']);
    run(['install', '-y', '-q', '--no-install-recommends', ...packages]);
  }
}

/** The linker the distribution's rustc uses for wasm (rust-lld, a link to lld-N), or undefined when it is missing. */
function linker(): { link: string; target?: string; ok: boolean } {
  const link = '/usr/bin/rust-lld';
  let target: string | undefined;
  try {
    target = fs.readlinkSync(link);
  } catch {
    return { link, ok: false };
  }
  return { link, target, ok: fs.existsSync(link) };
}

/**
 * Debian's Rust toolchain with the wasm32 standard library, installed with
 * apt-get when missing (rustc, cargo, libstd-rust-dev-wasm32, and the lld
 * package rust-lld points to). Returns rustc's version line.
 */
export function ensureRustToolchain(): string {
  const std = `/usr/lib/rustlib/${TARGET}`;
  if (!fs.existsSync(RUSTC) || !fs.existsSync(CARGO) || !fs.existsSync(std)) {
    if (!fs.existsSync('/usr/bin/apt-get')) throw new Error(`${RUSTC}, ${CARGO} or the ${TARGET} standard library is missing and apt-get is not available`);
    log('installing rustc, cargo and the wasm32 standard library with apt-get');
    apt(['rustc', 'cargo', 'libstd-rust-dev-wasm32']);
  }
  const l = linker();
  if (!l.ok) {
    // rust-lld is a link to the versioned lld the distribution builds rustc with (lld-14 on Debian 12).
    const pkg = l.target && /^lld-\d+$/.test(path.basename(l.target)) ? path.basename(l.target) : 'lld';
    log(`installing ${pkg} with apt-get (the wasm linker rustc calls as rust-lld)`);
    apt([pkg]);
    if (!linker().ok) throw new Error(`${l.link} still does not resolve after installing ${pkg}`);
  }
  return execFileSync(RUSTC, ['--version'], { encoding: 'utf8', env: rustEnv('') }).trim();
}

/** An environment that cannot reach rustup's toolchain: rustup's variables removed, /usr/bin first. */
function rustEnv(cargoHome: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('RUSTUP_') || k === 'RUSTC' || k === 'RUSTC_WRAPPER' || k === 'CARGO' || k.startsWith('CARGO_')) delete env[k];
  env.PATH = `/usr/bin:/bin${env.PATH ? `:${env.PATH}` : ''}`;
  env.RUSTC = RUSTC;
  if (cargoHome) env.CARGO_HOME = cargoHome;
  return env;
}

function cacheRoot(): string {
  return path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'asm-wasm-action', 'bench-rust');
}

/**
 * The crates Cargo.lock pins, vendored into the cache (once per lock). cargo
 * 1.65 reads the registry's git index by default; the sparse index, which
 * needs no git access, is an unstable feature in that release, enabled for
 * this one command.
 */
async function vendored(dir: string, lockHash: string): Promise<string> {
  const dest = path.join(cacheRoot(), 'vendor', lockHash);
  if (fs.existsSync(path.join(dest, '.complete'))) return dest;
  log(`vendoring the crates of ${path.relative(ROOT, path.join(dir, 'Cargo.lock'))} into ${dest}`);
  const tmp = `${dest}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const env = { ...rustEnv(path.join(cacheRoot(), 'cargo-home')), __CARGO_TEST_CHANNEL_OVERRIDE_DO_NOT_USE_THIS: 'nightly', CARGO_REGISTRIES_CRATES_IO_PROTOCOL: 'sparse' };
  const r = await runAsync(CARGO, ['-Z', 'sparse-registry', 'vendor', '--locked', '--versioned-dirs', '--manifest-path', path.join(dir, 'Cargo.toml'), tmp], { env, cwd: dir });
  if (r.code !== 0) throw new Error(`cargo vendor failed:\n${r.stderr.trim().split('\n').slice(-15).join('\n')}`);
  fs.writeFileSync(path.join(tmp, '.complete'), '');
  fs.rmSync(dest, { recursive: true, force: true });
  fs.renameSync(tmp, dest);
  return dest;
}

export interface RustBuild {
  wasm: string;
  rustc: string;
  ms: number;
  lockHash: string;
}

/** Builds the Rust plugin in `dir` (release, wasm32-wasi, offline) and copies its module to `outDir`. */
export async function buildRustPlugin(dir: string, outDir: string): Promise<RustBuild> {
  const rustc = ensureRustToolchain();
  const lock = path.join(dir, 'Cargo.lock');
  if (!fs.existsSync(lock)) throw new Error(`${lock} is missing: the Rust lane builds only from a committed lock`);
  const lockHash = crypto.createHash('sha256').update(fs.readFileSync(lock)).digest('hex').slice(0, 16);
  const vendor = await vendored(dir, lockHash);
  const targetDir = path.join(cacheRoot(), 'target', lockHash);
  const started = performance.now();
  const r = await runAsync(
    CARGO,
    [
      'build', '--release', '--locked', '--offline', '--target', TARGET,
      '--manifest-path', path.join(dir, 'Cargo.toml'),
      '--target-dir', targetDir,
      '--config', 'source.crates-io.replace-with="bench-vendored"',
      '--config', `source.bench-vendored.directory=${JSON.stringify(vendor)}`,
    ],
    { env: rustEnv(path.join(cacheRoot(), 'cargo-home')), cwd: dir },
  );
  if (r.code !== 0) throw new Error(`cargo build of ${dir} failed:\n${r.stderr.trim().split('\n').slice(-20).join('\n')}`);
  const name = /^\s*name\s*=\s*"([^"]+)"/m.exec(fs.readFileSync(path.join(dir, 'Cargo.toml'), 'utf8'))?.[1] ?? 'plugin';
  const built = path.join(targetDir, TARGET, 'release', `${name.replace(/-/g, '_')}.wasm`);
  fs.mkdirSync(outDir, { recursive: true });
  const wasm = path.join(outDir, 'plugin.wasm');
  fs.copyFileSync(built, wasm);
  return { wasm, rustc, ms: performance.now() - started, lockHash };
}
