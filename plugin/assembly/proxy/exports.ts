// The functions Envoy calls (ABI 0.2.1), routed to the plugin's contexts.
// Re-export everything here from the plugin's entry file:
//   export * from "./proxy/exports";
//
// These are the ones every HTTP plugin needs: contexts made and deleted,
// configuration, request headers. Envoy calls an exported callback on every
// request whether or not the plugin does anything in it, and skips one the
// module does not export. The others are one line each in the entry file
// (the template has all three; a plugin that overrides none of their
// methods may drop them):
//   export * from "./proxy/exports-request";   // onRequestBody, onRequestTrailers
//   export * from "./proxy/exports-response";  // onResponseHeaders, onResponseBody, onResponseTrailers
//   export * from "./proxy/exports-done";      // onDone, onLog (stream and root)
// An overridden method whose module is not exported is never called.
//
// Callbacks this layer does not export at all (network filters, HTTP and gRPC
// call responses, timers, queues) are skipped by Envoy. To use one, export it
// under its ABI name in a module like these and route it to a new method on
// the context classes.
import { BufferType, LogLevel, proxy_log } from "./abi";
import { configurationText, refreshLogLevel } from "./host";
import { createRoot, forgetStream, roots, stream, streams } from "./dispatch";

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

export function proxy_on_delete(context_id: u32): void {
  if (streams.has(context_id)) {
    stream(context_id).onDelete();
    forgetStream(context_id);
    return;
  }
  if (roots.has(context_id)) {
    roots.get(context_id).onDelete();
    roots.delete(context_id);
  }
}
