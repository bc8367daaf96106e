// Calls into Envoy, wrapped for AssemblyScript.
//
// Two kinds of helpers: convenient ones that take and return strings
// (getHeader, setHeader, log), and ones for the per-request path that work on
// bytes encoded once (headerEquals, LocalResponse, logWithId). A request that
// goes through the second kind allocates nothing in the VM beyond its context.
import {
  BufferType,
  GRPC_STATUS_UNKNOWN,
  HeaderMap,
  LogLevel,
  WasmResult,
  proxy_get_buffer_bytes,
  proxy_get_header_map_value,
  proxy_get_log_level,
  proxy_get_property,
  proxy_log,
  proxy_remove_header_map_value,
  proxy_replace_header_map_value,
  proxy_send_local_response,
} from "./abi";

// Out-parameters of host calls: two 32-bit slots in static memory.
const OUT: usize = memory.data(8);

/** Memory the host filled through `malloc`, handed back. */
function release(ptr: usize): void {
  if (ptr != 0) heap.free(ptr);
}

/** After a host call that wrote into the out-slots: a copy of the bytes it wrote (freed here), or null if the call failed. */
function takeBytes(result: u32): ArrayBuffer | null {
  const ptr = <usize>load<u32>(OUT);
  const size = <i32>load<u32>(OUT + 4);
  if (result != WasmResult.Ok) {
    release(ptr);
    return null;
  }
  const out = new ArrayBuffer(size);
  if (size > 0) memory.copy(changetype<usize>(out), ptr, size);
  release(ptr);
  return out;
}

function clearOut(): void {
  store<u32>(OUT, 0);
  store<u32>(OUT + 4, 0);
}

// ---- log ----

let currentLevel: i32 = LogLevel.trace;

/**
 * Asks Envoy at which level it writes this plugin's log (its `wasm` log
 * component) and remembers it. The layer calls this once when a stream
 * starts, so a level changed on a running gateway takes effect with the next
 * request. If the host cannot say, everything is logged.
 */
export function refreshLogLevel(): i32 {
  store<u32>(OUT, LogLevel.trace);
  currentLevel = proxy_get_log_level(OUT) == WasmResult.Ok ? load<i32>(OUT) : LogLevel.trace;
  return currentLevel;
}

/** Whether Envoy writes lines at `level`: test it before building a message, so nothing is built for nothing. */
export function logEnabled(level: i32): bool {
  return level >= currentLevel;
}

/** Writes `message` to Envoy's log (if Envoy logs at `level`). */
export function log(level: i32, message: string): void {
  if (level < currentLevel) return;
  const bytes = String.UTF8.encode(message);
  proxy_log(level, changetype<usize>(bytes), bytes.byteLength);
}

// The buffer id-prefixed lines are assembled in; it grows to the longest line once.
let line = new ArrayBuffer(256);

/**
 * Logs "#<id><suffix>" without building a string: `suffix` is the message's
 * UTF-8 encoding, made once (e.g. per configuration). Use it on the
 * per-request path; `id` is the stream's context id.
 */
export function logWithId(level: i32, id: u32, suffix: ArrayBuffer): void {
  if (level < currentLevel) return;
  const needed = 11 + suffix.byteLength;
  if (line.byteLength < needed) line = new ArrayBuffer(needed);
  const start = changetype<usize>(line);
  store<u8>(start, 0x23); // '#'
  let digits: usize = 1;
  for (let rest = id / 10; rest != 0; rest /= 10) digits++;
  let at = start + 1 + digits;
  let rest = id;
  do {
    store<u8>(--at, <u8>(0x30 + rest % 10));
    rest /= 10;
  } while (rest != 0);
  memory.copy(start + 1 + digits, changetype<usize>(suffix), suffix.byteLength);
  proxy_log(level, start, 1 + digits + suffix.byteLength);
}

// ---- headers (only valid inside the stream callback that has the map) ----

