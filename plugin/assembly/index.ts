// Header-authorization plugin: a request whose `allow` header is exactly `true`
// goes on to the upstream; any other request is answered here with 403.
//
// The header, the expected value and the deny response come from the plugin
// configuration (WasmPlugin.spec.pluginConfig); see config.ts for the keys.
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext,
  Context,
  registerRootContext,
  FilterHeadersStatusValues,
  GrpcStatusValues,
  LogLevelValues,
  HeaderPair,
  Headers,
  log,
  send_local_response,
  stream_context,
} from "@solo-io/proxy-runtime";
import { Config, parseConfig } from "./config";

/** The root id this plugin registers: WasmPlugin.spec.pluginName must equal it. */
export const ROOT_ID = "header-authorization";

class AuthorizationRoot extends RootContext {
  config: Config = new Config();
  // The deny response is built once per configuration, not once per request.
  denyBody: ArrayBuffer = new ArrayBuffer(0);
  denyHeaders: Headers = [];

  onConfigure(configuration_size: u32): bool {
    super.onConfigure(configuration_size);
    const parsed = parseConfig(this.getConfiguration());
    if (parsed.config == null) {
      log(LogLevelValues.error, "wasm-as: rejected configuration: " + parsed.error);
      return false;
    }
    const config = parsed.config as Config;
    this.config = config;
    this.denyBody = String.UTF8.encode(config.denyBody);
    const headers: Headers = [];
    headers.push(new HeaderPair(String.UTF8.encode("content-type"), String.UTF8.encode(config.denyContentType)));
    this.denyHeaders = headers;
    return true;
  }

  createContext(context_id: u32): Context {
    return new Authorization(context_id, this);
  }
}

class Authorization extends Context {
  root: AuthorizationRoot;

  constructor(context_id: u32, root: AuthorizationRoot) {
    super(context_id, root);
    this.root = root;
  }

  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const id = this.context_id.toString();
    log(LogLevelValues.info, "#" + id + " wasm-as: on_http_request_headers");
    const config = this.root.config;
    const got = stream_context.headers.request.get(config.header);
    if (got == config.value) {
      return FilterHeadersStatusValues.Continue;
    }
    if (config.logDenials) {
      log(LogLevelValues.info, "#" + id + " wasm-as: " + config.header + " header not found or is not " + config.value + ", deny by default");
    }
    send_local_response(config.denyStatus, "wasm_header_authorization_denied", this.root.denyBody, this.root.denyHeaders, GrpcStatusValues.Unknown);
    return FilterHeadersStatusValues.StopIteration;
  }
}

registerRootContext((context_id: u32): RootContext => {
  return new AuthorizationRoot(context_id);
}, ROOT_ID);
