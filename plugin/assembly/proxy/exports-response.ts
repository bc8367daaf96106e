// The response's headers, body and trailers, for a stream context
// that overrides onResponseHeaders, onResponseBody or onResponseTrailers. In
// the entry file (the template exports them):
//   export * from "./proxy/exports-response";
import { stream } from "./dispatch";

export function proxy_on_response_headers(context_id: u32, header_count: u32, end_of_stream: u32): i32 {
  return stream(context_id).onResponseHeaders(header_count, end_of_stream != 0);
}

export function proxy_on_response_body(context_id: u32, body_size: u32, end_of_stream: u32): i32 {
  return stream(context_id).onResponseBody(body_size, end_of_stream != 0);
}

export function proxy_on_response_trailers(context_id: u32, trailer_count: u32): i32 {
  return stream(context_id).onResponseTrailers(trailer_count);
}
