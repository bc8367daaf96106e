// Stage 1, toolchain: the exact AssemblyScript compiler and SDK the plugin's
// lockfile pins (npm, pnpm or yarn 1), installed once per runner into the
// tool cache and linked as <plugin-dir>/node_modules.
//
// The cache key is the compiler version plus a hash of what the lockfile
// installs, so a plugin that changes any dependency gets a fresh install and
// two plugins with the same dependencies share one. On GitHub's hosted
// runners the tool cache starts empty in every job, so the installed folder
// is also saved with @actions/cache when that service is available. An
// install is checked (every direct dependency present, the compiler the one
// pinned) before it is cached: a broken install is never kept.
//
// A plugin that depends on a local folder (`file:../sdk`) is installed in
// place, in its own node_modules, and not cached: the folder's path only
// means something next to the plugin.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { log } from '../log.js';
import * as tc from '@actions/tool-cache';
import { makeTempDir } from '../github.js';
import { UserError } from '../errors.js';
import { run } from '../exec.js';
import { cacheKey, openActionsCache } from '../actions-cache.js';
import { checkSdks, compilerLine, type SdkCheck } from './compat.js';
import { directSpecs, readLock, readPackageJson, type LockInfo, type PackageManager } from './lockfile.js';

export const TOOL_NAME = 'asm-wasm-assemblyscript';

export interface ToolchainOptions {
  pluginDir: string;
  /** Overrides the compiler version from the lockfile. */
  assemblyscriptVersion?: string;
  /** Environment for the package manager (no secrets). */
  env?: Record<string, string>;
}

/** The plugin's SDKs do not fit its compiler: what each needs, for the summary's table. */
export class SdkMismatchError extends UserError {
  constructor(
    readonly problems: string[],
    readonly compilerVersion: string,
    readonly checks: SdkCheck[],
  ) {
    super(problems.join('; '));
  }
}

export interface ToolchainResult {
  assemblyscriptVersion: string;
  /** True when nothing was downloaded. */
  cacheHit: boolean;
  /** Where the compiler came from: the tool cache, the Actions cache, a fresh install, an install in place, or the plugin's own node_modules. */
  source: 'tool-cache' | 'actions-cache' | 'npm' | 'in-place' | 'plugin-node_modules';
  packageManager: PackageManager;
  lockfile: string;
  /** The plugin's direct dependencies as locked (name → version). */
  direct: Record<string, string>;
  /** The SDKs found and the compiler each needs. */
  sdks: SdkCheck[];
  /** The node_modules the plugin builds with. */
  nodeModules: string;
  ascPath: string;
  cacheKey: string;
}

/** A tool-cache version: semver with the dependency hash as a prerelease tag. */
export function cacheVersion(asVersion: string, hash: string): string {
  return `${asVersion}-h${hash}`;
}

function ascOf(nodeModules: string): string {
  return path.join(nodeModules, '.bin', 'asc');
}

