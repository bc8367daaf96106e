// Stage 1, toolchain: the exact AssemblyScript compiler and SDK the plugin's
// lockfile pins, installed once per runner into the tool cache and linked as
// <plugin-dir>/node_modules.
//
// The cache key is the compiler version plus a hash of the lockfile's
// dependency entries, so a plugin that changes any dependency gets a fresh
// install and two plugins with the same dependencies share one. On GitHub's
// hosted runners the tool cache starts empty in every job, so the installed
// folder is also saved with @actions/cache when that service is available.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import * as tc from '@actions/tool-cache';
import { makeTempDir } from '../github.js';
import { UserError } from '../errors.js';
import { run } from '../exec.js';

export const TOOL_NAME = 'asm-wasm-assemblyscript';

export interface ToolchainOptions {
  pluginDir: string;
  /** Overrides the compiler version from the lockfile. */
  assemblyscriptVersion?: string;
}

export interface ToolchainResult {
  assemblyscriptVersion: string;
  /** True when nothing was downloaded. */
  cacheHit: boolean;
  /** Where the compiler came from: the tool cache, the Actions cache, npm, or the plugin's own node_modules. */
  source: 'tool-cache' | 'actions-cache' | 'npm' | 'plugin-node_modules';
  /** The node_modules the plugin builds with. */
  nodeModules: string;
  ascPath: string;
  cacheKey: string;
}

interface Lock {
  packages?: Record<string, { version?: string }>;
}

function readJson<T>(file: string, what: string): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (err) {
    throw new UserError(`${what} ${file} could not be read: ${(err as Error).message}`);
  }
}

/** The compiler version the lockfile pins, and the cache key for its dependency set. */
export function lockInfo(pluginDir: string): { version: string; hash: string } {
  const pkgFile = path.join(pluginDir, 'package.json');
  const lockFile = path.join(pluginDir, 'package-lock.json');
  if (!fs.existsSync(pkgFile)) {
    throw new UserError(`input \`plugin-dir\`: ${pkgFile} does not exist; the plugin directory needs a package.json that depends on assemblyscript`);
  }
  if (!fs.existsSync(lockFile)) {
    throw new UserError(
      `${lockFile} does not exist; run \`npm install\` in ${pluginDir} and commit package-lock.json, so every build uses the same compiler`,
    );
  }
  const lock = readJson<Lock>(lockFile, 'the lockfile');
  const packages = lock.packages ?? {};
  const version = packages['node_modules/assemblyscript']?.version;
  if (!version) {
    throw new UserError(`${lockFile} pins no assemblyscript; add it to the plugin: \`npm install --save-exact --save-dev assemblyscript@0.14.13\``);
  }
  // The root entry names the plugin; only the dependency entries decide what is installed.
  const deps = Object.keys(packages)
    .filter((k) => k !== '')
    .sort()
    .map((k) => [k, packages[k]]);
  const hash = crypto.createHash('sha256').update(JSON.stringify(deps)).digest('hex').slice(0, 16);
  return { version, hash };
}

/** A tool-cache version: semver with the dependency hash as a prerelease tag. */
export function cacheVersion(asVersion: string, hash: string): string {
  return `${asVersion}-h${hash}`;
}

function ascOf(nodeModules: string): string {
  return path.join(nodeModules, '.bin', 'asc');
}

function installedVersion(nodeModules: string): string | undefined {
  const pkg = path.join(nodeModules, 'assemblyscript', 'package.json');
  if (!fs.existsSync(pkg)) return undefined;
  return readJson<{ version: string }>(pkg, 'package').version;
}

async function npmInstall(pluginDir: string, asVersion: string, override: boolean): Promise<string> {
  const work = makeTempDir('toolchain');
  fs.copyFileSync(path.join(pluginDir, 'package.json'), path.join(work, 'package.json'));
  fs.copyFileSync(path.join(pluginDir, 'package-lock.json'), path.join(work, 'package-lock.json'));
  const quiet = ['--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'];
  await run('npm', ['ci', ...quiet], { cwd: work, purpose: 'install the plugin dependencies from its lockfile' });
  if (override) {
    await run('npm', ['install', '--no-save', ...quiet, `assemblyscript@${asVersion}`], {
      cwd: work,
      purpose: `install AssemblyScript ${asVersion} (input assemblyscript-version)`,
    });
  }
  return work;
}

