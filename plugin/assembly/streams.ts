// The module's per-stream entry points: Envoy calls these for every request.
//
// The SDK's own versions look the stream's context up in the SDK's context
// table, and creating a context there logs seven debug lines, three of them
// listing every live context id. Envoy drops those lines unless the plugin's
// log level is debug, but the module has built and encoded them by then, on
// every request. So while Envoy logs at info or above, stream contexts are
// created and kept here, silently; at debug or trace, and for root contexts,
// everything goes through the SDK exactly as before, debug lines included.
// Root-context entry points (configure, tick, VM start, HTTP/gRPC call
// responses) are the SDK's, unchanged.
import { Context, RootContext, LogLevelValues } from "@solo-io/proxy-runtime";
import { getContext } from "@solo-io/proxy-runtime/runtime";
import {
  proxy_on_context_create as sdk_on_context_create,
  proxy_on_done as sdk_on_done,
  proxy_on_log as sdk_on_log,
  proxy_on_delete as sdk_on_delete,
} from "@solo-io/proxy-runtime/exports";
import { refreshLogLevel } from "./host";

const roots = new Map<u32, RootContext>();
const streams = new Map<u32, Context>();

/** Makes a root context known here; call it from the root context factory. */
export function trackRoot(root: RootContext): RootContext {
  roots.set(root.context_id, root);
  return root;
}

function contextOf(context_id: u32): Context {
  return streams.has(context_id) ? streams.get(context_id) : getContext(context_id);
}

export function proxy_on_context_create(context_id: u32, root_context_id: u32): void {
  const level = refreshLogLevel();
  if (root_context_id == 0 || level <= LogLevelValues.debug || !roots.has(root_context_id)) {
    sdk_on_context_create(context_id, root_context_id);
    return;
  }
  streams.set(context_id, roots.get(root_context_id).createContext(context_id));
}

export function proxy_on_request_headers(context_id: u32, headers: u32, end_of_stream: u32): i32 {
  return contextOf(context_id).onRequestHeaders(headers, end_of_stream != 0);
}
export function proxy_on_request_body(context_id: u32, body_buffer_length: u32, end_of_stream: u32): i32 {
  return contextOf(context_id).onRequestBody(body_buffer_length, end_of_stream != 0);
}
export function proxy_on_request_trailers(context_id: u32, trailers: u32): i32 {
  return contextOf(context_id).onRequestTrailers(trailers);
}
export function proxy_on_request_metadata(context_id: u32, nelements: u32): i32 {
  return contextOf(context_id).onRequestMetadata(nelements);
}
export function proxy_on_response_headers(context_id: u32, headers: u32, end_of_stream: u32): i32 {
  return contextOf(context_id).onResponseHeaders(headers, end_of_stream != 0);
}
export function proxy_on_response_body(context_id: u32, body_buffer_length: u32, end_of_stream: u32): i32 {
  return contextOf(context_id).onResponseBody(body_buffer_length, end_of_stream != 0);
}
export function proxy_on_response_trailers(context_id: u32, trailers: u32): i32 {
  return contextOf(context_id).onResponseTrailers(trailers);
}
export function proxy_on_response_metadata(context_id: u32, nelements: u32): i32 {
  return contextOf(context_id).onResponseMetadata(nelements);
}

export function proxy_on_done(context_id: u32): u32 {
  if (streams.has(context_id)) return streams.get(context_id).onDone() ? 1 : 0;
  return sdk_on_done(context_id);
}

export function proxy_on_log(context_id: u32): void {
  if (streams.has(context_id)) streams.get(context_id).onLog();
  else sdk_on_log(context_id);
}

// The last call for a context: it is forgotten here, so its memory is freed.
export function proxy_on_delete(context_id: u32): void {
  if (streams.has(context_id)) {
    streams.get(context_id).onDelete();
    streams.delete(context_id);
    return;
  }
  if (roots.has(context_id)) roots.delete(context_id);
  sdk_on_delete(context_id);
}
