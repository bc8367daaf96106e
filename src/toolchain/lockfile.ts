// The plugin's lockfile: which package manager it belongs to, the compiler
// and SDK versions it pins, and a key for the exact set of packages it
// installs. npm (package-lock.json / npm-shrinkwrap.json, lockfile versions
// 1–3), pnpm (pnpm-lock.yaml, lockfile versions 5.x–9.x) and yarn 1
// (yarn.lock) are read, each in its own format, as actions/setup-node
// recognises them by file name.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { UserError } from '../errors.js';

export type PackageManager = 'npm' | 'pnpm' | 'yarn';

/** Lockfile names, in the order they are looked for. */
export const LOCKFILES: Array<{ file: string; manager: PackageManager }> = [
  { file: 'package-lock.json', manager: 'npm' },
  { file: 'npm-shrinkwrap.json', manager: 'npm' },
  { file: 'pnpm-lock.yaml', manager: 'pnpm' },
  { file: 'yarn.lock', manager: 'yarn' },
];

export interface PackageJson {
  name?: string;
  version?: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  packageManager?: string;
}

export interface LockInfo {
  manager: PackageManager;
  /** The lockfile's path. */
  file: string;
  /** The lockfile format's version as the file states it ("3", "9.0", "1"). */
  lockfileVersion: string;
  /** Every direct dependency the lockfile resolves: name → exact version. */
  direct: Record<string, string>;
  /** The AssemblyScript version the lockfile pins. */
  assemblyscript: string;
  /** Dependencies that live in a local folder (file:, link:, portal:, workspace:), which no cache key can cover. */
  local: string[];
  /** A short hash of what the lockfile installs (for the tool-cache key). */
  hash: string;
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`${file} could not be read: ${(err as Error).message}`);
  }
}

export function readPackageJson(pluginDir: string): PackageJson {
  const file = path.join(pluginDir, 'package.json');
  if (!fs.existsSync(file)) {
    throw new UserError(`input \`plugin-dir\`: ${file} does not exist; the plugin directory needs a package.json that depends on assemblyscript`);
  }
  try {
    return JSON.parse(readText(file)) as PackageJson;
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${file} is not valid JSON (${(err as Error).message}); fix package.json`);
  }
}

/** Direct dependency specs from package.json (dependencies win over devDependencies, as npm does). */
export function directSpecs(pkg: PackageJson): Record<string, string> {
  return { ...pkg.optionalDependencies, ...pkg.devDependencies, ...pkg.dependencies };
}

const LOCAL_SPEC = /^(file|link|portal|workspace):/;

/** Which lockfile the plugin has. Several of different managers is an error: which one is current cannot be known. */
export function findLockfile(pluginDir: string): { file: string; manager: PackageManager } {
  const found = LOCKFILES.filter((l) => fs.existsSync(path.join(pluginDir, l.file)));
  const managers = [...new Set(found.map((l) => l.manager))];
  if (managers.length > 1) {
    throw new UserError(
      `${pluginDir} has lockfiles of several package managers (${found.map((l) => l.file).join(', ')}); delete the ones you no longer use, so every build installs the same packages`,
    );
  }
  if (found.length === 0) {
    throw new UserError(
      `${pluginDir} has no lockfile (${LOCKFILES.map((l) => l.file).join(', ')}); run \`npm install\` (or pnpm/yarn) in the plugin directory and commit the lockfile, so every build uses the same compiler`,
    );
  }
  return { file: path.join(pluginDir, found[0].file), manager: found[0].manager };
}

/** Strips pnpm's peer suffix ("0.27.1(typescript@5.0.0)") and npm aliases. */
function bareVersion(v: string): string {
  return v.replace(/\(.*$/, '').replace(/_.*$/, '').trim();
}

function npmLock(text: string, file: string, pkg: PackageJson): Omit<LockInfo, 'manager' | 'file' | 'local' | 'assemblyscript'> {
  let lock: { lockfileVersion?: number; packages?: Record<string, { version?: string }>; dependencies?: Record<string, { version?: string }> };
  try {
    lock = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${file} is not valid JSON (${(err as Error).message}); run \`npm install\` in the plugin directory to write it again`);
  }
  const direct: Record<string, string> = {};
  const names = Object.keys(directSpecs(pkg));
  let entries: Array<[string, unknown]>;
  if (lock.packages) {
    for (const n of names) {
      const v = lock.packages[`node_modules/${n}`]?.version;
      if (v) direct[n] = v;
    }
    // The root entry names the plugin; only the dependency entries decide what is installed.
    entries = Object.keys(lock.packages).filter((k) => k !== '').sort().map((k) => [k, lock.packages![k]]);
  } else {
    for (const n of names) {
      const v = lock.dependencies?.[n]?.version;
      if (v) direct[n] = v;
    }
    entries = Object.keys(lock.dependencies ?? {}).sort().map((k) => [k, lock.dependencies![k]]);
  }
  return { lockfileVersion: String(lock.lockfileVersion ?? 1), direct, hash: shortHash(JSON.stringify(entries)) };
}

type PnpmDeps = Record<string, string | { version?: string; specifier?: string }>;

