// Per-request host calls on bytes encoded once (as the 0.14 template did).
import { LogLevelValues, WasmResultValues, GrpcStatusValues } from "@gcoredev/proxy-wasm-sdk-as/assembly";
import { proxy_get_header_map_value, proxy_get_log_level, proxy_log, proxy_send_local_response } from "@gcoredev/proxy-wasm-sdk-as/assembly/imports";
import { free } from "@gcoredev/proxy-wasm-sdk-as/assembly/malloc";

const OUT: usize = memory.data(8);
let currentLevel: i32 = LogLevelValues.trace;

export function refreshLogLevel(): i32 {
  store<u32>(OUT, LogLevelValues.trace);
  currentLevel = proxy_get_log_level(OUT) == WasmResultValues.Ok ? load<i32>(OUT) : LogLevelValues.trace;
  return currentLevel;
}
export function logEnabled(level: i32): bool {
  return level >= currentLevel;
}

export function requestHeaderEquals(name: ArrayBuffer, expected: ArrayBuffer): bool {
  store<u32>(OUT, 0);
  store<u32>(OUT + 4, 0);
  const result = proxy_get_header_map_value(0, changetype<usize>(name), name.byteLength, OUT, OUT + 4);
  const value = <usize>load<u32>(OUT);
  const size = <usize>load<u32>(OUT + 4);
  const equal = result != WasmResultValues.Ok ? expected.byteLength == 0
    : size == <usize>expected.byteLength && (size == 0 || memory.compare(value, changetype<usize>(expected), size) == 0);
  if (value != 0) free(value);
  return equal;
}

export function serializePairs(keys: Array<string>, values: Array<string>): ArrayBuffer {
  const n = keys.length;
  let size = 4 + 8 * n;
  const k = new Array<ArrayBuffer>(n);
  const v = new Array<ArrayBuffer>(n);
  for (let i = 0; i < n; i++) {
    k[i] = String.UTF8.encode(keys[i]);
    v[i] = String.UTF8.encode(values[i]);
    size += k[i].byteLength + v[i].byteLength + 2;
  }
  const out = new ArrayBuffer(size);
  const base = changetype<usize>(out);
  store<u32>(base, n);
  let at = base + 4 + 8 * n;
  for (let i = 0; i < n; i++) {
    store<u32>(base + 4 + 8 * i, k[i].byteLength);
    store<u32>(base + 8 + 8 * i, v[i].byteLength);
    memory.copy(at, changetype<usize>(k[i]), k[i].byteLength);
    at += k[i].byteLength;
    store<u8>(at++, 0);
    memory.copy(at, changetype<usize>(v[i]), v[i].byteLength);
    at += v[i].byteLength;
    store<u8>(at++, 0);
  }
  return out;
}

export class LocalResponse {
  constructor(public status: u32, public details: ArrayBuffer, public body: ArrayBuffer, public headers: ArrayBuffer) {}
  send(): void {
    proxy_send_local_response(this.status, changetype<usize>(this.details), this.details.byteLength,
      changetype<usize>(this.body), this.body.byteLength, changetype<usize>(this.headers), this.headers.byteLength, GrpcStatusValues.Unknown);
  }
}

let line = new ArrayBuffer(256);
export function logWithId(level: i32, id: u32, suffix: ArrayBuffer): void {
  if (level < currentLevel) return;
  const needed = 11 + suffix.byteLength;
  if (line.byteLength < needed) line = new ArrayBuffer(needed);
  const start = changetype<usize>(line);
  store<u8>(start, 0x23);
  let digits: usize = 1;
  for (let r = id / 10; r != 0; r /= 10) digits++;
  let at = start + 1 + digits;
  let rest = id;
  do {
    store<u8>(--at, <u8>(0x30 + rest % 10));
    rest /= 10;
  } while (rest != 0);
  memory.copy(start + 1 + digits, changetype<usize>(suffix), suffix.byteLength);
  proxy_log(level, start, 1 + digits + suffix.byteLength);
}
