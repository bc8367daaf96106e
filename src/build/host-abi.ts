// What Envoy's Wasm host offers a module to import, as data.
//
// Where these facts come from (read, not copied; the tables below are our own):
// - Envoy 1.40 builds its proxy-wasm host from proxy-wasm/proxy-wasm-cpp-host
//   at commit f2db56af443571e92a31c0b877106d9ea96e19ef (envoyproxy/envoy
//   MODULE.bazel on the 1.40.0-dev line: bazel_dep proxy-wasm-cpp-host
//   "0.0.0-260704-f2db56a.envoy"). No file under src/ or include/ of
//   proxy-wasm-cpp-host changed after that commit in the snapshot we read.
// - proxy-wasm-cpp-host include/proxy-wasm/exports.h: the lists of host
//   functions (FOR_ALL_HOST_FUNCTIONS, FOR_ALL_HOST_FUNCTIONS_ABI_SPECIFIC) and
//   of WASI functions (FOR_ALL_WASI_FUNCTIONS).
// - proxy-wasm-cpp-host src/wasm.cc, WasmBase::registerCallbacks: what is
//   registered, under which module name, and for which ABI marker.
// - proxy-wasm-cpp-host src/v8/v8.cc (and src/wasmtime/wasmtime.cc), link():
//   a function import with no registered host function fails the load with
//   "Failed to load Wasm module due to a missing import: <module>.<name>";
//   a global import fails the same way; memory and table imports are created
//   by the host whatever their names.
// - envoyproxy/envoy source/extensions/common/wasm/wasm.cc,
//   Wasm::registerCallbacks: Envoy adds one host function of its own,
//   env.envoy_resolve_dns, on top of the proxy-wasm host's.
// - Checked against the Envoy 1.40.0 release binary (V8 runtime): for each
//   ABI marker, a module importing one name at a time from these tables and
//   from the foreign table below fails with "missing import" exactly where
//   the tables say Envoy lacks the name.
//
// What differs between ABI versions (the marker export the module carries):
// - 36 env.proxy_* functions are registered for every ABI.
// - Only for proxy_abi_version_0_1_0: proxy_get_configuration,
//   proxy_continue_request, proxy_continue_response, proxy_clear_route_cache.
// - Only for proxy_abi_version_0_2_0: proxy_continue_stream, proxy_close_stream.
// - Only for proxy_abi_version_0_2_1: proxy_continue_stream,
//   proxy_close_stream, proxy_get_log_level.
// So a 0.2.0 module importing proxy_get_log_level, or a 0.2.x module importing
// proxy_clear_route_cache, does not load: Envoy registers those by marker.
// - Registered whatever the ABI: env.pthread_equal and
//   env.emscripten_notify_memory_growth (helpers for emscripten-built
//   modules), env.envoy_resolve_dns (Envoy's own), and the 45 WASI functions
//   below under both wasi_snapshot_preview1 and the older wasi_unstable name.
//   Of WASI preview1's 46 functions only proc_raise is missing. A WASI
//   function the plugin is not allowed to use (capability restrictions) is
//   still registered, as a stub that fails when called, so it still links.

/** The Envoy release these tables were read for. */
export const HOST_ABI_ENVOY_VERSION = '1.40';
/** The proxy-wasm-cpp-host commit Envoy 1.40 builds with. */
export const PROXY_WASM_CPP_HOST_COMMIT = 'f2db56af443571e92a31c0b877106d9ea96e19ef';

export const ABI_MARKERS = ['proxy_abi_version_0_1_0', 'proxy_abi_version_0_2_0', 'proxy_abi_version_0_2_1'] as const;
export type AbiMarker = (typeof ABI_MARKERS)[number];