function pnpmLock(text: string, file: string): Omit<LockInfo, 'manager' | 'file' | 'local' | 'assemblyscript'> {
  let lock: {
    lockfileVersion?: string | number;
    importers?: Record<string, { dependencies?: PnpmDeps; devDependencies?: PnpmDeps; optionalDependencies?: PnpmDeps }>;
    dependencies?: PnpmDeps;
    devDependencies?: PnpmDeps;
    optionalDependencies?: PnpmDeps;
  };
  try {
    lock = YAML.parse(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new UserError(`${file} is not valid YAML (${(err as Error).message}); run \`pnpm install\` in the plugin directory to write it again`);
  }
  if (!lock || typeof lock !== 'object') throw new UserError(`${file} is empty; run \`pnpm install\` in the plugin directory`);
  // Lockfile 5.x and 6.x without workspaces list the root's dependencies at the
  // top; 6.x with workspaces and 9.x list them under importers['.'].
  const root = lock.importers?.['.'] ?? lock;
  const direct: Record<string, string> = {};
  for (const group of [root.optionalDependencies, root.devDependencies, root.dependencies]) {
    for (const [name, entry] of Object.entries(group ?? {})) {
      const v = typeof entry === 'string' ? entry : entry?.version;
      if (v) direct[name] = bareVersion(v);
    }
  }
  return { lockfileVersion: String(lock.lockfileVersion ?? ''), direct, hash: shortHash(text) };
}

/**
 * yarn 1's lockfile: blocks headed by one or more `name@range` keys, each
 * with an indented `version "x.y.z"` line. yarn 2+ writes YAML with a
 * __metadata block and installs through Plug'n'Play, which the compiler's
 * module resolution does not follow: that is refused with the fix.
 */
function yarnLock(text: string, file: string, pkg: PackageJson): Omit<LockInfo, 'manager' | 'file' | 'local' | 'assemblyscript'> {
  if (/^__metadata:/m.test(text)) {
    throw new UserError(
      `${file} is a yarn 2+ lockfile, which this action does not install (Plug'n'Play hides node_modules from the compiler); use yarn 1, npm or pnpm for the plugin`,
    );
  }
  const specs = directSpecs(pkg);
  const byKey = new Map<string, string>();
  let keys: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    if (!/^\s/.test(line)) {
      keys = line
        .replace(/:\s*$/, '')
        .split(/,\s*/)
        .map((k) => k.trim().replace(/^"|"$/g, ''));
      continue;
    }
    const m = /^\s+version\s+"?([^"\s]+)"?/.exec(line);
    if (m) for (const k of keys) byKey.set(k, m[1]);
  }
  const direct: Record<string, string> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const v = byKey.get(`${name}@${spec}`);
    if (v) direct[name] = v;
  }
  return { lockfileVersion: '1', direct, hash: shortHash(text) };
}

export function shortHash(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** Reads the plugin's lockfile. Every problem is a UserError naming the file and the fix. */
export function readLock(pluginDir: string): LockInfo {
  const pkg = readPackageJson(pluginDir);
  const { file, manager } = findLockfile(pluginDir);
  const text = readText(file);
  const parsed = manager === 'npm' ? npmLock(text, file, pkg) : manager === 'pnpm' ? pnpmLock(text, file) : yarnLock(text, file, pkg);
  const specs = directSpecs(pkg);
  const local = Object.entries(specs)
    .filter(([, spec]) => LOCAL_SPEC.test(spec))
    .map(([name]) => name);
  const assemblyscript = parsed.direct.assemblyscript;
  if (!assemblyscript) {
    const fix =
      manager === 'npm'
        ? '`npm install --save-exact --save-dev assemblyscript@0.28.20`'
        : manager === 'pnpm'
          ? '`pnpm add --save-exact --save-dev assemblyscript@0.28.20`'
          : '`yarn add --exact --dev assemblyscript@0.28.20`';
    throw new UserError(
      specs.assemblyscript
        ? `${file} does not pin assemblyscript, though package.json asks for ${specs.assemblyscript}; the lockfile is out of date: run ${manager} install in the plugin directory and commit it`
        : `${file} pins no assemblyscript; add the compiler to the plugin: ${fix}`,
    );
  }
  // A local folder's contents are part of what gets installed.
  let hash = parsed.hash;
  if (local.length > 0) hash = shortHash(hash + local.map((n) => `${n}:${folderHash(path.resolve(pluginDir, specs[n].replace(LOCAL_SPEC, '')))}`).join(','));
  return { manager, file, lockfileVersion: parsed.lockfileVersion, direct: parsed.direct, assemblyscript, local, hash };
}

/** A hash of a folder's files (names and contents), node_modules and .git excluded. */
export function folderHash(dir: string): string {
  const h = crypto.createHash('sha256');
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      h.update(`missing:${d}`);
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name === 'node_modules' || e.name === '.git') continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        h.update(path.relative(dir, p));
        h.update(fs.readFileSync(p));
      }
    }
  };
  if (fs.existsSync(dir) && fs.statSync(dir).isFile()) h.update(fs.readFileSync(dir));
  else walk(dir);
  return h.digest('hex').slice(0, 16);
}