function link(pluginDir: string, nodeModules: string): void {
  const target = path.join(pluginDir, 'node_modules');
  const stat = fs.lstatSync(target, { throwIfNoEntry: false });
  if (stat?.isSymbolicLink()) fs.unlinkSync(target);
  fs.symlinkSync(nodeModules, target, 'dir');
}

export async function installToolchain(options: ToolchainOptions): Promise<ToolchainResult> {
  const pluginDir = options.pluginDir;
  const lock = lockInfo(pluginDir);
  const asVersion = options.assemblyscriptVersion ?? lock.version;
  const override = asVersion !== lock.version;
  const key = cacheVersion(asVersion, lock.hash);
  core.info(`AssemblyScript ${asVersion}${override ? ` (input; the lockfile pins ${lock.version})` : ' (pinned by the lockfile)'}, dependency hash ${lock.hash}`);

  // A plugin that already has its own node_modules (a developer's checkout)
  // builds with them, provided the compiler version is the one wanted.
  const own = path.join(pluginDir, 'node_modules');
  const ownStat = fs.lstatSync(own, { throwIfNoEntry: false });
  if (ownStat?.isDirectory() && !ownStat.isSymbolicLink()) {
    const have = installedVersion(own);
    if (have === asVersion) {
      core.info(`using ${own} (AssemblyScript ${have})`);
      return { assemblyscriptVersion: asVersion, cacheHit: true, source: 'plugin-node_modules', nodeModules: own, ascPath: ascOf(own), cacheKey: key };
    }
    throw new UserError(
      `${own} holds AssemblyScript ${have ?? '(none)'} but ${asVersion} is wanted; delete that folder (the toolchain stage installs the right one) or run \`npm ci\` in ${pluginDir}`,
    );
  }

  let source: ToolchainResult['source'] = 'tool-cache';
  let dir = tc.find(TOOL_NAME, key);
  const actionsKey = `asm-wasm-toolchain-${process.platform}-${process.arch}-${key}`;
  const toolPath = path.join(process.env.RUNNER_TOOL_CACHE ?? '', TOOL_NAME, key);
  // The Actions cache client (a large part of the bundle) is loaded only on a tool-cache miss.
  const cache = dir ? undefined : await import('@actions/cache');
  const actionsCache = cache !== undefined && cache.isFeatureAvailable();
  if (cache && actionsCache) {
    try {
      if (await cache.restoreCache([toolPath], actionsKey)) {
        dir = tc.find(TOOL_NAME, key);
        if (dir) source = 'actions-cache';
      }
    } catch (err) {
      core.warning(`could not restore the toolchain from the Actions cache: ${(err as Error).message}`);
    }
  }
  if (!dir) {
    source = 'npm';
    core.info(`not in the tool cache; installing with npm ci`);
    const work = await npmInstall(pluginDir, asVersion, override);
    // The whole folder is cached, so the packages stay in a folder named
    // node_modules and Node's module resolution works from the cached copy.
    dir = await tc.cacheDir(work, TOOL_NAME, key);
    fs.rmSync(work, { recursive: true, force: true });
    if (cache && actionsCache) {
      try {
        await cache.saveCache([toolPath], actionsKey);
      } catch (err) {
        core.warning(`could not save the toolchain to the Actions cache: ${(err as Error).message}`);
      }
    }
  } else {
    core.info(`found in the tool cache: ${dir}`);
  }
  const nodeModules = path.join(dir, 'node_modules');
  const have = installedVersion(nodeModules);
  if (have !== asVersion) {
    throw new UserError(`the cached toolchain in ${dir} has AssemblyScript ${have ?? '(none)'}, not ${asVersion}; delete that folder and run again`);
  }
  link(pluginDir, nodeModules);
  return { assemblyscriptVersion: asVersion, cacheHit: source !== 'npm', source, nodeModules, ascPath: ascOf(nodeModules), cacheKey: key };
}
