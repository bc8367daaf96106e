// The proxy-wasm layer this plugin is built on: a few hundred lines of its
// own, on no SDK. What a plugin uses from it:
//   - RootContext and StreamContext (context.ts): extend them;
//   - registerRootContext (context.ts): register the root context under the
//     WasmPlugin's spec.pluginName;
//   - host calls (host.ts): log, getHeader/setHeader, LocalResponse, ...;
//   - ABI numbers (abi.ts): FilterHeadersStatus, HeaderMap, LogLevel, ...
// And the plugin's entry file re-exports ./exports, the functions Envoy calls.
export * from "./abi";
export * from "./context";
export * from "./host";
