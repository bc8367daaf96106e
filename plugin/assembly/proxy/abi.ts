// The proxy-wasm ABI 0.2.1 as far as this plugin uses it: the host functions
// it imports from Envoy and the numbers that go in and out of them.
//
// Every host function returns a status (WasmResult). Values the host hands
// back (a header's value, the configuration) are written into memory the host
// gets from the module's `malloc` export; the module frees it when done.
//
// To call another host function (proxy_add_header_map_value, proxy_http_call,
// proxy_set_tick_period_milliseconds, ...) declare it here the same way. Only
// functions Envoy registers will load: the build stage refuses a module that
// imports anything else.

/** Status of a host call. */
export namespace WasmResult {
  export const Ok: u32 = 0;
  export const NotFound: u32 = 1;
  export const BadArgument: u32 = 2;
}

/** Envoy's log levels, as proxy_log and proxy_get_log_level use them. */
export namespace LogLevel {
  export const trace: i32 = 0;
  export const debug: i32 = 1;
  export const info: i32 = 2;
  export const warn: i32 = 3;
  export const error: i32 = 4;
  export const critical: i32 = 5;
}

/** What proxy_on_request_headers / proxy_on_response_headers return. */
export enum FilterHeadersStatus {
  /** Hand the headers to the next filter. */
  Continue = 0,
  /** Hold the stream here (for a local response, or until a later callback resumes it). */
  StopIteration = 1,
}

/** What the body callbacks return. */
export enum FilterDataStatus {
  Continue = 0,
  /** Keep buffering the body until the end of the stream. */
  StopIterationAndBuffer = 1,
}

/** What the trailer callbacks return. */
export enum FilterTrailersStatus {
  Continue = 0,
  StopIteration = 1,
}

/** Header maps a stream callback can read and change. */
export enum HeaderMap {
  RequestHeaders = 0,
  RequestTrailers = 1,
  ResponseHeaders = 2,
  ResponseTrailers = 3,
}

/** Buffers the host hands over with proxy_get_buffer_bytes. */
export namespace BufferType {
  export const HttpRequestBody: u32 = 0;
  export const HttpResponseBody: u32 = 1;
  export const VmConfiguration: u32 = 6;
  export const PluginConfiguration: u32 = 7;
}

/** gRPC status sent with a local response (Envoy uses it only for gRPC requests). */
export const GRPC_STATUS_UNKNOWN: i32 = 2;

// @ts-ignore: decorator
@external("env", "proxy_log")
export declare function proxy_log(level: i32, message: usize, messageSize: usize): u32;

// Part of ABI 0.2.1 (not 0.2.0): the level at which Envoy writes this plugin's log.
// @ts-ignore: decorator
@external("env", "proxy_get_log_level")
export declare function proxy_get_log_level(levelOut: usize): u32;

// @ts-ignore: decorator
@external("env", "proxy_get_property")
export declare function proxy_get_property(path: usize, pathSize: usize, valueOut: usize, valueSizeOut: usize): u32;

// @ts-ignore: decorator
@external("env", "proxy_get_buffer_bytes")
export declare function proxy_get_buffer_bytes(buffer: u32, start: u32, maxSize: u32, bytesOut: usize, sizeOut: usize): u32;

// @ts-ignore: decorator
@external("env", "proxy_get_header_map_value")
export declare function proxy_get_header_map_value(map: u32, key: usize, keySize: usize, valueOut: usize, valueSizeOut: usize): u32;

// @ts-ignore: decorator
@external("env", "proxy_replace_header_map_value")
export declare function proxy_replace_header_map_value(map: u32, key: usize, keySize: usize, value: usize, valueSize: usize): u32;

// @ts-ignore: decorator
@external("env", "proxy_remove_header_map_value")
export declare function proxy_remove_header_map_value(map: u32, key: usize, keySize: usize): u32;

// @ts-ignore: decorator
@external("env", "proxy_send_local_response")
export declare function proxy_send_local_response(
  status: u32,
  details: usize,
  detailsSize: usize,
  body: usize,
  bodySize: usize,
  headers: usize,
  headersSize: usize,
  grpcStatus: i32,
): u32;
