// Runs workflows under act (nektos/act, built by test/infra/install-act.sh)
// in host mode: no Docker, the steps run on this machine as on a self-hosted
// runner. Third-party actions come from the local stand-ins in
// test/infra/act/actions, mapped to the exact commits the workflows pin; the
// action under test (and the reusable workflow) come from a copy of this
// working tree, never from the network.
import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
const STANDINS = path.join(ROOT, 'test', 'infra', 'act', 'actions');
/** The third-party actions that have a stand-in. */
const STANDIN_ACTIONS = ['actions/checkout', 'actions/upload-artifact', 'actions/download-artifact', 'actions/attest-build-provenance'];

/** The act binary (`npm test` builds it and sets ACT); throws, never skips, when it is missing. */
export function actBinary(): string {
  const bin = process.env.ACT;
  if (!bin) throw new Error('ACT is not set: run the tests with `npm test`, which builds act (test/infra/install-act.sh)');
  if (!fs.existsSync(bin)) throw new Error(`${bin} does not exist`);
  return bin;
}

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.email=act@127.0.0.1', '-c', 'user.name=act', '-c', 'commit.gpgsign=false', ...args], { cwd: dir, encoding: 'utf8' }).trim();
}

/** Makes `dir` a git repository with one commit of its files (act reads the commit and ref from git); returns the commit. */
export function commitAll(dir: string): string {
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'snapshot');
  return git(dir, 'rev-parse', 'HEAD');
}

/**
 * A copy of this repository as a user would get it from GitHub: the action
 * (action.yml, dist/), the workflows, the reference plugin and the test
 * workflows, without node_modules. The action runs from dist/ as committed.
 */
export function copyOfThisRepository(dest: string): string {
  const skip = new Set(['node_modules', '.git', 'build', '.asm-wasm', 'bench']);
  fs.mkdirSync(dest, { recursive: true });
  for (const entry of ['action.yml', 'dist', '.github', 'plugin', 'test/infra/act', 'package.json']) {
    fs.cpSync(path.join(ROOT, entry), path.join(dest, entry), {
      recursive: true,
      filter: (f) => path.relative(ROOT, f).split(path.sep).every((part) => !skip.has(part)),
    });
  }
  return dest;
}

/** The `--local-repository` mappings for every pinned commit of a stand-in action that the files name. */
export function standInMappings(files: string[]): string[] {
  const refs = new Set<string>();
  for (const file of files) {
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/uses:\s*([\w.-]+\/[\w.-]+)@([0-9a-f]{40})/g)) {
      if (STANDIN_ACTIONS.includes(m[1])) refs.add(`${m[1]}@${m[2]}`);
    }
  }
  return [...refs].map((ref) => `${ref}=${path.join(STANDINS, ref.split('@')[0].split('/')[1])}`);
}

export interface ActRun {
  code: number;
  log: string;
  /** Lines of `name=value` the workflow wrote to $ACT_RESULT, if any. */
  result: Record<string, string>;
}

export interface ActOptions {
  /** The repository the workflow runs in (a git working tree). */
  workdir: string;
  /** Workflow file, relative to workdir. */
  workflow: string;
  event: 'push' | 'pull_request' | 'workflow_dispatch';
  payload?: Record<string, unknown>;
  /** Only this job (act -j). */
  job?: string;
  vars?: Record<string, string>;
  secrets?: Record<string, string>;
  /** owner/repo@ref=dir: a reusable workflow or an action served from a local directory. */
  localRepositories?: string[];
  /** owner/repo@ref=dir, for the checkout stand-in (a checkout of another repository or ref). */
  checkouts?: string[];
  /** The Envoy binary the action finds on PATH. */
  envoyPath: string;
  /** Variables of the machine the runner runs on, which act in host mode hands to every step (e.g. NODE_EXTRA_CA_CERTS). */
  env?: Record<string, string>;
  /** github.repository; default org/plugin-repo. */
  repository?: string;
  /** Where act's Actions cache server keeps its entries (default: act's own, shared by every run). */
  cacheServerPath?: string;
  /**
   * act's cache of actions (default: one shared by every run). In host mode
   * its tool_cache folder is the runner's RUNNER_TOOL_CACHE, which a job's
   * `env:` does not override.
   */
  actionCachePath?: string;
  timeoutMs?: number;
}