/** env.proxy_* host functions registered whatever the module's ABI marker. */
export const PROXY_FUNCTIONS_EVERY_ABI: readonly string[] = [
  'proxy_log',
  'proxy_get_status',
  'proxy_set_property',
  'proxy_get_property',
  'proxy_send_local_response',
  'proxy_get_shared_data',
  'proxy_set_shared_data',
  'proxy_register_shared_queue',
  'proxy_resolve_shared_queue',
  'proxy_dequeue_shared_queue',
  'proxy_enqueue_shared_queue',
  'proxy_get_header_map_value',
  'proxy_add_header_map_value',
  'proxy_replace_header_map_value',
  'proxy_remove_header_map_value',
  'proxy_get_header_map_pairs',
  'proxy_set_header_map_pairs',
  'proxy_get_header_map_size',
  'proxy_get_buffer_status',
  'proxy_get_buffer_bytes',
  'proxy_set_buffer_bytes',
  'proxy_http_call',
  'proxy_grpc_call',
  'proxy_grpc_stream',
  'proxy_grpc_close',
  'proxy_grpc_cancel',
  'proxy_grpc_send',
  'proxy_set_tick_period_milliseconds',
  'proxy_get_current_time_nanoseconds',
  'proxy_define_metric',
  'proxy_increment_metric',
  'proxy_record_metric',
  'proxy_get_metric',
  'proxy_set_effective_context',
  'proxy_done',
  'proxy_call_foreign_function',
];

/** env.proxy_* host functions registered only for modules carrying that marker. */
export const PROXY_FUNCTIONS_BY_ABI: Readonly<Record<AbiMarker, readonly string[]>> = {
  proxy_abi_version_0_1_0: ['proxy_get_configuration', 'proxy_continue_request', 'proxy_continue_response', 'proxy_clear_route_cache'],
  proxy_abi_version_0_2_0: ['proxy_continue_stream', 'proxy_close_stream'],
  proxy_abi_version_0_2_1: ['proxy_continue_stream', 'proxy_close_stream', 'proxy_get_log_level'],
};

/** Other env imports registered for every module: emscripten helpers and Envoy's own addition. */
export const OTHER_ENV_FUNCTIONS: readonly string[] = ['pthread_equal', 'emscripten_notify_memory_growth', 'envoy_resolve_dns'];

/** Module names under which the WASI functions are registered (the same set under each). */
export const WASI_MODULES: readonly string[] = ['wasi_snapshot_preview1', 'wasi_unstable'];

/** WASI preview1 functions Envoy registers. */
export const WASI_FUNCTIONS: readonly string[] = [
  'args_get',
  'args_sizes_get',
  'clock_res_get',
  'clock_time_get',
  'environ_get',
  'environ_sizes_get',
  'fd_advise',
  'fd_allocate',
  'fd_close',
  'fd_datasync',
  'fd_fdstat_get',
  'fd_fdstat_set_flags',
  'fd_fdstat_set_rights',
  'fd_filestat_get',
  'fd_filestat_set_size',
  'fd_filestat_set_times',
  'fd_pread',
  'fd_prestat_dir_name',
  'fd_prestat_get',
  'fd_pwrite',
  'fd_read',
  'fd_readdir',
  'fd_renumber',
  'fd_seek',
  'fd_sync',
  'fd_tell',
  'fd_write',
  'path_create_directory',
  'path_filestat_get',
  'path_filestat_set_times',
  'path_link',
  'path_open',
  'path_readlink',
  'path_remove_directory',
  'path_rename',
  'path_symlink',
  'path_unlink_file',
  'poll_oneoff',
  'proc_exit',
  'random_get',
  'sched_yield',
  'sock_accept',
  'sock_recv',
  'sock_send',
  'sock_shutdown',
];

/** WASI preview1 functions Envoy does not register: a module importing one does not load. */
export const WASI_FUNCTIONS_MISSING: readonly string[] = ['proc_raise'];

/** Every env function Envoy registers for a module with this marker. */
export function envFunctionsFor(abi: AbiMarker): ReadonlySet<string> {
  return new Set([...PROXY_FUNCTIONS_EVERY_ABI, ...PROXY_FUNCTIONS_BY_ABI[abi], ...OTHER_ENV_FUNCTIONS]);
}

/** Whether Envoy links a function import `module.name` for a module with this marker. */
export function envoyProvides(module: string, name: string, abi: AbiMarker): boolean {
  if (module === 'env') return envFunctionsFor(abi).has(name);
  if (WASI_MODULES.includes(module)) return WASI_FUNCTIONS.includes(name);
  return false;
}

/** The markers for which Envoy registers env.`name` (empty if none). */
export function abisProviding(name: string): AbiMarker[] {
  return ABI_MARKERS.filter((abi) => envFunctionsFor(abi).has(name));
}

