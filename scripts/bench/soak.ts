// Memory under sustained load: a few hundred thousand requests through the
// plugin, sampling Envoy's resident memory and the Wasm VMs' memory between
// short bursts. Garbage-collected plugin languages have leaked per request
// (a context table that never forgets, a buffer never freed); a leak shows as
// a VM memory that keeps growing in 64 KiB pages, and an RSS that follows.
// Several builds (before/after) are soaked side by side, burst by burst.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bootstrapWith, rssKiB, spawnEnvoy, wasmMemory, type BenchEnvoy } from './envoy.js';
import { runWrk, startUpstreamEnvoy, wrkScript, type Variant } from './requests.js';
import { fmt, log, mib, table } from './util.js';

export interface SoakSample {
  requests: number;
  rssKiB: number;
  wasmMemoryKiB: number;
  wasmResidentKiB: number;
}

export interface SoakResult {
  id: string;
  label: string;
  samples: SoakSample[];
  /** True when the VM memory stopped growing in the second half and RSS grew by less than 2 MiB there. */
  plateau: boolean;
}

export async function benchSoak(o: {
  envoyBinary: string;
  wrk: string;
  workDir: string;
  variants: Variant[];
  requests: number;
  burstSeconds: number;
  connections: number;
}): Promise<SoakResult[]> {
  const upstream = await startUpstreamEnvoy(o.envoyBinary, o.workDir);
  const envoys: BenchEnvoy[] = [];
  try {
    const runs: Array<{ v: Variant; envoy: BenchEnvoy; script: string; total: number; samples: SoakSample[] }> = [];
    for (const v of o.variants) {
      const envoy = await spawnEnvoy({ name: `soak-${v.id.replace(/[^a-z0-9-]/gi, '_')}`, binary: o.envoyBinary, bootstrap: bootstrapWith(upstream.port, v.filters, v.hcmExtra ?? {}), workDir: o.workDir, componentLogLevel: v.logLevel });
      envoys.push(envoy);
      const script = path.join(o.workDir, `soak-${v.id.replace(/[^a-z0-9-]/gi, '_')}.lua`);
      fs.writeFileSync(script, wrkScript(v.allow));
      runs.push({ v, envoy, script, total: 0, samples: [] });
    }
    const sample = (r: (typeof runs)[number]) => {
      const mem = wasmMemory(r.envoy.pid);
      r.samples.push({ requests: r.total, rssKiB: rssKiB(r.envoy.pid), wasmMemoryKiB: mem.sizeKiB, wasmResidentKiB: mem.rssKiB });
    };
    runs.forEach(sample);
    let reported = 0;
    while (runs.some((r) => r.total < o.requests)) {
      for (const r of runs) {
        if (r.total >= o.requests) continue;
        const w = await runWrk({ wrk: o.wrk, script: r.script, port: r.envoy.port, seconds: o.burstSeconds, connections: o.connections });
        r.total += w.requests;
        sample(r);
      }
      const done = Math.min(...runs.map((r) => r.total));
      if (done - reported >= o.requests / 4) {
        reported = done;
        log(`soak: ${fmt(done)} of ${fmt(o.requests)} requests per build`);
      }
    }
    return runs.map((r) => {
      const s = r.samples;
      const mid = s[Math.floor(s.length / 2)];
      const end = s[s.length - 1];
      return { id: r.v.id, label: r.v.label, samples: s, plateau: end.wasmMemoryKiB <= mid.wasmMemoryKiB && end.rssKiB - mid.rssKiB < 2048 };
    });
  } finally {
    for (const e of envoys) await e.stop();
    await upstream.stop();
  }
}

export function soakTable(results: SoakResult[]): string {
  const rows: Array<Array<string | number>> = [['build', 'point', 'requests', 'Envoy RSS', 'Wasm memory (all VMs)', 'of it resident']];
  for (const r of results) {
    const s = r.samples;
    const points: Array<[string, SoakSample]> = [
      ['start', s[0]],
      ['middle', s[Math.floor(s.length / 2)]],
      ['end', s[s.length - 1]],
    ];
    for (const [name, p] of points) {
      rows.push([name === 'start' ? r.label : '', name, fmt(p.requests), mib(p.rssKiB), `${fmt(p.wasmMemoryKiB)} KiB`, `${fmt(p.wasmResidentKiB)} KiB`]);
    }
    rows.push(['', r.plateau ? 'flat' : '**grows**', '', '', '', '']);
  }
  return table(rows);
}
