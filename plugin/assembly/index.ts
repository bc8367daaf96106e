// Header-authorization plugin: a request whose `allow` header is exactly `true`
// goes on to the upstream; any other request is answered here with 403.
//
// The header, the expected value and the deny response come from the plugin
// configuration (WasmPlugin.spec.pluginConfig); see config.ts for the keys.
//
// It runs on every request the gateway serves, so the request path does no
// work whose result Envoy would throw away: the deny response, the header name
// and value and the log messages are encoded once per configuration, the
// header is compared as bytes, and log lines are only written when Envoy's log
// level for the plugin lets them through.
//
// To write your own plugin from this one: keep proxy/ as it is, change the two
// classes below (add onResponseHeaders, onRequestBody, ... to the stream
// context as you need them; see proxy/context.ts), and register the root
// context under your WasmPlugin's spec.pluginName.

// The functions Envoy calls: the ABI marker, the allocator, contexts made and
// deleted, configuration, request headers.
export * from "./proxy/exports";
// The other stream callbacks. Envoy calls every callback a module exports on
// every request, so a plugin that overrides none of these methods could drop
// these lines; the template keeps them, because an override whose export is
// missing is silently never called, and dropping all three measured within
// the noise of the benchmark (0.99x and 1.06x the CPU per request).
export * from "./proxy/exports-request";   // onRequestBody, onRequestTrailers
export * from "./proxy/exports-response";  // onResponseHeaders, onResponseBody, onResponseTrailers
export * from "./proxy/exports-done";      // onDone, onLog

import {
  FilterHeadersStatus,
  HeaderMap,
  LocalResponse,
  LogLevel,
  RootContext,
  StreamContext,
  headerEquals,
  log,
  logEnabled,
  logWithId,
  registerRootContext,
} from "./proxy";
import { Config, parseConfig } from "./config";

/** The root id this plugin registers: WasmPlugin.spec.pluginName must equal it. */
const ROOT_ID = "header-authorization";

/** Envoy's response code details for a denial (shown as %RESPONSE_CODE_DETAILS% in access logs). */
const DENY_DETAILS = "wasm_header_authorization_denied";

class AuthorizationRoot extends RootContext {
  config: Config = new Config();
  // Everything a request needs, encoded once per configuration.
  headerName: ArrayBuffer = new ArrayBuffer(0);
  expectedValue: ArrayBuffer = new ArrayBuffer(0);
  deny: LocalResponse = new LocalResponse(403, DENY_DETAILS, "", [], []);
  requestLine: ArrayBuffer = String.UTF8.encode(" wasm-as: on_http_request_headers");
  denyLine: ArrayBuffer = new ArrayBuffer(0);

  onConfigure(configuration: string): bool {
    // An empty configuration (no pluginConfig) means all defaults.
    const parsed = parseConfig(configuration);
    if (parsed.config == null) {
      log(LogLevel.error, "wasm-as: rejected configuration: " + parsed.error);
      return false;
    }
    const config = parsed.config!;
    this.config = config;
    this.headerName = String.UTF8.encode(config.header);
    this.expectedValue = String.UTF8.encode(config.value);
    this.deny = new LocalResponse(config.denyStatus, DENY_DETAILS, config.denyBody, ["content-type"], [config.denyContentType]);
    this.denyLine = String.UTF8.encode(" wasm-as: " + config.header + " header not found or is not " + config.value + ", deny by default");
    return true;
  }

  newStream(id: u32): StreamContext {
    return new Authorization(id, this);
  }
}

class Authorization extends StreamContext {
  onRequestHeaders(headerCount: u32, endOfStream: bool): FilterHeadersStatus {
    const root = changetype<AuthorizationRoot>(this.root);
    logWithId(LogLevel.info, this.id, root.requestLine);
    if (headerEquals(HeaderMap.RequestHeaders, root.headerName, root.expectedValue)) {
      return FilterHeadersStatus.Continue;
    }
    if (root.config.logDenials && logEnabled(LogLevel.info)) logWithId(LogLevel.info, this.id, root.denyLine);
    root.deny.send();
    return FilterHeadersStatus.StopIteration;
  }
}

registerRootContext((id: u32): RootContext => new AuthorizationRoot(id), ROOT_ID);
