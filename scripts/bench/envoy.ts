// Envoys for the benchmark: started with the same bootstrap the local test
// uses (src/envoy/bootstrap.ts), but logging to a file, as a gateway's
// container runtime does, instead of into a pipe this process has to drain:
// reading megabytes of log per second would take CPU from the Envoy being
// measured on a small machine.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderEnvoyBootstrap, type WasmFilterOptions } from '../../src/envoy/bootstrap.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface BenchEnvoy {
  name: string;
  pid: number;
  port: number;
  adminUrl: string;
  logFile: string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** The HTTP filter list of a variant, in front of the router. */
export type FilterChain = Array<Record<string, unknown>>;

export const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

/**
 * A bootstrap with the given HTTP filters (router appended) and, optionally,
 * HttpConnectionManager fields (local_reply_config) merged in.
 */
export function bootstrapWith(upstreamPort: number, filters: FilterChain, hcmExtra: Record<string, unknown> = {}, wasm?: WasmFilterOptions): Record<string, unknown> {
  const placeholder: WasmFilterOptions = wasm ?? { name: 'none', namespace: 'bench', rootId: 'none', failStrategy: 'FAIL_CLOSE', wasmPath: '/dev/null' };
  const bootstrap = renderEnvoyBootstrap({ listenerPort: 0, adminPort: 0, upstreamPort, filter: placeholder }) as any;
  const hcm = bootstrap.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  hcm.http_filters = [...filters, ROUTER];
  Object.assign(hcm, hcmExtra);
  return bootstrap;
}

async function getText(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return { status: res.status, body: await res.text() };
}

export interface SpawnOptions {
  name: string;
  binary: string;
  bootstrap: Record<string, unknown>;
  workDir: string;
  /** --component-log-level, e.g. "wasm:warning" (Istio's gateway default) or "wasm:info". */
  componentLogLevel: string;
  /** Worker threads (Envoy --concurrency). */
  concurrency?: number;
}

export async function spawnEnvoy(o: SpawnOptions): Promise<BenchEnvoy> {
  const dir = path.join(o.workDir, o.name);
  fs.mkdirSync(dir, { recursive: true });
  const configFile = path.join(dir, 'envoy.json');
  const adminFile = path.join(dir, 'admin-address.txt');
  const logFile = path.join(dir, 'envoy.log');
  fs.rmSync(adminFile, { force: true });
  fs.writeFileSync(configFile, JSON.stringify(o.bootstrap, null, 2));
  const child = spawn(
    o.binary,
    [
      '-c', configFile,
      '--admin-address-path', adminFile,
      '--disable-hot-restart',
      '--concurrency', String(o.concurrency ?? 1),
      '--log-level', 'warning',
      '--component-log-level', o.componentLogLevel,
      '--log-path', logFile,
    ],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  running.add(child);
  let exited: string | undefined;
  child.on('exit', (code, signal) => {
    exited = signal ? `signal ${signal}` : `exit code ${code}`;
    running.delete(child);
  });
  const stop = async () => {
    if (exited !== undefined) return;
    child.kill('SIGTERM');
    for (let i = 0; i < 60 && exited === undefined; i++) await sleep(50);
    if (exited === undefined) child.kill('SIGKILL');
  };
  const deadline = Date.now() + 30_000;
  let adminUrl = '';
  try {
    while (true) {
      if (exited !== undefined) throw new Error(`Envoy ${o.name} exited (${exited}):\n${readTail(logFile)}`);
      if (Date.now() > deadline) throw new Error(`Envoy ${o.name} was not ready within 30 s:\n${readTail(logFile)}`);
      if (!adminUrl && fs.existsSync(adminFile)) {
        const address = fs.readFileSync(adminFile, 'utf8').trim();
        if (address) adminUrl = `http://${address}`;
      }
      if (adminUrl) {
        try {
          if ((await getText(`${adminUrl}/ready`)).status === 200) break;
        } catch {
          // not listening yet
        }
      }
      await sleep(25);
    }
    const listeners = JSON.parse((await getText(`${adminUrl}/listeners?format=json`)).body) as {
      listener_statuses?: Array<{ local_address?: { socket_address?: { port_value?: number } } }>;
    };
    const port = listeners.listener_statuses?.[0]?.local_address?.socket_address?.port_value;
    if (!port) throw new Error(`Envoy ${o.name} reports no listener port`);
    return { name: o.name, pid: child.pid!, port, adminUrl, logFile, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function readTail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-20).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Envoy's counters and gauges, from the admin API. */
export async function envoyStats(adminUrl: string, filter: string): Promise<Record<string, number>> {
  const body = (await getText(`${adminUrl}/stats?format=json&filter=${encodeURIComponent(filter)}`)).body;
  const out: Record<string, number> = {};
  for (const s of (JSON.parse(body) as { stats: Array<{ name?: string; value?: number }> }).stats) {
    if (s.name !== undefined && typeof s.value === 'number') out[s.name] = s.value;
  }
  return out;
}

/** Resident memory of a process (VmRSS), in KiB. */
export function rssKiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? NaN);
}

/**
 * The Wasm VMs' linear memories in a process. V8 reserves each 32-bit Wasm
 * memory as one anonymous mapping of about 8 GiB and makes only the pages the
 * module has (memory.size) readable and writable, which the kernel then shows
 * as a separate rw-p mapping right before the inaccessible rest. So each such
 * pair is one VM's memory: the rw-p part's size is the module's memory size,
 * its Rss what of it is resident. Envoy runs one VM per worker thread plus
 * the ones on the main thread.
 */
export interface WasmMemory {
  /** Sum of memory.size over the VMs, KiB. */
  sizeKiB: number;
  /** Resident part of those memories, KiB. */
  rssKiB: number;
  memories: number;
}

export function wasmMemory(pid: number): WasmMemory {
  const maps: Array<{ start: bigint; end: bigint; perm: string; anon: boolean; size: number; rss: number }> = [];
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+)\s+(\S+)\s+\S+\s+\S+\s+(\d+)\s*(.*)$/.exec(line);
    if (head) {
      maps.push({ start: BigInt(`0x${head[1]}`), end: BigInt(`0x${head[2]}`), perm: head[3], anon: head[4] === '0' && head[5] === '', size: 0, rss: 0 });
      continue;
    }
    const field = /^(Size|Rss):\s+(\d+) kB/.exec(line);
    if (field && maps.length > 0) maps[maps.length - 1][field[1] === 'Size' ? 'size' : 'rss'] = Number(field[2]);
  }
  const out: WasmMemory = { sizeKiB: 0, rssKiB: 0, memories: 0 };
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i];
    if (!m.anon || m.perm !== '---p' || m.end - m.start < 4n * 1024n ** 3n) continue;
    out.memories++;
    const prev = maps[i - 1];
    if (prev && prev.anon && prev.perm === 'rw-p' && prev.end === m.start) {
      out.sizeKiB += prev.size;
      out.rssKiB += prev.rss;
    }
  }
  return out;
}
