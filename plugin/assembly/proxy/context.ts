// Contexts: what a plugin extends.
//
// Envoy creates one root context per plugin configuration in each VM (one VM
// per worker thread) and one stream context per HTTP request. A plugin
// registers a factory for its root context under its root id (the
// WasmPlugin's spec.pluginName); the root context makes the stream contexts.
// Override the callbacks you need; the defaults let everything through.
import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus } from "./abi";

export class RootContext {
  constructor(public readonly id: u32) {}

  /** The VM started (once per VM). Return false to fail the plugin. */
  onVmStart(vmConfiguration: string): bool {
    return true;
  }

  /**
   * The plugin configuration arrived (at start and whenever the WasmPlugin's
   * pluginConfig changes). Return false to reject it: Envoy then refuses the
   * plugin and logs why. Prepare here whatever requests need, once.
   */
  onConfigure(configuration: string): bool {
    return true;
  }

  /** A context for a new request. */
  newStream(id: u32): StreamContext {
    return new StreamContext(id, this);
  }

  /** Envoy is shutting the plugin down. Return true when done. */
  onDone(): bool {
    return true;
  }

  /** The last call for this context. */
  onDelete(): void {}
}

export class StreamContext {
  constructor(public readonly id: u32, public readonly root: RootContext) {}

  /** The request's headers: read and change them with getHeader/setHeader(HeaderMap.RequestHeaders, ...). */
  onRequestHeaders(headerCount: u32, endOfStream: bool): FilterHeadersStatus {
    return FilterHeadersStatus.Continue;
  }

  onRequestBody(bodySize: u32, endOfStream: bool): FilterDataStatus {
    return FilterDataStatus.Continue;
  }

  onRequestTrailers(trailerCount: u32): FilterTrailersStatus {
    return FilterTrailersStatus.Continue;
  }

  /** The response's headers (also those of a local response): HeaderMap.ResponseHeaders. */
  onResponseHeaders(headerCount: u32, endOfStream: bool): FilterHeadersStatus {
    return FilterHeadersStatus.Continue;
  }

  onResponseBody(bodySize: u32, endOfStream: bool): FilterDataStatus {
    return FilterDataStatus.Continue;
  }

  onResponseTrailers(trailerCount: u32): FilterTrailersStatus {
    return FilterTrailersStatus.Continue;
  }

  /** The stream ended. */
  onDone(): void {}

  /** Access-log time: the request and response are complete. */
  onLog(): void {}

  /** The last call for this context; it is forgotten afterwards. */
  onDelete(): void {}
}

// Root context factories by root id.
const factories = new Map<string, (id: u32) => RootContext>();

/**
 * Registers the root context factory for root id `name`. Envoy passes the
 * WasmPlugin's spec.pluginName as the root id; a plugin loaded under an id it
 * did not register fails to start, with a log line that says so.
 */
export function registerRootContext(factory: (id: u32) => RootContext, name: string): void {
  factories.set(name, factory);
}

/** The factory for `name`, or null. */
export function rootFactory(name: string): ((id: u32) => RootContext) | null {
  return factories.has(name) ? factories.get(name) : null;
}

/** The registered root ids, for an error message. */
export function registeredRootIds(): string {
  return factories.keys().join(", ");
}
