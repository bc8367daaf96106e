// The entry points Envoy calls: the SDK's, except the end of the root
// context. @gcoredev/proxy-wasm-sdk-as 1.2.3 looks every context up in its
// map of stream contexts, where the root context is not kept, so Envoy's
// proxy_on_done / proxy_on_delete for the root context (at shutdown, and when
// a new configuration replaces the plugin) trap in the SDK ("Key does not
// exist"). Here the root context's end goes to the root context itself.
export {
  malloc,
  proxy_abi_version_0_2_1,
  proxy_on_vm_start,
  proxy_validate_configuration,
  proxy_on_configure,
  proxy_on_tick,
  proxy_on_foreign_function,
  proxy_on_queue_ready,
  proxy_on_request_headers,
  proxy_on_request_body,
  proxy_on_request_trailers,
  proxy_on_request_metadata,
  proxy_on_response_headers,
  proxy_on_response_body,
  proxy_on_response_trailers,
  proxy_on_response_metadata,
  proxy_on_http_call_response,
  proxy_on_grpc_receive_initial_metadata,
  proxy_on_grpc_trailing_metadata,
  proxy_on_grpc_receive,
  proxy_on_grpc_close,
  proxy_on_downstream_data,
  proxy_on_upstream_data,
  proxy_on_upstream_connection_close,
  proxy_on_downstream_connection_close,
  proxy_on_new_connection,
  proxy_on_log,
} from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";

import {
  proxy_on_context_create as sdkContextCreate,
  proxy_on_done as sdkDone,
  proxy_on_delete as sdkDelete,
} from "@gcoredev/proxy-wasm-sdk-as/assembly/exports";
import { getRootContext } from "@gcoredev/proxy-wasm-sdk-as/assembly/runtime";

// Envoy's context ids start at 1, so 0 means "no root context yet".
let rootContextId: u32 = 0;

export function proxy_on_context_create(context_id: u32, parent_context_id: u32): void {
  if (parent_context_id == 0) rootContextId = context_id;
  sdkContextCreate(context_id, parent_context_id);
}

export function proxy_on_done(context_id: u32): u32 {
  if (context_id == rootContextId) return getRootContext(context_id).onDone() ? 1 : 0;
  return sdkDone(context_id);
}

export function proxy_on_delete(context_id: u32): void {
  if (context_id == rootContextId) {
    getRootContext(context_id).onDelete();
    return;
  }
  sdkDelete(context_id);
}