export function packageVersion(nodeModules: string, name: string): string | undefined {
  const pkg = path.join(nodeModules, name, 'package.json');
  if (!fs.existsSync(pkg)) return undefined;
  try {
    return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** The assemblyscript peer ranges that installed packages declare (for SDKs the compat table does not know). */
function peerRanges(nodeModules: string, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const file = path.join(nodeModules, n, 'package.json');
    if (!fs.existsSync(file)) continue;
    try {
      const range = (JSON.parse(fs.readFileSync(file, 'utf8')) as { peerDependencies?: Record<string, string> }).peerDependencies?.assemblyscript;
      if (range) out[n] = range;
    } catch {
      // an unreadable package.json is caught by the install check
    }
  }
  return out;
}

/** Problems with an installed node_modules: a direct dependency missing, or not the compiler wanted. */
export function checkInstall(nodeModules: string, names: string[], asVersion: string): string[] {
  const problems: string[] = [];
  for (const n of names) {
    if (!fs.existsSync(path.join(nodeModules, n, 'package.json'))) problems.push(`${n} is missing from ${nodeModules}`);
  }
  const have = packageVersion(nodeModules, 'assemblyscript');
  if (have !== asVersion) problems.push(`${nodeModules} holds AssemblyScript ${have ?? '(none)'}, not ${asVersion}`);
  if (!fs.existsSync(ascOf(nodeModules))) problems.push(`${ascOf(nodeModules)} does not exist`);
  return problems;
}

/** The pnpm release that reads a lockfile: package.json's packageManager, else by lockfile version. */
export function pnpmFor(lockfileVersion: string, packageManager?: string): string {
  const pinned = /^pnpm@(\d+\.\d+\.\d+)/.exec(packageManager ?? '')?.[1];
  if (pinned) return pinned;
  const major = Number.parseFloat(lockfileVersion);
  if (major >= 9) return '9';
  if (major >= 6) return '8';
  if (major >= 5.4) return '7';
  return '6';
}

/** The install command for a lockfile, run in a folder that holds package.json and the lockfile. */
export function installCommand(lock: LockInfo, packageManager?: string): { command: string; args: string[] } {
  const quiet = ['--ignore-scripts'];
  if (lock.manager === 'npm') return { command: 'npm', args: ['ci', ...quiet, '--no-audit', '--no-fund', '--loglevel=error'] };
  if (lock.manager === 'pnpm') {
    // A flat node_modules (hoisted), as npm makes: the compiler resolves
    // packages by walking node_modules folders, and a flat folder can be
    // copied into the tool cache without links into a store.
    return {
      command: 'npx',
      args: ['--yes', `pnpm@${pnpmFor(lock.lockfileVersion, packageManager)}`, 'install', '--frozen-lockfile', ...quiet, '--config.node-linker=hoisted', '--reporter=append-only'],
    };
  }
  return { command: 'npx', args: ['--yes', 'yarn@1.22.22', 'install', '--frozen-lockfile', ...quiet, '--non-interactive', '--no-progress'] };
}

async function install(
  lock: LockInfo,
  pluginDir: string,
  into: string,
  asVersion: string,
  override: boolean,
  env: Record<string, string> | undefined,
): Promise<void> {
  const pkg = readPackageJson(pluginDir);
  if (into !== pluginDir) {
    fs.copyFileSync(path.join(pluginDir, 'package.json'), path.join(into, 'package.json'));
    fs.copyFileSync(lock.file, path.join(into, path.basename(lock.file)));
    for (const rc of ['.npmrc', '.yarnrc', 'pnpm-workspace.yaml']) {
      if (fs.existsSync(path.join(pluginDir, rc))) fs.copyFileSync(path.join(pluginDir, rc), path.join(into, rc));
    }
  }
  const cmd = installCommand(lock, pkg.packageManager);
  await run(cmd.command, cmd.args, { cwd: into, env, purpose: `install the plugin's dependencies from ${path.basename(lock.file)}` });
  if (override) {
    await run('npm', ['install', '--no-save', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', `assemblyscript@${asVersion}`], {
      cwd: into,
      env,
      purpose: `install AssemblyScript ${asVersion} (input assemblyscript-version)`,
    });
  }
}

function link(pluginDir: string, nodeModules: string): void {
  const target = path.join(pluginDir, 'node_modules');
  const stat = fs.lstatSync(target, { throwIfNoEntry: false });
  if (stat?.isSymbolicLink()) fs.unlinkSync(target);
  fs.symlinkSync(nodeModules, target, 'dir');
}

export async function installToolchain(options: ToolchainOptions): Promise<ToolchainResult> {
  const pluginDir = options.pluginDir;
  const lock = readLock(pluginDir);
  const asVersion = options.assemblyscriptVersion ?? lock.assemblyscript;
  const override = asVersion !== lock.assemblyscript;
  compilerLine(asVersion);
  const key = cacheVersion(asVersion, lock.hash);
  const names = Object.keys(directSpecs(readPackageJson(pluginDir)));
  log.info(
    `AssemblyScript ${asVersion}${override ? ` (input; ${path.basename(lock.file)} pins ${lock.assemblyscript})` : ` (pinned by ${path.basename(lock.file)})`}, ${lock.manager}, dependency hash ${lock.hash}`,
  );

  // The SDK and the compiler must fit before anything is downloaded.
  const before = checkSdks(lock.direct, asVersion);
  if (before.problems.length > 0) throw new SdkMismatchError(before.problems, asVersion, before.checks);
  for (const c of before.checks) log.info(`${c.sdk} ${c.sdkVersion} builds with AssemblyScript ${c.compiler}: ${asVersion} fits`);

  const finish = (nodeModules: string, source: ToolchainResult['source']): ToolchainResult => {
    // SDKs the table does not know are checked against their own peer range.
    const unknown = names.filter((n) => !before.checks.some((c) => c.sdk === n));
    const after = checkSdks(lock.direct, asVersion, peerRanges(nodeModules, unknown));
    if (after.problems.length > 0) throw new SdkMismatchError(after.problems, asVersion, after.checks);
    return {
      assemblyscriptVersion: asVersion,
      cacheHit: source !== 'npm' && source !== 'in-place',
      source,
      packageManager: lock.manager,
      lockfile: lock.file,
      direct: lock.direct,
      sdks: after.checks,
      nodeModules,
      ascPath: ascOf(nodeModules),
      cacheKey: key,
    };
  };

  // A plugin that already has its own node_modules (a developer's checkout)
  // builds with them, provided the compiler version is the one wanted.
  const own = path.join(pluginDir, 'node_modules');
  const ownStat = fs.lstatSync(own, { throwIfNoEntry: false });
  if (ownStat?.isDirectory() && !ownStat.isSymbolicLink()) {
    const have = packageVersion(own, 'assemblyscript');
    if (have === asVersion) {
      log.info(`using ${own} (AssemblyScript ${have})`);
      return finish(own, 'plugin-node_modules');
    }
    if (lock.local.length === 0) {
      throw new UserError(
        `${own} holds AssemblyScript ${have ?? '(none)'} but ${asVersion} is wanted; delete that folder (the toolchain stage installs the right one) or run \`${lock.manager} install\` in ${pluginDir}`,
      );
    }
  }

  if (lock.local.length > 0) {
    log.info(`the plugin depends on local folders (${lock.local.join(', ')}): installing in ${own}, not cached`);
    if (ownStat?.isSymbolicLink()) fs.unlinkSync(own);
    await install(lock, pluginDir, pluginDir, asVersion, override, options.env);
    const problems = checkInstall(own, names, asVersion);
    if (problems.length > 0) throw new UserError(`the install in ${pluginDir} is incomplete: ${problems.join('; ')}`);
    return finish(own, 'in-place');
  }

  let source: ToolchainResult['source'] = 'tool-cache';
  let dir = tc.find(TOOL_NAME, key);
  if (dir && checkInstall(path.join(dir, 'node_modules'), names, asVersion).length > 0) {
    log.warning(`the cached toolchain in ${dir} is incomplete; installing it again`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(`${dir}.complete`, { force: true });
    dir = '';
  }
  const actionsKey = cacheKey('asm-wasm-toolchain', process.platform, process.arch, key);
  const toolPath = path.join(process.env.RUNNER_TOOL_CACHE ?? '', TOOL_NAME, key);
  // The Actions cache (its client a large part of the bundle) is opened only on a tool-cache miss.
  const cache = dir ? undefined : await openActionsCache(`the toolchain ${key}`);
  if (cache && (await cache.restore([toolPath], actionsKey))) {
    // A restored install is checked as one found in the tool cache is.
    const restored = tc.find(TOOL_NAME, key);
    const problems = restored ? checkInstall(path.join(restored, 'node_modules'), names, asVersion) : ['it is not a complete tool-cache folder'];
    if (problems.length === 0) {
      dir = restored;
      source = 'actions-cache';
    } else {
      log.warning(`the toolchain restored from the Actions cache is not usable (${problems.join('; ')}); installing it again`);
      fs.rmSync(toolPath, { recursive: true, force: true });
    }
  }
  if (!dir) {
    source = 'npm';
    log.info(`not in the tool cache; installing with ${lock.manager}`);
    const work = makeTempDir('toolchain');
    try {
      await install(lock, pluginDir, work, asVersion, override, options.env);
      const problems = checkInstall(path.join(work, 'node_modules'), names, asVersion);
      if (problems.length > 0) throw new UserError(`the install from ${path.basename(lock.file)} is incomplete, so it is not cached: ${problems.join('; ')}`);
      // The whole folder is cached, so the packages stay in a folder named
      // node_modules and Node's module resolution works from the cached copy.
      dir = await tc.cacheDir(work, TOOL_NAME, key);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
    await cache?.save([toolPath], actionsKey);
  } else {
    log.info(`${source === 'actions-cache' ? 'restored into' : 'found in'} the tool cache: ${dir}`);
  }
  const nodeModules = path.join(dir, 'node_modules');
  link(pluginDir, nodeModules);
  return finish(nodeModules, source);
}

/**
 * The compiler the plugin's own node_modules holds, for a build without the
 * toolchain stage (a developer's checkout, or `asm-wasm build` after
 * `asm-wasm toolchain` in another process).
 */
export function installedToolchain(pluginDir: string): { nodeModules: string; compilerVersion: string; direct: Record<string, string> } {
  const nodeModules = path.join(pluginDir, 'node_modules');
  const compilerVersion = packageVersion(nodeModules, 'assemblyscript');
  if (!compilerVersion) {
    throw new UserError(`no AssemblyScript compiler in ${nodeModules}; run the toolchain stage first (input toolchain: true, or \`asm-wasm toolchain\`) or install the plugin's dependencies there`);
  }
  let direct: Record<string, string>;
  try {
    direct = readLock(pluginDir).direct;
  } catch {
    direct = directSpecs(readPackageJson(pluginDir));
  }
  return { nodeModules, compilerVersion, direct };
}
