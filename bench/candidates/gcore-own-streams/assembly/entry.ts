// Entry points: the SDK's for root contexts; stream contexts are kept by the
// plugin itself (the SDK's ensureContext builds several debug lines per
// request), and the root context's end goes to the root context (the SDK
// looks it up among stream contexts and traps).
export {
  malloc,
  proxy_abi_version_0_2_1,
  proxy_on_vm_start,
  proxy_validate_configuration,
  proxy_on_configure,
  proxy_on_tick,
  proxy_on_foreign_function,
  proxy_on_queue_ready,
  proxy_on_http_call_response,
  proxy_on_grpc_receive_initial_metadata,
  proxy_on_grpc_trailing_metadata,
  proxy_on_grpc_receive,
  proxy_on_grpc_close,
} from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import { Context, LogLevelValues } from "@gcoredev/proxy-wasm-sdk-as/assembly";
import { proxy_on_context_create as sdkContextCreate } from "@gcoredev/proxy-wasm-sdk-as/assembly/exports";
import { getRootContext } from "@gcoredev/proxy-wasm-sdk-as/assembly/runtime";
import { refreshLogLevel } from "./host";

let rootContextId: u32 = 0;
const streams = new Map<u32, Context>();

export function proxy_on_context_create(context_id: u32, parent_context_id: u32): void {
  if (parent_context_id == 0) {
    rootContextId = context_id;
    sdkContextCreate(context_id, parent_context_id);
    return;
  }
  refreshLogLevel();
  streams.set(context_id, getRootContext(parent_context_id).createContext(context_id));
}

export function proxy_on_request_headers(context_id: u32, headers: u32, end_of_stream: u32): i32 {
  return streams.get(context_id).onRequestHeaders(headers, end_of_stream != 0);
}
export function proxy_on_request_body(context_id: u32, size: u32, end_of_stream: u32): i32 {
  return streams.get(context_id).onRequestBody(size, end_of_stream != 0);
}
export function proxy_on_request_trailers(context_id: u32, n: u32): i32 {
  return streams.get(context_id).onRequestTrailers(n);
}
export function proxy_on_response_headers(context_id: u32, headers: u32, end_of_stream: u32): i32 {
  return streams.get(context_id).onResponseHeaders(headers, end_of_stream != 0);
}
export function proxy_on_response_body(context_id: u32, size: u32, end_of_stream: u32): i32 {
  return streams.get(context_id).onResponseBody(size, end_of_stream != 0);
}
export function proxy_on_response_trailers(context_id: u32, n: u32): i32 {
  return streams.get(context_id).onResponseTrailers(n);
}
export function proxy_on_done(context_id: u32): u32 {
  if (context_id == rootContextId) return getRootContext(context_id).onDone() ? 1 : 0;
  return 1;
}
export function proxy_on_log(context_id: u32): void {}
export function proxy_on_delete(context_id: u32): void {
  if (context_id == rootContextId) {
    getRootContext(context_id).onDelete();
    return;
  }
  streams.delete(context_id);
}
