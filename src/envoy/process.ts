// Starting and stopping a local Envoy. Every Envoy this module starts is
// stopped when the stage ends, on error, on timeout, and on Ctrl-C: the
// process-wide handlers below kill whatever is still running.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.js';
import { childEnv, tail } from '../exec.js';

export const REQUIRED_EXTENSIONS = ['envoy.filters.http.wasm', 'envoy.wasm.runtime.v8'];
const LOG_LIMIT = 8 * 1024 * 1024;

const running = new Set<ChildProcess>();
let handlersInstalled = false;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const child of running) child.kill('SIGKILL');
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}

export interface EnvoyProcess {
  adminUrl: string;
  listenerPort: number;
  /** Everything Envoy has logged so far. */
  log(): string;
  /** Resolves when the process has exited and its output is read, with its exit code or signal. */
  exited: Promise<string>;
  /** Whether the process is still running. */
  alive(): boolean;
  stop(): Promise<void>;
}

export interface StartOptions {
  binary: string;
  bootstrap: Record<string, unknown>;
  workDir: string;
  /** Component log levels, e.g. "wasm:info". */
  componentLogLevel?: string;
  readyTimeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function getText(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return { status: res.status, body: await res.text() };
}

/** One line of Envoy's log without its "[time][thread][level][logger] [source:line] " prefix. */
export function envoySaid(line: string): string {
  return line.replace(/^\[[^\]]*\]\[[^\]]*\]\[[^\]]*\]\[[^\]]*\] (\[[^\]]*\] )?/, '').trimEnd();
}

/** A trap Envoy reported: the exported function and Envoy's own words. */
export interface WasmTrap {
  /** The exported function that trapped, e.g. proxy_on_configure. */
  fn: string;
  /** Envoy's line, e.g. "Function: proxy_on_configure failed: Uncaught RuntimeError: unreachable". */
  line: string;
  /** The in-VM backtrace Envoy printed under it (present when the module has a name section). */
  backtrace: string[];
  /** Where the trap's line starts and its backtrace ends in the log. */
  start: number;
  end: number;
}

const TRAP_LINE = /^.*Function: (proxy_on_\w+|\w+) failed: [^\n]*$/gm;
const BACKTRACE_FRAMES = 6;

/** Every trap in an Envoy log, in order. */
export function findTraps(log: string): WasmTrap[] {
  const traps: WasmTrap[] = [];
  for (const m of log.matchAll(TRAP_LINE)) {
    const start = m.index;
    let end = start + m[0].length;
    const backtrace: string[] = [];
    // Envoy prints the backtrace as plain lines (no log prefix) right under the trap.
    const rest = log.slice(end + 1).split('\n');
    if (rest[0]?.startsWith('Proxy-Wasm plugin in-VM backtrace')) {
      end += rest[0].length + 1;
      for (const l of rest.slice(1)) {
        if (!/^\s+\d+:/.test(l)) break;
        backtrace.push(l.trim());
        end += l.length + 1;
      }
    }
    traps.push({ fn: m[1], line: envoySaid(m[0]), backtrace, start, end });
  }
  return traps;
}

/** Envoy's words for a trap, quoted, with a short backtrace. */
export function quoteTrap(t: WasmTrap): string {
  if (t.backtrace.length === 0) return `Envoy: "${t.line}"`;
  const shown = t.backtrace.slice(0, BACKTRACE_FRAMES);
  const more = t.backtrace.length - shown.length;
  return `Envoy: "${t.line}", backtrace: ${shown.join(' < ')}${more > 0 ? ` < … (${more} more)` : ''}`;
}

/** The lines the plugin itself logged (proxy_log), in order. */
function pluginLines(log: string): string[] {
  return log
    .split('\n')
    .map((l) => /\]\[wasm\] .*?wasm log [^:]*: (.*)$/.exec(l)?.[1]?.trimEnd())
    .filter((l): l is string => Boolean(l));
}

function firstLine(log: string, re: RegExp): string | undefined {
  const line = log.split('\n').find((l) => re.test(l));
  return line === undefined ? undefined : envoySaid(line);
}

/**
 * Turns the log of an Envoy that would not start into a sentence that says
 * what to change, quoting Envoy's own line(s) and keeping the plugin's own
 * last words (its log lines).
 */
