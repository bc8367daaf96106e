// Candidate: the header-authorization template on @gcoredev/proxy-wasm-sdk-as
// 1.2.3 and AssemblyScript 0.28; byte compare, encoded-once deny reply and log lines as the 0.14 template had.
export * from "./entry";
import { Context, FilterHeadersStatusValues, LogLevelValues, RootContext, log, registerRootContext } from "@gcoredev/proxy-wasm-sdk-as/assembly";
import { Config, parseConfig } from "./config";
import { LocalResponse, logEnabled, logWithId, refreshLogLevel, requestHeaderEquals, serializePairs } from "./host";

const DENY_DETAILS = "wasm_header_authorization_denied";

class AuthorizationRoot extends RootContext {
  config: Config = new Config();
  headerName: ArrayBuffer = new ArrayBuffer(0);
  expectedValue: ArrayBuffer = new ArrayBuffer(0);
  deny: LocalResponse = new LocalResponse(403, new ArrayBuffer(0), new ArrayBuffer(0), new ArrayBuffer(0));
  requestLine: ArrayBuffer = String.UTF8.encode(" wasm-as: on_http_request_headers");
  denyLine: ArrayBuffer = new ArrayBuffer(0);

  onConfigure(configuration_size: u32): bool {
    if (!super.onConfigure(configuration_size)) return false;
    const parsed = parseConfig(this.getConfiguration());
    if (parsed.config == null) {
      log(LogLevelValues.error, "wasm-as: rejected configuration: " + parsed.error);
      return false;
    }
    const config = parsed.config!;
    this.config = config;
    this.headerName = String.UTF8.encode(config.header);
    this.expectedValue = String.UTF8.encode(config.value);
    this.deny = new LocalResponse(config.denyStatus, String.UTF8.encode(DENY_DETAILS), String.UTF8.encode(config.denyBody), serializePairs(["content-type"], [config.denyContentType]));
    this.denyLine = String.UTF8.encode(" wasm-as: " + config.header + " header not found or is not " + config.value + ", deny by default");
    return true;
  }

  createContext(context_id: u32): Context {
    return new Authorization(context_id, this);
  }
}

class Authorization extends Context {
  constructor(context_id: u32, root: RootContext) {
    super(context_id, root);
    refreshLogLevel();
  }

  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const root = changetype<AuthorizationRoot>(this.root_context);
    logWithId(LogLevelValues.info, this.context_id, root.requestLine);
    if (requestHeaderEquals(root.headerName, root.expectedValue)) return FilterHeadersStatusValues.Continue;
    if (root.config.logDenials && logEnabled(LogLevelValues.info)) logWithId(LogLevelValues.info, this.context_id, root.denyLine);
    root.deny.send();
    return FilterHeadersStatusValues.StopIteration;
  }
}

registerRootContext((context_id: u32): RootContext => new AuthorizationRoot(context_id), "header-authorization");
