;; The floor of a proxy-wasm plugin that enforces the reference policy:
;; written by hand in WebAssembly text, no language runtime, no context
;; objects, no allocator beyond a bump pointer reset on every request. It
;; exports only what Envoy must call (context creation is a no-op; the
;; request headers callback does the one header read and, when denied, the
;; one local response) and imports two host functions. What it costs in
;; Envoy over RBAC is what any Wasm plugin costs; what the template costs
;; over it is the template's own. Used as a bench lane:
;;   npm run bench -- --plugin floor=bench/floor/floor.wat --root-id any --config none
;; (the bench compiles .wat with the Binaryen the AssemblyScript toolchain ships).
(module
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $send (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  ;; 16: "allow"  32: "true"  48: details  96: body  192: header pairs  1024: out slots  2048: heap
  (data (i32.const 16) "allow")
  (data (i32.const 32) "true")
  (data (i32.const 48) "wasm_header_authorization_denied")
  (data (i32.const 96) "\46\6f\72\62\69\64\64\65\6e\20\62\79\20\41\53\4d\20\57\61\73\6d\20\50\6c\75\67\69\6e\2c\20\61\73\73\65\6d\62\6c\79\73\63\72\69\70\74\20\76\65\72\73\69\6f\6e\0a")
  (data (i32.const 192) "\01\00\00\00\0c\00\00\00\0a\00\00\00\63\6f\6e\74\65\6e\74\2d\74\79\70\65\00\74\65\78\74\2f\70\6c\61\69\6e\00")
  (global $heap (mut i32) (i32.const 2048))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $size)) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $allowed i32)
    (global.set $heap (i32.const 2048))
    (i32.store (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (i32.const 0))
    (if (i32.eqz (call $get_header (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 1024) (i32.const 1028)))
      (then
        (if (i32.eq (i32.load (i32.const 1028)) (i32.const 4))
          (then
            (local.set $allowed
              (i32.eq (i32.load (i32.load (i32.const 1024))) (i32.load (i32.const 32))))))))
    (if (result i32) (local.get $allowed)
      (then (i32.const 0))
      (else
        (drop (call $send (i32.const 403) (i32.const 48) (i32.const 32) (i32.const 96) (i32.const 53) (i32.const 192) (i32.const 36) (i32.const -1)))
        (i32.const 1))))
)
