// The preload that records what asc reads, for the compile cache (cache.ts):
// loaded into the asc process only (NODE_OPTIONS --import), it writes a trace
// of each file asc read (with a hash of its content), each file it looked for
// and did not find, each directory it listed, and each file it wrote.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Loaded into every Node process the compile starts; it acts only in asc's
 * own process (its script is bin/asc.js, or .bin/asc), so npm and other
 * programs run unwatched. It wraps the fs calls asc reads and writes files
 * with and, when the process exits, writes what it saw to
 * $ASM_WASM_ASC_TRACE/<pid>.json.
 */
const TRACER = String.raw`
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
const dir = process.env.ASM_WASM_ASC_TRACE;
const main = process.argv[1] || '';
if (dir && /(^|[\\/])asc(\.js|\.mjs|\.cjs)?$/.test(main)) {
  const reads = {};
  const lists = {};
  const writes = new Set();
  const probes = {};
  const hash = (data) => crypto.createHash('sha256').update(data).digest('hex');
  const abs = (p) => path.resolve(String(p instanceof URL ? p.pathname : p));
  const P = fs.promises;
  const orig = { readFile: P.readFile, readdir: P.readdir, writeFile: P.writeFile, readFileSync: fs.readFileSync, readdirSync: fs.readdirSync, writeFileSync: fs.writeFileSync, existsSync: fs.existsSync, statSync: fs.statSync, stat: P.stat, access: P.access };
  const seenProbe = (file, exists) => { if (typeof file !== 'string' && !(file instanceof URL)) return; const f = abs(file); if (!(f in probes)) probes[f] = exists; };
  fs.existsSync = function (file) { const r = orig.existsSync.call(this, file); seenProbe(file, r); return r; };
  fs.statSync = function (file, ...rest) {
    try { const r = orig.statSync.call(this, file, ...rest); seenProbe(file, r !== undefined); return r; } catch (e) { seenProbe(file, false); throw e; }
  };
  P.stat = async function (file, ...rest) {
    try { const r = await orig.stat.call(this, file, ...rest); seenProbe(file, true); return r; } catch (e) { seenProbe(file, false); throw e; }
  };
  P.access = async function (file, ...rest) {
    try { const r = await orig.access.call(this, file, ...rest); seenProbe(file, true); return r; } catch (e) { seenProbe(file, false); throw e; }
  };
  const seenRead = (file, data) => { const f = abs(file); if (!(f in reads)) reads[f] = data === null ? null : hash(data); };
  const seenList = (d, names) => { const f = abs(d); if (!(f in lists)) lists[f] = names === null ? null : hash(names.map(String).sort().join('\n')); };
  P.readFile = async function (file, ...rest) {
    if (typeof file !== 'string' && !(file instanceof URL)) return orig.readFile.call(this, file, ...rest);
    try { const data = await orig.readFile.call(this, file, ...rest); seenRead(file, data); return data; }
    catch (e) { seenRead(file, null); throw e; }
  };
  fs.readFileSync = function (file, ...rest) {
    if (typeof file !== 'string' && !(file instanceof URL)) return orig.readFileSync.call(this, file, ...rest);
    try { const data = orig.readFileSync.call(this, file, ...rest); seenRead(file, data); return data; }
    catch (e) { seenRead(file, null); throw e; }
  };
  P.readdir = async function (d, ...rest) {
    try { const names = await orig.readdir.call(this, d, ...rest); seenList(d, names.map((n) => (typeof n === 'object' ? n.name : n))); return names; }
    catch (e) { seenList(d, null); throw e; }
  };
  fs.readdirSync = function (d, ...rest) {
    try { const names = orig.readdirSync.call(this, d, ...rest); seenList(d, names.map((n) => (typeof n === 'object' ? n.name : n))); return names; }
    catch (e) { seenList(d, null); throw e; }
  };
  P.writeFile = async function (file, ...rest) { if (typeof file === 'string' || file instanceof URL) writes.add(abs(file)); return orig.writeFile.call(this, file, ...rest); };
  fs.writeFileSync = function (file, ...rest) { if (typeof file === 'string' || file instanceof URL) writes.add(abs(file)); return orig.writeFileSync.call(this, file, ...rest); };
  process.on('exit', (code) => {
    try {
      orig.writeFileSync(path.join(dir, process.pid + '.json'), JSON.stringify({ cwd: process.cwd(), argv: process.argv.slice(2), code, reads, lists, probes, writes: [...writes] }));
    } catch {}
  });
}
`;

/** The preload, written once to a file named by its hash (the action is one bundled file). */
export function tracerFile(root: string): string {
  const file = path.join(root, `asc-trace-${crypto.createHash('sha256').update(TRACER).digest('hex').slice(0, 12)}.mjs`);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(root, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, TRACER);
    fs.renameSync(tmp, file);
  }
  return file;
}

export interface Trace {
  cwd: string;
  argv: string[];
  code: number;
  reads: Record<string, string | null>;
  lists: Record<string, string | null>;
  /** Files asc only checked for (exists, stat): whether each was there. */
  probes?: Record<string, boolean>;
  writes: string[];
}

