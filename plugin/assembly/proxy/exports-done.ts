// The end of a stream (onDone) and access-log time (onLog), and a
// root context's onDone when Envoy shuts the plugin down. The template's entry file exports them:
//   export * from "./proxy/exports-done";
// Without it a stream is simply deleted (onDelete) and a root context counts
// as done at once.
import { roots, stream, streams } from "./dispatch";

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
