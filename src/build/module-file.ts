// Reading a .wasm file the user points at (wasm-path) or the build wrote:
// its size and its first bytes are checked before it is read whole, and its
// digest is computed by streaming, so a wrong path to a large file is refused
// at once instead of filling memory.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { UserError } from '../errors.js';

/**
 * The largest module the pipeline reads. Envoy holds every module in memory
 * once per worker, and proxy-wasm modules are kilobytes to a few megabytes;
 * anything this large is the wrong file.
 */
export const MAX_MODULE_BYTES = 256 * 1024 * 1024;
const WASM_MAGIC = Buffer.from([0x00, 0x61, 0x73, 0x6d]);

/** Size and magic checked first; `what` names the input or file in errors. */
export function readModuleFile(file: string, what: string): Buffer {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new UserError(`${what}: ${file} does not exist`);
  }
  if (!stat.isFile()) throw new UserError(`${what}: ${file} is not a file; give the path of the plugin's .wasm`);
  if (stat.size > MAX_MODULE_BYTES) {
    throw new UserError(`${what}: ${file} is ${formatBytes(stat.size)}, more than the ${formatBytes(MAX_MODULE_BYTES)} a proxy-wasm module can reasonably be; give the path of the plugin's .wasm`);
  }
  const head = Buffer.alloc(8);
  const fd = fs.openSync(file, 'r');
  let n: number;
  try {
    n = fs.readSync(fd, head, 0, 8, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (n < 8 || !head.subarray(0, 4).equals(WASM_MAGIC)) {
    throw new UserError(`${what}: ${file} is not a WebAssembly module (it does not start with \\0asm); give the path of the plugin's .wasm`);
  }
  return fs.readFileSync(file);
}

/** The sha256 of a file, read in chunks. */
export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 * 1024) return `${(n / 1024 / 1024 / 1024).toFixed(1)} GiB`;
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}
