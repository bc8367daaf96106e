import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.js';
import {
  changedPluginConfigKeys,
  describeSha256,
  filterSettings,
  pluginConfigJson,
  urlDigest,
  validateResource,
  withPluginConfigHidden,
  type WasmPlugin,
} from '../../../src/plugin/index.js';
import { pluginOf, type FlatPlugin } from '../../helpers/plugin.js';

const DIGEST = 'b'.repeat(64);
const base: FlatPlugin = { name: 'hello', url: `oci://registry.example.com/ns/hello@sha256:${DIGEST}`, failStrategy: 'FAIL_OPEN', pluginName: 'hello' };

/** Every validation error of the base plugin with `options` over it (through the resolver, as the stages do). */
function errorsOf(options: Record<string, unknown>): string[] {
  try {
    pluginOf({ ...base, ...options } as FlatPlugin);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return ((err as UserError).details ?? '').split('\n');
  }
  return [];
}

function validate(spec: Record<string, unknown>, meta = { name: 'p', namespace: 'istio-system' }) {
  return validateResource({ apiVersion: 'extensions.istio.io/v1alpha1', kind: 'WasmPlugin', metadata: meta, spec } as unknown as WasmPlugin);
}

describe('validateWasmPlugin (through resolvePlugin)', () => {
  it('rejects selector and targetRefs together', () => {
    expect(errorsOf({ selector: { matchLabels: { app: 'gw' } }, targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }] })).toEqual([
      'spec.targetRefs: only one of selector or targetRefs can be set (both spec.selector and spec.targetRefs are)',
    ]);
  });

  it('rejects more than 16 targetRefs and incomplete ones', () => {
    const refs = Array.from({ length: 17 }, (_, i) => ({ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: `gw${i}` }));
    expect(errorsOf({ targetRefs: refs })).toEqual(['spec.targetRefs: has 17 entries; at most 16 are allowed']);
    expect(errorsOf({ targetRefs: [{ kind: '', name: 'x' }] })).toEqual(['spec.targetRefs[0].kind: is required']);
    expect(errorsOf({ targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'x', nmae: 'y' } as never })).toEqual([
      'spec.targetRef.nmae: is not a targetRef field (group, kind, name, namespace)',
    ]);
    expect(errorsOf({ targetRefs: [{ group: 'Bad_Group', kind: 'Gateway', name: 'x' }] })).toEqual([
      'spec.targetRefs[0].group: "Bad_Group" is not an API group',
    ]);
  });

  it('checks sha256: 64 lower-case hex digits, matching a digest in the URL', () => {
    expect(errorsOf({ sha256: 'abc' })[0]).toBe('spec.sha256: must be 64 hexadecimal digits, got "abc"');
    expect(errorsOf({ sha256: 'B'.repeat(64) })[0]).toContain('(use lower-case hex)');
    expect(errorsOf({ sha256: `sha256:${DIGEST}` })[0]).toContain('without the "sha256:" prefix');
    expect(errorsOf({ sha256: 'c'.repeat(64) })).toEqual([
      `spec.sha256: ${'c'.repeat(64)} does not match the digest in spec.url (${DIGEST}): for an oci:// URL, sha256 is the image manifest digest, not the SHA-256 of the .wasm file`,
    ]);
    expect(errorsOf({ url: 'https://example.com/p.wasm', sha256: 'c'.repeat(64) })).toEqual([]);
  });

  it('checks the url scheme', () => {
    expect(errorsOf({ url: 'ftp://example.com/p.wasm' })).toEqual([
      'spec.url: scheme "ftp:" is not supported: use oci://, http://, https:// or file://',
    ]);
    // As Istio reads it (Go's ParseRequestURI): a scheme needs no "//", and a host:port without one is a scheme.
    expect(errorsOf({ url: 'ftp:/p.wasm' })).toEqual(['spec.url: scheme "ftp:" is not supported: use oci://, http://, https:// or file://; Istio reads what comes before the first ":" as the scheme, so write oci://ftp:/p.wasm']);
    expect(errorsOf({ url: 'registry.example.com:5000/hello:v1' })[0]).toContain('scheme "registry.example.com:" is not supported');
    expect(errorsOf({ url: undefined })).toEqual(['spec.url: is required (oci://…, https://… or file://…)']);
    expect(errorsOf({ url: 'registry.example.com/hello:v1' })).toEqual([]);
    expect(errorsOf({ url: 'HTTPS://example.com/p.wasm' })).toEqual([]);
  });

  it('checks match ports 1-65535 and the mode enum', () => {
    expect(errorsOf({ match: [{ ports: [{ number: 0 }, { number: 65536 }, { number: 80 }, { number: 80 }] }] })).toEqual([
      'spec.match[0].ports[0].number: must be a port number from 1 to 65535, got 0',
      'spec.match[0].ports[1].number: must be a port number from 1 to 65535, got 65536',
      'spec.match[0].ports[3].number: port 80 is listed twice',
    ]);
    expect(errorsOf({ match: [{ mode: 'INBOUND' }] })).toEqual([
      'spec.match[0].mode: "INBOUND" is not one of UNDEFINED, CLIENT, SERVER, CLIENT_AND_SERVER',
    ]);
  });

  it('checks every enum', () => {
    expect(errorsOf({ phase: 'LATE', failStrategy: 'MAYBE', imagePullPolicy: 'Never', type: 'UDP' })).toEqual([
      'spec.imagePullPolicy: "Never" is not one of UNSPECIFIED_POLICY, IfNotPresent, Always',
      'spec.failStrategy: "MAYBE" is not one of FAIL_CLOSE, FAIL_OPEN, FAIL_RELOAD',
      'spec.type: "UDP" is not one of UNSPECIFIED_PLUGIN_TYPE, HTTP, NETWORK',
      'spec.phase: "LATE" is not one of UNSPECIFIED_PHASE, AUTHN, AUTHZ, STATS',
    ]);
    // TrafficExtension's spelling of the unset phase is not WasmPlugin's.
    expect(errorsOf({ phase: 'UNSPECIFIED' as never })).toEqual(['spec.phase: "UNSPECIFIED" is not one of UNSPECIFIED_PHASE, AUTHN, AUTHZ, STATS']);
  });

  it('checks vmConfig.env', () => {
    expect(
      errorsOf({
        vmConfig: {
          env: [
            { name: 'POD', valueFrom: 'HOST', value: 'x' },
            // Envoy takes any name (Istio too): not only C identifiers.
            { name: '1-ok.too' },
            { name: 'A', value: 'v'.repeat(2049) },
            { name: 'A', valueFrom: 'FILE' as never },
          ],
        },
      }),
    ).toEqual([
      "spec.vmConfig.env[0].value: may only be set when valueFrom is INLINE (HOST reads the proxy's own variable)",
      'spec.vmConfig.env[2].value: is longer than 2048 characters',
      'spec.vmConfig.env[3].name: "A" is set twice',
      'spec.vmConfig.env[3].valueFrom: "FILE" is not one of INLINE, HOST',
    ]);
    const many = Array.from({ length: 257 }, (_, i) => ({ name: `V${i}`, value: 'x' }));
    expect(errorsOf({ vmConfig: { env: many } })).toEqual(['spec.vmConfig.env: has 257 entries; at most 256 are allowed']);
  });

  it('checks names, labels, priority, pluginName and the pull secret name', () => {
    expect(errorsOf({ name: 'Hello_World', namespace: 'Istio-System' })).toEqual([
      'metadata.name: "Hello_World" is not a valid name: lower-case letters, digits, \'-\' and \'.\', starting and ending with a letter or digit, at most 253 characters',
      'metadata.namespace: "Istio-System" is not a valid namespace: lower-case letters, digits and \'-\', at most 63 characters',
    ]);
    expect(errorsOf({ selector: { matchLabels: { 'istio*': 'ingress*' } } })).toEqual([
      'spec.selector.matchLabels["istio*"]: wildcards are not allowed in label keys',
      'spec.selector.matchLabels["istio*"]: "istio*" is not a valid label key',
      'spec.selector.matchLabels["istio*"]: wildcards are not allowed in label values',
      'spec.selector.matchLabels["istio*"]: "ingress*" is not a valid label value (at most 63 letters, digits, \'-\', \'_\' or \'.\', starting and ending with a letter or digit)',
    ]);
    expect(errorsOf({ priority: 1.5 })).toEqual(['spec.priority: must be a 32-bit integer (-2147483648 to 2147483647), got 1.5']);
    expect(errorsOf({ priority: 2 ** 31 })).toEqual(['spec.priority: must be a 32-bit integer (-2147483648 to 2147483647), got 2147483648']);
    expect(errorsOf({ pluginName: 'x'.repeat(257) })).toEqual(['spec.pluginName: must be 1 to 256 characters']);
    expect(errorsOf({ imagePullSecret: 'Bad Secret' })[0]).toContain('spec.imagePullSecret: "Bad Secret" is not a valid Secret name');
  });

  it('puts the first problem in the message and all of them in the details', () => {
    try {
      pluginOf({ ...base, phase: 'LATE' as never, type: 'UDP' as never });
      expect.unreachable();
    } catch (err) {
      expect((err as UserError).message).toBe(
        'the WasmPlugin istio-system/hello is not valid (2 problems): spec.type: "UDP" is not one of UNSPECIFIED_PLUGIN_TYPE, HTTP, NETWORK',
      );
    }
  });
});

