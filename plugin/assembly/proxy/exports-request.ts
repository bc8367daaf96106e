// The request body and trailers, for a stream context that overrides
// onRequestBody or onRequestTrailers. The template's entry file exports them:
//   export * from "./proxy/exports-request";
import { stream } from "./dispatch";

export function proxy_on_request_body(context_id: u32, body_size: u32, end_of_stream: u32): i32 {
  return stream(context_id).onRequestBody(body_size, end_of_stream != 0);
}

export function proxy_on_request_trailers(context_id: u32, trailer_count: u32): i32 {
  return stream(context_id).onRequestTrailers(trailer_count);
}
