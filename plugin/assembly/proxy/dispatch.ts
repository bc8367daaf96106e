// The contexts Envoy has created in this VM, by id: what the exports route
// each call to. Internal to the layer (the entry file re-exports the export
// modules, never this one, so nothing here becomes a Wasm export).
import { RootContext, StreamContext, registeredRootIds, rootFactory } from "./context";
import { LogLevel } from "./abi";
import { getProperty, log } from "./host";

export const roots = new Map<u32, RootContext>();
export const streams = new Map<u32, StreamContext>();

// Envoy makes several calls in a row for one stream: remember the last one
// looked up.
let lastId: u32 = 0;
let last: StreamContext | null = null;

export function stream(id: u32): StreamContext {
  const cached = last;
  if (id == lastId && cached !== null) return cached;
  const found = streams.get(id);
  lastId = id;
  last = found;
  return found;
}

/** Forgets a stream context (its last call). */
export function forgetStream(id: u32): void {
  streams.delete(id);
  if (lastId == id) {
    lastId = 0;
    last = null;
  }
}

export function createRoot(id: u32): void {
  const raw = getProperty(["plugin_root_id"]);
  const name = raw == null ? "" : String.UTF8.decode(raw);
  const factory = rootFactory(name);
  if (factory == null) {
    log(LogLevel.critical, "Missing root context factory for root id \"" + name + "\": this plugin registers " + registeredRootIds() + " (set the WasmPlugin's spec.pluginName to it)");
    unreachable();
  }
  roots.set(id, factory!(id));
}
