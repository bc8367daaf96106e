// Host calls for the per-request path, made so that a request allocates
// nothing in the VM beyond its own context.
//
// The SDK's helpers encode and decode strings on every call: a header lookup
// encodes the name and decodes the value, a local response encodes its
// details and serializes its headers, a log line is built and then encoded.
// Here the constant parts are encoded once, at configure time, and compared
// or copied as bytes. Everything else (contexts, configuration) still goes
// through the SDK.
import { LogLevelValues, WasmResultValues, GrpcStatusValues } from "@solo-io/proxy-runtime";
import { proxy_get_header_map_value, proxy_log, proxy_send_local_response } from "@solo-io/proxy-runtime/imports";
import { free } from "@solo-io/proxy-runtime/malloc";

// Not declared by the SDK; Envoy provides it to every proxy-wasm module.
// @ts-ignore: decorator
@external("env", "proxy_get_log_level")
declare function proxy_get_log_level(return_level: usize): u32;

const REQUEST_HEADERS: i32 = 0;

// Out-parameters of host calls: two 32-bit slots, allocated once.
const scratch = new ArrayBuffer(8);

let currentLevel: i32 = LogLevelValues.trace;

/**
 * Asks Envoy at which level it writes this plugin's log (its `wasm` log
 * component) and remembers it; logLevel() returns the remembered level.
 * Messages below it are dropped by Envoy anyway, so there is no point in
 * building them. If the host cannot say, everything is logged, as before.
 */
export function refreshLogLevel(): i32 {
  const slot = changetype<usize>(scratch);
  store<u32>(slot, LogLevelValues.trace);
  currentLevel = proxy_get_log_level(slot) == WasmResultValues.Ok ? load<i32>(slot) : LogLevelValues.trace;
  return currentLevel;
}

export function logLevel(): i32 {
  return currentLevel;
}

/**
 * Whether request header `name` (lower-case UTF-8) equals `expected` byte for
 * byte. A missing header reads as empty, as it does through the SDK's
 * `stream_context.headers.request.get`.
 */
export function requestHeaderEquals(name: ArrayBuffer, expected: ArrayBuffer): bool {
  const slot = changetype<usize>(scratch);
  store<u32>(slot, 0);
  store<u32>(slot + 4, 0);
  const result = proxy_get_header_map_value(REQUEST_HEADERS, changetype<usize>(name), name.byteLength, slot, slot + 4);
  if (result != WasmResultValues.Ok) return expected.byteLength == 0;
  const value = <usize>load<u32>(slot);
  const size = <usize>load<u32>(slot + 4);
  const equal = size == <usize>expected.byteLength && (size == 0 || memory.compare(value, changetype<usize>(expected), size) == 0);
  // Envoy copied the value into memory it got from the module's malloc.
  if (value != 0) free(value);
  return equal;
}

/**
 * Header pairs in the proxy-wasm wire format, as proxy_send_local_response
 * takes them: the number of pairs, each pair's key and value sizes, then each
 * key and value followed by a NUL byte (all numbers little-endian u32).
 */
export function serializePairs(keys: Array<string>, values: Array<string>): ArrayBuffer {
  const n = keys.length;
  const encodedKeys = new Array<ArrayBuffer>(n);
  const encodedValues = new Array<ArrayBuffer>(n);
  let size = 4 + 8 * n;
  for (let i = 0; i < n; i++) {
    encodedKeys[i] = String.UTF8.encode(keys[i]);
    encodedValues[i] = String.UTF8.encode(values[i]);
    size += encodedKeys[i].byteLength + 1 + encodedValues[i].byteLength + 1;
  }
  const out = new ArrayBuffer(size);
  const base = changetype<usize>(out);
  store<u32>(base, n);
  let at = base + 4 + 8 * n;
  for (let i = 0; i < n; i++) {
    const key = encodedKeys[i];
    const value = encodedValues[i];
    store<u32>(base + 4 + 8 * i, key.byteLength);
    store<u32>(base + 8 + 8 * i, value.byteLength);
    memory.copy(at, changetype<usize>(key), key.byteLength);
    at += key.byteLength;
    store<u8>(at++, 0);
    memory.copy(at, changetype<usize>(value), value.byteLength);
    at += value.byteLength;
    store<u8>(at++, 0);
  }
  return out;
}

/** A local response built once and sent as often as needed. */
export class LocalResponse {
  constructor(
    public status: u32,
    public details: ArrayBuffer,
    public body: ArrayBuffer,
    /** Extra response headers, from serializePairs. */
    public headers: ArrayBuffer,
  ) {}

  send(): u32 {
    return proxy_send_local_response(
      this.status,
      changetype<usize>(this.details), this.details.byteLength,
      changetype<usize>(this.body), this.body.byteLength,
      changetype<usize>(this.headers), this.headers.byteLength,
      GrpcStatusValues.Unknown,
    );
  }
}

// The buffer log lines are assembled in; it grows to the longest line once.
let line = new ArrayBuffer(256);

/**
 * Logs "#<id><suffix>" without building a string: `suffix` is the message's
 * UTF-8 encoding, made once. The bytes are exactly those of the SDK's
 * log(level, "#" + id.toString() + suffixString).
 */
export function logWithId(level: i32, id: u32, suffix: ArrayBuffer): void {
  const needed = 11 + suffix.byteLength;
  if (line.byteLength < needed) line = new ArrayBuffer(needed);
  const start = changetype<usize>(line);
  store<u8>(start, 0x23); // '#'
  // The decimal digits of id, written backwards from the end of their field.
  let digits = 1;
  for (let rest = id / 10; rest != 0; rest /= 10) digits++;
  let at = start + 1 + digits;
  let rest = id;
  do {
    store<u8>(--at, <u8>(0x30 + rest % 10));
    rest /= 10;
  } while (rest != 0);
  memory.copy(start + 1 + digits, changetype<usize>(suffix), suffix.byteLength);
  proxy_log(<usize>level, start, 1 + digits + suffix.byteLength);
}