export function explainStartFailure(log: string): string {
  const said = pluginLines(log);
  const last = said[said.length - 1];
  const traps = findTraps(log);
  const trap = traps[0];
  const trapped = trap ? `; it trapped in ${trap.fn}: ${quoteTrap(trap)}` : '';

  const missingImport = firstLine(log, /Failed to load Wasm module due to a missing import/);
  if (missingImport) {
    const name = /missing import: ?(\S+)/.exec(missingImport)?.[1] ?? '?';
    return `the module imports ${name}, which this Envoy does not provide (a host function of another proxy or SDK, or a missing --use flag); Envoy: "${missingImport}"`;
  }
  if (/Missing root context factory for root id/.test(log)) {
    const id = /Missing root context factory for root id: ?(\S*)/.exec(log)?.[1] ?? '';
    const own = said.find((l) => l.includes('Missing root context factory'));
    return `the plugin does not register root id "${id}"${own ? ` (it said: ${own})` : ''}; set plugin-name (spec.pluginName) to the name the plugin registers${trapped}`;
  }
  const configure = firstLine(log, /Failed to configure base Wasm plugin/);
  if (configure) {
    if (trap?.fn === 'proxy_on_configure') {
      return `the plugin trapped in proxy_on_configure while applying its configuration (plugin-config / spec.pluginConfig)${last ? `; its last log line: ${last}` : ''}; ${quoteTrap(trap)}`;
    }
    const why = trap ? `it trapped in ${trap.fn}: ${quoteTrap(trap)}` : `proxy_on_configure returned false; Envoy: "${configure}"`;
    return `the plugin rejected its configuration (plugin-config / spec.pluginConfig)${last ? `: ${last}` : ''} (${why})`;
  }
  const start = firstLine(log, /Failed to start base Wasm/);
  if (start) {
    if (trap?.fn === 'proxy_on_vm_start') {
      return `the plugin trapped in proxy_on_vm_start while its VM started${last ? `; its last log line: ${last}` : ''}; ${quoteTrap(trap)}`;
    }
    const why = trap ? `it trapped in ${trap.fn}: ${quoteTrap(trap)}` : `proxy_on_vm_start returned false; Envoy: "${start}"`;
    return `the plugin failed to start in Envoy${last ? `: ${last}` : ''} (${why})`;
  }
  const load = firstLine(log, /Failed to (load|initialize) Wasm code|Wasm VM failed|Failed to load Wasm module/);
  if (load) {
    const vm = firstLine(log, /\]\[(error|critical)\]\[wasm\]/);
    return `Envoy could not load the module as a Wasm plugin; Envoy: "${vm ?? load}"${trapped}`;
  }
  if (trap) return `the plugin trapped in ${trap.fn} while Envoy started; ${quoteTrap(trap)}`;
  const critical = log.split('\n').filter((l) => /\]\[critical\]/.test(l)).pop();
  return critical ? `Envoy failed to start: ${envoySaid(critical)}` : 'Envoy exited before it was ready';
}

export async function startEnvoy(options: StartOptions): Promise<EnvoyProcess> {
  installHandlers();
  fs.mkdirSync(options.workDir, { recursive: true });
  const configFile = path.join(options.workDir, 'envoy.json');
  const adminFile = path.join(options.workDir, 'admin-address.txt');
  fs.rmSync(adminFile, { force: true });
  fs.writeFileSync(configFile, JSON.stringify(options.bootstrap, null, 2));

  const args = [
    '-c', configFile,
    '--admin-address-path', adminFile,
    '--disable-hot-restart',
    '--concurrency', '1',
    '--log-level', 'warning',
    '--component-log-level', options.componentLogLevel ?? 'wasm:info',
  ];
  // Envoy (and the plugin in it) gets no secret of the action's: its environment is childEnv's.
  const child = spawn(options.binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
  running.add(child);
  let log = '';
  const append = (chunk: Buffer) => {
    if (log.length < LOG_LIMIT) log += chunk.toString('utf8');
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  let exitedWith: string | undefined;
  const exited = new Promise<string>((resolve) => {
    child.on('error', (err) => {
      exitedWith = `could not start: ${err.message}`;
      running.delete(child);
      resolve(exitedWith);
    });
    // 'close', not 'exit': by then Envoy's last lines (its shutdown) have been read from the pipes.
    child.on('close', (code, signal) => {
      exitedWith ??= signal ? `signal ${signal}` : `exit code ${code}`;
      running.delete(child);
      resolve(exitedWith);
    });
  });

  const stop = async () => {
    if (exitedWith !== undefined) return;
    child.kill('SIGTERM');
    // The grace timer is cleared as soon as Envoy exits (in a few ms): left
    // running, it would hold the process open for its full 3 s after the stage.
    let grace: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((resolve) => (grace = setTimeout(() => resolve(false), 3000))),
    ]);
    clearTimeout(grace);
    if (!done) {
      child.kill('SIGKILL');
      await exited;
    }
  };

  try {
    const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
    let adminUrl = '';
    while (Date.now() < deadline) {
      if (exitedWith !== undefined) {
        throw new UserError(`${explainStartFailure(log)} (Envoy ${exitedWith})`, tail(log));
      }
      if (!adminUrl && fs.existsSync(adminFile)) {
        const address = fs.readFileSync(adminFile, 'utf8').trim();
        if (address) adminUrl = `http://${address}`;
      }
      if (adminUrl) {
        try {
          const ready = await getText(`${adminUrl}/ready`);
          if (ready.status === 200) break;
        } catch {
          // not listening yet
        }
      }
      await sleep(50);
    }
    if (Date.now() >= deadline) {
      throw new UserError(`Envoy was not ready within ${Math.round((options.readyTimeoutMs ?? 30_000) / 1000)}s`, tail(log));
    }

    const info = JSON.parse((await getText(`${adminUrl}/server_info`)).body) as {
      node?: { extensions?: Array<{ name: string }> };
    };
    const extensions = new Set((info.node?.extensions ?? []).map((e) => e.name));
    const missing = REQUIRED_EXTENSIONS.filter((e) => !extensions.has(e));
    if (missing.length > 0) {
      throw new UserError(`this Envoy build lacks ${missing.join(' and ')}; use an official Envoy release (envoy-version) or an istio-proxy build`);
    }

    const listeners = JSON.parse((await getText(`${adminUrl}/listeners?format=json`)).body) as {
      listener_statuses?: Array<{ name: string; local_address?: { socket_address?: { port_value?: number } } }>;
    };
    const port = listeners.listener_statuses?.find((l) => l.name === 'gateway')?.local_address?.socket_address?.port_value;
    if (!port) throw new UserError('Envoy started but reports no bound port for the test listener', tail(log));

    return {
      adminUrl,
      listenerPort: port,
      log: () => log,
      exited,
      alive: () => exitedWith === undefined,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