/** One package the lockfile installs, as the SBOM lists it. */
export interface LockedPackage {
  name: string;
  version: string;
  /** Where the package manager downloads it from, when the lockfile says. */
  resolved?: string;
  /** Subresource-integrity text ("sha512-<base64>"), when the lockfile says. */
  integrity?: string;
  /** Installed only as a development dependency (every build tool is one). */
  dev?: boolean;
}

/**
 * Every package the plugin's lockfile installs (not only the direct ones),
 * sorted by name and version, each name@version once. A package that lives
 * in a local folder has no version in some formats and is left out: it is
 * not an npm package a purl could name.
 */
export function lockPackages(pluginDir: string): LockedPackage[] {
  const { file, manager } = findLockfile(pluginDir);
  const text = readText(file);
  const found = manager === 'npm' ? npmPackages(text, file) : manager === 'pnpm' ? pnpmPackages(text, file) : yarnPackages(text, file);
  const byKey = new Map<string, LockedPackage>();
  for (const p of found) {
    if (!p.name || !p.version || LOCAL_SPEC.test(p.version)) continue;
    const key = `${p.name}@${p.version}`;
    const seen = byKey.get(key);
    // One install of a package that is not dev-only makes it not dev-only.
    if (seen) seen.dev = seen.dev && p.dev;
    else byKey.set(key, { ...p });
  }
  return [...byKey.values()].sort((a, b) => (a.name === b.name ? a.version.localeCompare(b.version) : a.name < b.name ? -1 : 1));
}

function npmPackages(text: string, file: string): LockedPackage[] {
  type Entry = { name?: string; version?: string; resolved?: string; integrity?: string; dev?: boolean; link?: boolean; dependencies?: Record<string, Entry> };
  let lock: { packages?: Record<string, Entry>; dependencies?: Record<string, Entry> };
  try {
    lock = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${file} is not valid JSON (${(err as Error).message}); run \`npm install\` in the plugin directory to write it again`);
  }
  const out: LockedPackage[] = [];
  const entry = (name: string, e: Entry): LockedPackage => ({ name, version: e.version ?? '', resolved: e.resolved, integrity: e.integrity, dev: !!e.dev });
  if (lock.packages) {
    // Lockfile 2 and 3: "node_modules/a/node_modules/@s/b" installs @s/b; an alias keeps the real name in `name`.
    for (const [key, e] of Object.entries(lock.packages)) {
      if (key === '' || e.link || !key.includes('node_modules/')) continue;
      out.push(entry(e.name ?? key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length), e));
    }
    return out;
  }
  // Lockfile 1: nested `dependencies`.
  const walk = (deps: Record<string, Entry> | undefined) => {
    for (const [name, e] of Object.entries(deps ?? {})) {
      out.push(entry(name, e));
      walk(e.dependencies);
    }
  };
  walk(lock.dependencies);
  return out;
}

function pnpmPackages(text: string, file: string): LockedPackage[] {
  let lock: { packages?: Record<string, { resolution?: { integrity?: string; tarball?: string }; dev?: boolean; name?: string; version?: string }> };
  try {
    lock = YAML.parse(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new UserError(`${file} is not valid YAML (${(err as Error).message}); run \`pnpm install\` in the plugin directory to write it again`);
  }
  const out: LockedPackage[] = [];
  for (const [key, e] of Object.entries(lock?.packages ?? {})) {
    // 9.x: "name@1.0.0" and "@s/name@1.0.0(peer@2)"; 6.x: "/name@1.0.0"; 5.x: "/name/1.0.0".
    const k = key.replace(/^\//, '').replace(/\(.*$/, '');
    let name: string;
    let version: string;
    const at = k.lastIndexOf('@');
    if (at > 0) {
      name = k.slice(0, at);
      version = k.slice(at + 1);
    } else {
      const slash = k.lastIndexOf('/');
      name = k.slice(0, slash);
      version = k.slice(slash + 1);
    }
    out.push({ name: e?.name ?? name, version: bareVersion(e?.version ?? version), resolved: e?.resolution?.tarball, integrity: e?.resolution?.integrity, dev: e?.dev });
  }
  return out;
}

function yarnPackages(text: string, file: string): LockedPackage[] {
  if (/^__metadata:/m.test(text)) {
    throw new UserError(`${file} is a yarn 2+ lockfile, which this action does not install; use yarn 1, npm or pnpm for the plugin`);
  }
  const out: LockedPackage[] = [];
  let current: LockedPackage | undefined;
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    if (!/^\s/.test(line)) {
      // "name@range, name@other:" or "\"@s/name@range\":": the name is the first key up to its last @.
      const first = line.replace(/:\s*$/, '').split(/,\s*/)[0].trim().replace(/^"|"$/g, '');
      current = { name: first.slice(0, first.lastIndexOf('@')), version: '' };
      out.push(current);
      continue;
    }
    const m = /^\s+(version|resolved|integrity)\s+"?([^"\s]+)"?/.exec(line);
    if (m && current) current[m[1] as 'version' | 'resolved' | 'integrity'] = m[2];
  }
  return out;
}
