// Header-authorization plugin: a request whose `allow` header is exactly `true`
// goes on to the upstream; any other request is answered here with 403.
//
// The header, the expected value and the deny response come from the plugin
// configuration (WasmPlugin.spec.pluginConfig); see config.ts for the keys.
//
// It runs on every request the gateway serves, so the request path does no
// work whose result Envoy would throw away: the deny response, the header name
// and value and the log messages are encoded once per configuration, the
// header is compared as bytes, and log lines are only built when Envoy's log
// level for the plugin lets them through (see host.ts and streams.ts).

// The module's exports: the SDK's, with the per-stream entry points from
// streams.ts in place of the SDK's own.
export {
  malloc,
  free,
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
} from "@solo-io/proxy-runtime/proxy";
export {
  proxy_on_context_create,
  proxy_on_request_headers,
  proxy_on_request_body,
  proxy_on_request_trailers,
  proxy_on_request_metadata,
  proxy_on_response_headers,
  proxy_on_response_body,
  proxy_on_response_trailers,
  proxy_on_response_metadata,
  proxy_on_done,
  proxy_on_log,
  proxy_on_delete,
} from "./streams";
import {
  RootContext,
  Context,
  registerRootContext,
  FilterHeadersStatusValues,
  LogLevelValues,
  log,
} from "@solo-io/proxy-runtime";
import { Config, parseConfig } from "./config";
import { LocalResponse, logLevel, logWithId, requestHeaderEquals, serializePairs } from "./host";
import { trackRoot } from "./streams";

// ABI 0.2.1 is 0.2.0 plus proxy_get_log_level, which host.ts uses. Envoy
// (proxy-wasm-cpp-host) treats the two alike otherwise.
export function proxy_abi_version_0_2_1(): void {}

/** The root id this plugin registers: WasmPlugin.spec.pluginName must equal it. */
export const ROOT_ID = "header-authorization";

/** Envoy's response code details for a denial (shown as %RESPONSE_CODE_DETAILS% in access logs). */
const DENY_DETAILS = "wasm_header_authorization_denied";

class AuthorizationRoot extends RootContext {
  config: Config = new Config();
  // Everything a request needs, encoded once per configuration.
  headerName: ArrayBuffer = new ArrayBuffer(0);
  expectedValue: ArrayBuffer = new ArrayBuffer(0);
  deny: LocalResponse = new LocalResponse(403, new ArrayBuffer(0), new ArrayBuffer(0), new ArrayBuffer(0));
  requestLine: ArrayBuffer = String.UTF8.encode(" wasm-as: on_http_request_headers");
  denyLine: ArrayBuffer = new ArrayBuffer(0);

  onConfigure(configuration_size: u32): bool {
    // Without a pluginConfig Envoy has no configuration bytes to hand over, and
    // asking for zero of them leaves the SDK reading a stale buffer. An empty
    // configuration means all defaults.
    let text = "";
    if (configuration_size > 0) {
      super.onConfigure(configuration_size);
      text = this.getConfiguration();
    }
    const parsed = parseConfig(text);
    if (parsed.config == null) {
      log(LogLevelValues.error, "wasm-as: rejected configuration: " + parsed.error);
      return false;
    }
    const config = parsed.config as Config;
    this.config = config;
    this.headerName = String.UTF8.encode(config.header);
    this.expectedValue = String.UTF8.encode(config.value);
    this.deny = new LocalResponse(
      config.denyStatus,
      String.UTF8.encode(DENY_DETAILS),
      String.UTF8.encode(config.denyBody),
      serializePairs(["content-type"], [config.denyContentType]),
    );
    this.denyLine = String.UTF8.encode(" wasm-as: " + config.header + " header not found or is not " + config.value + ", deny by default");
    return true;
  }

  createContext(context_id: u32): Context {
    return new Authorization(context_id, this);
  }
}

class Authorization extends Context {
  root: AuthorizationRoot;
  /** Envoy's log level for the plugin when this request began. */
  level: i32;

  constructor(context_id: u32, root: AuthorizationRoot) {
    super(context_id, root);
    this.root = root;
    this.level = logLevel();
  }

  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const root = this.root;
    const info = this.level <= LogLevelValues.info;
    if (info) logWithId(LogLevelValues.info, this.context_id, root.requestLine);
    if (requestHeaderEquals(root.headerName, root.expectedValue)) {
      return FilterHeadersStatusValues.Continue;
    }
    if (info && root.config.logDenials) logWithId(LogLevelValues.info, this.context_id, root.denyLine);
    root.deny.send();
    return FilterHeadersStatusValues.StopIteration;
  }

  // The SDK logs each of these at debug level; skip building the line when
  // Envoy would drop it.
  onDone(): bool {
    return this.level <= LogLevelValues.debug ? super.onDone() : true;
  }

  onLog(): void {
    if (this.level <= LogLevelValues.debug) super.onLog();
  }

  onDelete(): void {
    if (this.level <= LogLevelValues.debug) super.onDelete();
  }
}

registerRootContext((context_id: u32): RootContext => {
  return trackRoot(new AuthorizationRoot(context_id));
}, ROOT_ID);