describe('validateWasmPlugin warnings', () => {
  it('warns that an unset failStrategy fails closed', () => {
    const { errors, warnings } = validate({ url: `oci://r/p@sha256:${DIGEST}`, selector: { matchLabels: { istio: 'ingressgateway' } } });
    expect(errors).toEqual([]);
    expect(warnings).toEqual([expect.stringContaining('spec.failStrategy: not set, so Istio fails closed')]);
  });

  it('warns about a tag that is not a digest', () => {
    const { warnings } = validate({ url: 'oci://r/p:v1', failStrategy: 'FAIL_OPEN' });
    expect(warnings).toEqual([expect.stringContaining('is a tag, not a digest')]);
  });

  it('refuses a target kind istiod refuses, and a target in another namespace', () => {
    const { errors } = validate({
      url: `oci://r/p@sha256:${DIGEST}`,
      failStrategy: 'FAIL_OPEN',
      targetRefs: [
        { group: 'apps', kind: 'Deployment', name: 'x' },
        { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw', namespace: 'other' },
        { group: 'core', kind: 'Service', name: 'svc' },
      ],
    });
    expect(errors).toEqual([
      'spec.targetRefs[0]: apps/Deployment cannot be targeted: Istio takes a Gateway or GatewayClass (group gateway.networking.k8s.io), a Service (group "" or core) or a ServiceEntry (networking.istio.io)',
      'spec.targetRefs[1].namespace: "other": Istio does not support targeting another namespace; leave it out (the target is in the resource\'s own namespace)',
    ]);
  });

  it('takes an empty selector (every workload of the namespace), with a warning', () => {
    const { errors, warnings } = validate({ url: `oci://r/p@sha256:${DIGEST}`, failStrategy: 'FAIL_OPEN', selector: {} });
    expect(errors).toEqual([]);
    expect(warnings).toEqual([expect.stringContaining('spec.selector: has no labels, so it selects every workload')]);
  });

  it('rejects fields WasmPlugin does not have', () => {
    expect(validate({ url: 'oci://r/p', failStrategy: 'FAIL_OPEN', pluginConf: {} }).errors).toEqual(['spec.pluginConf: is not a WasmPlugin field']);
  });
});

describe('sha256 helpers', () => {
  it('reads the digest of a pinned URL and says what sha256 means', () => {
    expect(urlDigest(`oci://r/p@sha256:${DIGEST.toUpperCase()}`)).toBe(DIGEST);
    expect(urlDigest('oci://r/p:v1')).toBeUndefined();
    expect(describeSha256('oci://r/p')).toContain('manifest digest');
    expect(describeSha256('r/p:v1')).toContain('manifest digest');
    expect(describeSha256('https://x/p.wasm')).toContain('SHA-256 of the .wasm file');
  });
});


describe('filterSettings: the Envoy filter istiod makes of the WasmPlugin', () => {
  it('takes name, namespace, root_id, configuration, failStrategy and vmConfig.env from the object', () => {
    const plugin = pluginOf({
      ...base,
      namespace: 'gateways',
      pluginConfig: { value: 'true', header: 'allow' },
      vmConfig: { env: [{ name: 'POD_NAME', valueFrom: 'HOST' }, { name: 'GREETING', value: 'hi' }, { name: 'EMPTY', valueFrom: 'INLINE' }] },
    }).object;
    expect(filterSettings(plugin)).toEqual({
      name: 'hello',
      namespace: 'gateways',
      rootId: 'hello',
      configuration: '{"header":"allow","value":"true"}',
      failStrategy: 'FAIL_OPEN',
      env: { GREETING: 'hi', EMPTY: '' },
      hostEnvKeys: ['POD_NAME'],
    });
  });

  it("uses Istio's FAIL_CLOSE when the WasmPlugin sets no failStrategy", () => {
    expect(filterSettings(pluginOf({ ...base, failStrategy: undefined }).object).failStrategy).toBe('FAIL_CLOSE');
  });
});

describe('pluginConfigJson (istiod marshals the Struct with sorted keys, no spaces)', () => {
  it('sorts keys at every level', () => {
    expect(pluginConfigJson({ value: 'true', header: 'allow', nested: { b: 1, a: [{ d: 1, c: 2 }] } })).toBe(
      '{"header":"allow","nested":{"a":[{"c":2,"d":1}],"b":1},"value":"true"}',
    );
  });

  it('gives no configuration for an empty pluginConfig', () => {
    expect(pluginConfigJson({})).toBeUndefined();
    expect(pluginConfigJson(undefined)).toBeUndefined();
  });
});

describe('pluginConfig values are never shown', () => {
  it('hides every pluginConfig in a result, keeping its keys', () => {
    const results = { deploy: { object: { spec: { url: 'u', pluginConfig: { value: 'hunter2', nested: { deep: 'x' } } } }, previous: null } };
    const shown = withPluginConfigHidden(results);
    expect(shown).toEqual({ deploy: { object: { spec: { url: 'u', pluginConfig: { value: '(hidden)', nested: '(hidden)' } } }, previous: null } });
    expect(JSON.stringify(shown)).not.toContain('hunter2');
    expect(results.deploy.object.spec.pluginConfig.value).toBe('hunter2');
  });

  it('names the keys that were added, removed or changed', () => {
    expect(changedPluginConfigKeys({ a: 1, b: { x: 1, y: 2 }, c: 3 }, { a: 2, b: { y: 2, x: 1 }, d: 4 })).toEqual(['a', 'c', 'd']);
    expect(changedPluginConfigKeys(undefined, { a: 1 })).toEqual(['a']);
    expect(changedPluginConfigKeys({ a: 1 }, { a: 1 })).toEqual([]);
  });
});