/**
 * Whether header `name` (lower-case UTF-8 bytes) equals `expected` byte for
 * byte. A missing header reads as empty.
 */
export function headerEquals(map: HeaderMap, name: ArrayBuffer, expected: ArrayBuffer): bool {
  clearOut();
  const result = proxy_get_header_map_value(map, changetype<usize>(name), name.byteLength, OUT, OUT + 4);
  const ptr = <usize>load<u32>(OUT);
  const size = <usize>load<u32>(OUT + 4);
  let equal: bool;
  if (result != WasmResult.Ok) equal = expected.byteLength == 0;
  else equal = size == <usize>expected.byteLength && (size == 0 || memory.compare(ptr, changetype<usize>(expected), size) == 0);
  release(ptr);
  return equal;
}

/** A header's value, or null when the map has no such header. `name` is lower case. */
export function getHeader(map: HeaderMap, name: string): string | null {
  const key = String.UTF8.encode(name);
  clearOut();
  const bytes = takeBytes(proxy_get_header_map_value(map, changetype<usize>(key), key.byteLength, OUT, OUT + 4));
  return bytes == null ? null : String.UTF8.decode(bytes);
}

/** Sets a header, replacing any value it had. */
export function setHeader(map: HeaderMap, name: string, value: string): void {
  const key = String.UTF8.encode(name);
  const val = String.UTF8.encode(value);
  proxy_replace_header_map_value(map, changetype<usize>(key), key.byteLength, changetype<usize>(val), val.byteLength);
}

/** Removes a header. */
export function removeHeader(map: HeaderMap, name: string): void {
  const key = String.UTF8.encode(name);
  proxy_remove_header_map_value(map, changetype<usize>(key), key.byteLength);
}

// ---- local responses ----

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

/**
 * A response Envoy sends itself instead of forwarding the request, encoded
 * once and sent as often as needed. Return StopIteration from the callback
 * that sends it.
 */
export class LocalResponse {
  details: ArrayBuffer;
  body: ArrayBuffer;
  headers: ArrayBuffer;

  /**
   * `details` is what Envoy records as the reason (%RESPONSE_CODE_DETAILS%
   * in access logs; no spaces). `headerNames`/`headerValues` are extra
   * response headers.
   */
  constructor(public status: u32, details: string, body: string, headerNames: Array<string>, headerValues: Array<string>) {
    this.details = String.UTF8.encode(details);
    this.body = String.UTF8.encode(body);
    this.headers = serializePairs(headerNames, headerValues);
  }

  send(): void {
    proxy_send_local_response(
      this.status,
      changetype<usize>(this.details), this.details.byteLength,
      changetype<usize>(this.body), this.body.byteLength,
      changetype<usize>(this.headers), this.headers.byteLength,
      GRPC_STATUS_UNKNOWN,
    );
  }
}

// ---- configuration and properties ----

/** The first `size` bytes of a configuration buffer (BufferType), as text. */
export function configurationText(buffer: u32, size: u32): string {
  if (size == 0) return "";
  clearOut();
  const bytes = takeBytes(proxy_get_buffer_bytes(buffer, 0, size, OUT, OUT + 4));
  return bytes == null ? "" : String.UTF8.decode(bytes);
}

/** The plugin configuration (WasmPlugin.spec.pluginConfig as JSON) Envoy offers in proxy_on_configure. */
export function pluginConfiguration(size: u32): string {
  return configurationText(BufferType.PluginConfiguration, size);
}

/**
 * A property of the stream or the plugin, e.g. ["plugin_root_id"] or
 * ["request", "path"]; null when Envoy has none.
 */
export function getProperty(path: Array<string>): ArrayBuffer | null {
  let joined = "";
  for (let i = 0; i < path.length; i++) {
    if (i > 0) joined += "\0";
    joined += path[i];
  }
  const encoded = String.UTF8.encode(joined);
  clearOut();
  return takeBytes(proxy_get_property(changetype<usize>(encoded), encoded.byteLength, OUT, OUT + 4));
}
