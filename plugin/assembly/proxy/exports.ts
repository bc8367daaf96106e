// The functions Envoy calls (ABI 0.2.1), routed to the plugin's contexts.
// Re-export everything here from the plugin's entry file:
//   export * from "./proxy/exports";
//
// Callbacks this layer does not export (network filters, HTTP and gRPC call
// responses, timers, queues) are skipped by Envoy. To use one, export it here
// under its ABI name and route it to a new method on the context classes.
import { RootContext, StreamContext, registeredRootIds, rootFactory } from "./context";
import { BufferType, LogLevel, proxy_log } from "./abi";
import { configurationText, getProperty, log, refreshLogLevel } from "./host";

/** The ABI marker: Envoy reads the ABI version from this export's name. */
export function proxy_abi_version_0_2_1(): void {}

/** Envoy asks for memory here before it copies a value into the module (freed with heap.free). */
export function malloc(size: usize): usize {
  return heap.alloc(size);
}

/**
 * AssemblyScript's abort (a failed assertion, an out-of-range index, a
 * missing map key) as a log line Envoy shows, then a trap. Selected with
 * `"use": "abort=proxy_abort"` in asconfig.json; without it the module would
 * import env.abort, which Envoy does not provide.
 */
// @ts-ignore: decorator
@global
function proxy_abort(message: string | null, file: string | null, line: u32, column: u32): void {
  let text = "abort: " + (message !== null ? message : "");
  if (file !== null) text += " at " + file + ":" + line.toString() + ":" + column.toString();
  // Straight to Envoy, whatever the log level.
  const bytes = String.UTF8.encode(text);
  proxy_log(LogLevel.critical, changetype<usize>(bytes), bytes.byteLength);
  unreachable();
}

const roots = new Map<u32, RootContext>();
const streams = new Map<u32, StreamContext>();

// Envoy makes several calls in a row for one stream: remember the last one
// looked up.
let lastId: u32 = 0;
let last: StreamContext | null = null;

function stream(id: u32): StreamContext {
  const cached = last;
  if (id == lastId && cached !== null) return cached;
  const found = streams.get(id);
  lastId = id;
  last = found;
  return found;
}

function createRoot(id: u32): void {
  const raw = getProperty(["plugin_root_id"]);
  const name = raw == null ? "" : String.UTF8.decode(raw);
  const factory = rootFactory(name);
  if (factory == null) {
    log(LogLevel.critical, "Missing root context factory for root id \"" + name + "\": this plugin registers " + registeredRootIds() + " (set the WasmPlugin's spec.pluginName to it)");
    unreachable();
  }
  roots.set(id, factory!(id));
}

export function proxy_on_context_create(context_id: u32, parent_context_id: u32): void {
  if (parent_context_id == 0) {
    createRoot(context_id);
    return;
  }
  refreshLogLevel();
  streams.set(context_id, roots.get(parent_context_id).newStream(context_id));
}

export function proxy_on_vm_start(root_context_id: u32, vm_configuration_size: u32): u32 {
  return roots.get(root_context_id).onVmStart(configurationText(BufferType.VmConfiguration, vm_configuration_size)) ? 1 : 0;
}

export function proxy_validate_configuration(root_context_id: u32, configuration_size: u32): u32 {
  return 1;
}

export function proxy_on_configure(root_context_id: u32, configuration_size: u32): u32 {
  refreshLogLevel();
  return roots.get(root_context_id).onConfigure(configurationText(BufferType.PluginConfiguration, configuration_size)) ? 1 : 0;
}

export function proxy_on_request_headers(context_id: u32, header_count: u32, end_of_stream: u32): i32 {
  return stream(context_id).onRequestHeaders(header_count, end_of_stream != 0);
}

export function proxy_on_request_body(context_id: u32, body_size: u32, end_of_stream: u32): i32 {
  return stream(context_id).onRequestBody(body_size, end_of_stream != 0);
}

export function proxy_on_request_trailers(context_id: u32, trailer_count: u32): i32 {
  return stream(context_id).onRequestTrailers(trailer_count);
}

export function proxy_on_response_headers(context_id: u32, header_count: u32, end_of_stream: u32): i32 {
  return stream(context_id).onResponseHeaders(header_count, end_of_stream != 0);
}

export function proxy_on_response_body(context_id: u32, body_size: u32, end_of_stream: u32): i32 {
  return stream(context_id).onResponseBody(body_size, end_of_stream != 0);
}

export function proxy_on_response_trailers(context_id: u32, trailer_count: u32): i32 {
  return stream(context_id).onResponseTrailers(trailer_count);
}

export function proxy_on_done(context_id: u32): u32 {
  if (streams.has(context_id)) {
    stream(context_id).onDone();
    return 1;
  }
  if (roots.has(context_id)) return roots.get(context_id).onDone() ? 1 : 0;
  return 1;
}

export function proxy_on_log(context_id: u32): void {
  if (streams.has(context_id)) stream(context_id).onLog();
}

export function proxy_on_delete(context_id: u32): void {
  if (streams.has(context_id)) {
    stream(context_id).onDelete();
    streams.delete(context_id);
    if (lastId == context_id) {
      lastId = 0;
      last = null;
    }
    return;
  }
  if (roots.has(context_id)) {
    roots.get(context_id).onDelete();
    roots.delete(context_id);
  }
}