/** Where act keeps its action cache and tool cache across runs (outside the repository). */
function actHome(): string {
  const cache = process.env.ASM_WASM_CACHE ?? path.join(os.homedir(), '.cache', 'asm-wasm-action');
  const dir = path.join(cache, 'act-home');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export async function runAct(options: ActOptions): Promise<ActRun> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'asm-wasm-act-'));
  const write = (name: string, map: Record<string, string> = {}) => {
    const file = path.join(tmp, name);
    // act reads these as dotenv files; values are JSON-quoted so multi-line secrets survive.
    fs.writeFileSync(file, Object.entries(map).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join('\n') + '\n', { mode: 0o600 });
    return file;
  };
  const eventFile = path.join(tmp, 'event.json');
  fs.writeFileSync(eventFile, JSON.stringify(options.payload ?? {}));
  const resultFile = path.join(tmp, 'result');
  fs.writeFileSync(resultFile, '');
  const artifacts = path.join(tmp, 'artifacts');
  fs.mkdirSync(artifacts);
  const workflowFiles = [path.join(options.workdir, options.workflow), ...(options.localRepositories ?? []).map((l) => l.split('=')[1])].flatMap((p) =>
    fs.statSync(p).isDirectory()
      ? fs.readdirSync(path.join(p, '.github', 'workflows')).filter((f) => f.endsWith('.yml')).map((f) => path.join(p, '.github', 'workflows', f))
      : [p],
  );
  const args = [
    options.event,
    '-W', options.workflow,
    '-e', eventFile,
    ...(options.job ? ['-j', options.job] : []),
    // Host mode: the steps run here, as on a self-hosted runner; no Docker.
    '-P', 'ubuntu-latest=-self-hosted',
    '--action-cache-path', options.actionCachePath ?? path.join(actHome(), 'actions'),
    '--action-offline-mode',
    '--cache-server-addr', '127.0.0.1',
    ...(options.cacheServerPath ? ['--cache-server-path', options.cacheServerPath] : []),
    '--artifact-server-addr', '127.0.0.1',
    '--var-file', write('vars', options.vars),
    '--secret-file', write('secrets', options.secrets),
    '--env', `GITHUB_REPOSITORY=${options.repository ?? 'org/plugin-repo'}`,
    // Anything not served locally would be fetched from here, a closed local port, and fail.
    '--github-instance', '127.0.0.1:9',
    ...[...standInMappings(workflowFiles), ...(options.localRepositories ?? [])].flatMap((l) => ['--local-repository', l]),
  ];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // No act configuration of this machine's user applies.
    XDG_CONFIG_HOME: path.join(tmp, 'config'),
    // act asks its project's server for notices unless told not to.
    ...options.env,
    ACT_DISABLE_VERSION_CHECK: '1',
    ACT_STANDIN_ARTIFACTS: artifacts,
    ACT_STANDIN_REPOSITORIES: (options.checkouts ?? []).join('\n'),
    ACT_RESULT: resultFile,
    // What the runner gives a job granted `id-token: write` (act gives none):
    // a closed local port, so nothing could fetch a token from it.
    ACTIONS_ID_TOKEN_REQUEST_URL: 'http://127.0.0.1:9/oidc-token',
    // Envoy on PATH, as on a self-hosted runner that has it: the action's
    // installer takes it and downloads nothing.
    PATH: `${path.dirname(options.envoyPath)}${path.delimiter}${process.env.PATH}`,
  };
  for (const k of Object.keys(env)) if (k.startsWith('GITHUB_')) delete env[k];
  for (const k of ['RUNNER_TEMP', 'RUNNER_TOOL_CACHE', 'ASM_WASM_INPUTS', 'ASM_WASM_STEPS']) delete env[k];
  const log = await new Promise<{ code: number; log: string }>((resolve) => {
    const child = spawn(actBinary(), args, { cwd: options.workdir, env, detached: true });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => {
      out += `\n[test] act took longer than ${options.timeoutMs ?? 600_000} ms; killed\n`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, options.timeoutMs ?? 600_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, log: out });
    });
  });
  // ASM_WASM_ACT_LOGS=<dir> keeps every act log there, to read after the run.
  if (process.env.ASM_WASM_ACT_LOGS) {
    fs.mkdirSync(process.env.ASM_WASM_ACT_LOGS, { recursive: true });
    fs.writeFileSync(path.join(process.env.ASM_WASM_ACT_LOGS, `${path.basename(options.workflow, '.yml')}-${options.event}-${Date.now()}.log`), log.log);
  }
  const result: Record<string, string> = {};
  for (const line of fs.readFileSync(resultFile, 'utf8').split('\n')) if (line.includes('=')) result[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
  fs.rmSync(tmp, { recursive: true, force: true });
  return { ...log, result };
}

/** The `✅ Success - <job> <step>` / `❌ Failure` lines of an act log, as [job, step, outcome]. */
export function stepOutcomes(log: string): Array<[string, string, 'success' | 'failure']> {
  const out: Array<[string, string, 'success' | 'failure']> = [];
  for (const m of log.matchAll(/^\[([^\]]+)\]\s+(✅|❌)\s+(Success|Failure) - (?:Main |Pre |Post )?(.+?)(?: \[[^\]]*\])?$/gm)) {
    out.push([m[1], m[4], m[2] === '✅' ? 'success' : 'failure']);
  }
  return out;
}