// Host functions of other proxy-wasm hosts, so a refused import can be named
// with where it comes from. Each entry was checked against that host's or
// SDK's own sources (named in `source`) and is absent from Envoy's tables above.

export interface ForeignHost {
  /** The host, as a reader would know it. */
  host: string;
  /** Where we read that the host (or its SDK) has these functions. */
  source: string;
  /** What to do instead, for the problem message. */
  advice: string;
  /** env function names. */
  functions: readonly string[];
}

export const FOREIGN_HOSTS: readonly ForeignHost[] = [
  {
    host: 'Gcore FastEdge',
    source: 'npm @gcoredev/proxy-wasm-sdk-as@1.2.3, assembly/imports.ts ("FastEdge HOST Apis")',
    advice:
      'remove the call (the FastEdge dictionary, secrets and KV store exist only on that CDN) and pass such values through the plugin configuration (spec.pluginConfig) instead',
    functions: [
      'proxy_dictionary_get',
      'proxy_get_secret',
      'proxy_get_effective_at_secret',
      'proxy_kv_store_open',
      'proxy_kv_store_get',
      'proxy_kv_store_scan',
      'proxy_kv_store_zrange_by_score',
      'proxy_kv_store_zscan',
      'proxy_kv_store_bf_exists',
    ],
  },
  {
    host: 'Higress (its fork of proxy-wasm-cpp-host)',
    source: 'higress-group/proxy-wasm-cpp-host 913c1b02cbbdba00682ac29787b0986d85890a54, include/proxy-wasm/exports.h and src/wasm.cc',
    advice: 'remove the call; upstream Envoy has no such host call (Higress adds them for its own gateway)',
    functions: [
      'proxy_redis_init',
      'proxy_redis_call',
      'proxy_get_upstream_hosts',
      'proxy_set_upstream_override_host',
      'proxy_inject_encoded_data_to_filter_chain',
    ],
  },
  {
    host: 'MOSN (proxy-wasm-go-host)',
    source: 'mosn/proxy-wasm-go-host 25a9e133320ed52aee6ef87f6dcbed77f526550e, internal/imports/v1/imports.go and v2/imports.go',
    advice: 'remove the call, or use the proxy_* call Envoy offers for the same job (see the SDK written for Envoy)',
    functions: [
      // MOSN's ABI 0.1.0 set, beyond Envoy's.
      'proxy_resume_downstream',
      'proxy_resume_upstream',
      'proxy_resume_http_request',
      'proxy_resume_http_response',
      'proxy_send_http_response',
      'proxy_dispatch_http_call',
      'proxy_dispatch_grpc_call',
      'proxy_open_grpc_stream',
      'proxy_send_grpc_call_message',
      'proxy_cancel_grpc_call',
      'proxy_close_grpc_call',
      'proxy_remove_metric',
      'proxy_remove_shared_queue',
      // MOSN's ABI 0.2.0 set, beyond Envoy's and the above.
      'proxy_context_finalize',
      'proxy_resume_stream',
      'proxy_resume_http_stream',
      'proxy_close_http_stream',
      'proxy_get_buffer',
      'proxy_set_buffer',
      'proxy_open_shared_kvstore',
      'proxy_get_shared_kvstore_key_values',
      'proxy_set_shared_kvstore_key_values',
      'proxy_add_shared_kvstore_key_values',
      'proxy_remove_shared_kvstore_key',
      'proxy_delete_shared_kvstore',
      'proxy_open_shared_queue',
      'proxy_dequeue_shared_queue_item',
      'proxy_enqueue_shared_queue_item',
      'proxy_delete_shared_queue',
      'proxy_create_timer',
      'proxy_delete_timer',
      'proxy_create_metric',
      'proxy_get_metric_value',
      'proxy_set_metric_value',
      'proxy_increment_metric_value',
      'proxy_delete_metric',
      'proxy_send_grpc_stream_message',
      'proxy_call_custom_function',
    ],
  },
];

/** The foreign hosts known to offer env.`name` (empty if none). */
export function foreignHostsOf(name: string): ForeignHost[] {
  return FOREIGN_HOSTS.filter((h) => h.functions.includes(name));
}
