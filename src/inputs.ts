// Inputs: the one module that knows the action's input names. Every stage
// takes the typed `Inputs` record this module returns and never reads the
// environment itself.
//
// Two sources give the same raw record, keyed by the kebab-case names that
// action.yml declares:
// - in the action, each composite step passes a JSON object of the inputs
//   its stage reads (STEP_INPUTS) in the ASM_WASM_INPUTS variable (inputs
//   reach scripts only through env:);
// - on a laptop, the CLI flags (`--plugin-dir plugin`).
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { UserError } from './errors.js';
import { IMAGE_FORMATS, splitImage, type ImageFormat } from './oci/index.js';
import { maskSecret } from './github.js';
import type { SignMode } from './sign/index.js';

import { DEPLOY_MODES, type DeployMode } from './k8s/modes.js';
import { FAIL_STRATEGIES, type FailStrategy } from './plugin/model.js';
export { FAIL_STRATEGIES, type FailStrategy };

/** The newest Envoy release we test against; pinned so every run is the same. */
export const DEFAULT_ENVOY_VERSION = '1.40.0';
export const DEFAULT_ENVOY_DOWNLOAD_URL = 'https://github.com/envoyproxy/envoy/releases/download';

export interface InputSpec {
  description: string;
  default?: string;
  /** Shown in --help as the value's shape. */
  value?: string;
}

/**
 * Every input, its description and default. action.yml declares the same
 * names with the same defaults; a test checks that the two agree.
 */
export const INPUTS = {
  'plugin-dir': { description: 'Directory of the AssemblyScript plugin (holds package.json and its lockfile).', default: 'plugin', value: 'dir' },
  entry: { description: 'Entry file compiled with asc when the plugin has no `asbuild` script and asconfig.json lists no entries, relative to plugin-dir.', default: 'assembly/index.ts', value: 'file' },
  'asc-target': { description: 'asconfig.json target to build (the `asbuild:<target>` script when the plugin has one).', default: 'release', value: 'target' },
  'assemblyscript-version': { description: 'AssemblyScript compiler version. Default: the version pinned in the plugin lockfile.', value: 'version' },
  'wasm-path': { description: 'Use this prebuilt plugin.wasm instead of the build stage output.', value: 'file' },
  name: { description: 'WasmPlugin name. Default: metadata.name in <plugin-dir>/wasmplugin.yaml, else the plugin folder\'s name.', value: 'name' },
  namespace: { description: 'WasmPlugin namespace. Default: metadata.namespace in wasmplugin.yaml, else istio-system.', value: 'ns' },
  'plugin-name': { description: 'spec.pluginName, which Envoy receives as the root_id. Default: wasmplugin.yaml.', value: 'root-id' },
  'plugin-config': { description: 'spec.pluginConfig: a YAML/JSON file path or inline YAML/JSON; replaces the file\'s whole pluginConfig, and its values are never printed. Default: wasmplugin.yaml.', value: 'file|yaml' },
  'fail-strategy': { description: 'spec.failStrategy: FAIL_CLOSE, FAIL_OPEN or FAIL_RELOAD. Default: wasmplugin.yaml, else unset (Istio then fails closed).', value: 'strategy' },
  tests: { description: 'Test cases for the local Envoy test. Default: <plugin-dir>/tests.yaml.', value: 'file' },
  'envoy-version': { description: 'Envoy version for the local test.', default: DEFAULT_ENVOY_VERSION, value: 'version' },
  'envoy-path': { description: 'Use this Envoy binary instead of finding or installing one.', value: 'file' },
  'envoy-download-url': { description: 'Base URL of Envoy release binaries (a mirror).', default: DEFAULT_ENVOY_DOWNLOAD_URL, value: 'url' },
  'test-timeout': { description: 'Seconds the local Envoy test may take in all.', default: '120', value: 'seconds' },
  image: {
    description: 'Registry and repository to push to, e.g. registry.cn-hangzhou.aliyuncs.com/team/header-authorization. Empty: write an OCI image layout directory instead.',
    value: 'host/repo',
  },
  tags: { description: 'Tags to push, separated by commas or newlines. Default: the short commit SHA.', value: 'list' },
  'image-format': { description: 'Image layout: compat (OCI image, tar+gzip layer), docker (Docker schema 2) or wasm-artifact (Wasm OCI artifact).', default: 'compat', value: 'format' },
  'registry-username': { description: 'Registry user name. Default: from the Docker config (docker-config).', value: 'user' },
  'registry-password': { description: 'Registry password or token (pass a secret).', value: 'secret' },
  'docker-config': { description: 'Docker config.json with registry credentials (auths, credHelpers, credsStore). Default: ~/.docker/config.json.', value: 'file' },
  'registry-ca': { description: 'PEM file of a CA the registry certificate is signed by.', value: 'file' },
  'registry-insecure': { description: 'Allow plain HTTP or an unverified certificate for a registry that is not on loopback.', default: 'false', value: 'bool' },
  force: { description: 'Move a version tag (v1.2.3, 1.2) that already names a different image.', default: 'false', value: 'bool' },
  sbom: {
    description: 'Attach a CycloneDX SBOM of plugin.wasm (compiler, SDK, every package of the lockfile, the module\'s sha256) to the pushed image as an OCI 1.1 referrer; without image, write it beside the OCI layout.',
    default: 'true',
    value: 'bool',
  },
  sign: {
    description: 'Sign the pushed image in the format cosign verifies: false, true (with sign-key; same as key), or keyless (Sigstore, with the job\'s OIDC token: needs id-token: write).',
    default: 'false',
    value: 'mode',
  },
  'sign-key': { description: 'Private key to sign with (pass a secret): cosign.key from cosign generate-key-pair, or a PKCS#8 EC P-256 PEM; PEM text or a file path.', value: 'secret' },
  'sign-key-password': { description: 'Password of sign-key (pass a secret). Default: empty, as cosign allows.', value: 'secret' },
  'deploy-mode': { description: 'dry-run (server-side dry run and a diff; nothing changes), apply (server-side apply) or delete.', default: 'apply', value: 'mode' },
  kubeconfig: {
    description: 'Kubeconfig (YAML or base64) of the API server that holds WasmPlugins; for ASM, the mesh instance\'s. Pass a secret.',
    value: 'secret',
  },
  context: { description: 'Kubeconfig context to use. Default: its current context.', value: 'name' },
  'cluster-kubeconfig': { description: 'Kubeconfig of the data-plane cluster where the gateway pods run (ASM), to check them after an apply.', value: 'secret' },
  url: { description: 'spec.url. Default: the oci:// url of the image the push stage pushed, pinned by digest, else wasmplugin.yaml.', value: 'url' },
  sha256: { description: 'spec.sha256. Default: the pushed manifest digest, else wasmplugin.yaml, else the digest an oci:// url is pinned to.', value: 'hex' },
  selector: { description: 'spec.selector.matchLabels as YAML/JSON or key=value,key=value; replaces the file\'s selector and targetRef(s). Default: wasmplugin.yaml; istio=ingressgateway only when nothing sets a selector or targetRef(s).', value: 'labels' },
  'target-refs': { description: 'spec.targetRefs as a YAML/JSON list (instead of selector); replaces the file\'s selector and targetRef(s). Default: wasmplugin.yaml.', value: 'yaml' },
  phase: { description: 'spec.phase: AUTHN, AUTHZ or STATS. Default: wasmplugin.yaml.', value: 'phase' },
  priority: { description: 'spec.priority. Default: wasmplugin.yaml.', value: 'int' },
  match: { description: 'spec.match as a YAML/JSON list. Default: wasmplugin.yaml.', value: 'yaml' },
  'image-pull-policy': { description: 'spec.imagePullPolicy: IfNotPresent or Always. Default: wasmplugin.yaml.', value: 'policy' },
  'image-pull-secret': { description: 'spec.imagePullSecret: the Secret the gateway pulls the image with. Default: wasmplugin.yaml.', value: 'name' },
  'create-pull-secret': { description: 'Create or update image-pull-secret (kubernetes.io/dockerconfigjson) from registry-username and registry-password.', default: 'false', value: 'bool' },
  'force-conflicts': { description: 'Take over WasmPlugin fields another field manager owns (server-side apply force).', default: 'false', value: 'bool' },
  'verify-url': { description: 'Gateway URL: after an apply, run the tests cases against it until they pass or verify-timeout; roll back if they do not.', value: 'url' },
  'verify-timeout': { description: 'Seconds to wait for the gateway to answer as the tests say.', default: '120', value: 'seconds' },
  'gateway-admin-url': {
    description: 'Base URL of the gateway Envoy\'s admin interface (port 15000): verification waits until its config dump shows this apply\'s Wasm filter, and fails at once on Istio\'s fallback filter.',
    value: 'url',
  },
  'gateway-status-url': {
    description: 'Base URL of the gateway\'s Istio agent status server (port 15020): verification fails at once when its Wasm fetch metrics report a failure.',
    value: 'url',
  },
  'istiod-url': {
    description: 'Base URL of istiod\'s monitoring port (15014): verification reads its /debug/syncz for the gateway\'s NACK of the new Wasm filter, in Envoy\'s words.',
    value: 'url',
  },
  'verify-key': {
    description: 'Public key (cosign.pub; PEM text or a file path): before anything is sent to the cluster, the image to apply must carry a cosign signature that verifies with it.',
    value: 'key',
  },
  'verify-identity': {
    description: 'Instead of verify-key, a keyless signature: the exact certificate identity that must have signed the image to apply, e.g. https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/heads/main. Needs verify-trusted-root.',
    value: 'identity',
  },
  'verify-oidc-issuer': {
    description: 'The OIDC issuer the verify-identity certificate must name.',
    default: 'https://token.actions.githubusercontent.com',
    value: 'url',
  },
  'verify-trusted-root': {
    description: 'Sigstore trusted root (trusted_root.json: Fulcio certificate authorities and Rekor keys) that keyless signatures are checked against; a file path.',
    value: 'file',
  },
  toolchain: { description: 'Run the toolchain stage.', default: 'true', value: 'bool' },
  build: { description: 'Run the build stage.', default: 'true', value: 'bool' },
  test: { description: 'Run the local Envoy test stage.', default: 'true', value: 'bool' },
  push: { description: 'Run the push stage.', default: 'true', value: 'bool' },
  deploy: { description: 'Run the deploy stage (needs kubeconfig).', default: 'false', value: 'bool' },
} as const satisfies Record<string, InputSpec>;

export type InputName = keyof typeof INPUTS;

/** Inputs that carry credentials. They reach only the steps whose stage uses them. */
export const SECRET_INPUTS: readonly InputName[] = ['registry-password', 'kubeconfig', 'cluster-kubeconfig', 'sign-key', 'sign-key-password'];

const PLUGIN_SETTINGS: readonly InputName[] = ['plugin-dir', 'name', 'namespace', 'plugin-name', 'plugin-config', 'fail-strategy'];

/**
 * The inputs each step of action.yml hands its stage (in ASM_WASM_INPUTS).
 * Every other input keeps its default there. Toolchain, build and test get
 * no credential: they run the plugin's own scripts, the compiler, pip and
 * Envoy. A test checks action.yml against this table.
 */
export const STEP_INPUTS: Record<'toolchain' | 'build' | 'test' | 'push' | 'deploy', readonly InputName[]> = {
  toolchain: ['plugin-dir', 'assemblyscript-version'],
  build: [...PLUGIN_SETTINGS, 'entry', 'asc-target'],
  test: [...PLUGIN_SETTINGS, 'wasm-path', 'tests', 'envoy-version', 'envoy-path', 'envoy-download-url', 'test-timeout'],
  push: ['plugin-dir', 'wasm-path', 'image', 'tags', 'image-format', 'registry-username', 'registry-password', 'docker-config', 'registry-ca', 'registry-insecure', 'force', 'sbom', 'sign', 'sign-key', 'sign-key-password'],
  // Deploy reads the plugin settings, the registry (pull secret, the
  // signature it verifies), the clusters and the tests it verifies with: every
  // input but the signing key, which only push uses.
  deploy: (Object.keys(INPUTS) as InputName[]).filter((n) => n !== 'sign-key' && n !== 'sign-key-password'),
};
export type RawInputs = Partial<Record<string, string>>;

export interface Inputs {
  pluginDir: string;
  entry: string;
  ascTarget: string;
  assemblyscriptVersion?: string;
  wasmPath?: string;
  name?: string;
  namespace?: string;
  pluginName?: string;
  /** Inline YAML/JSON text or a file path, resolved by the plugin manifest loader. */
  pluginConfig?: string;
  failStrategy?: FailStrategy;
  tests: string;
  envoyVersion: string;
  envoyPath?: string;
  envoyDownloadUrl: string;
  testTimeoutSeconds: number;
  image?: { registry: string; repository: string };
  tags: string[];
  imageFormat: ImageFormat;
  registryUsername?: string;
  registryPassword?: string;
  dockerConfig?: string;
  registryCa?: string;
  registryInsecure: boolean;
  force: boolean;
  /** Sign the pushed image: not at all, with sign-key, or keyless (refused for now). */
  sign: SignMode;
  /** PEM text of the signing key (read from the file when the input is a path). Never printed. */
  signKey?: string;
  signKeyPassword?: string;
  /** PEM text of the public key the deploy stage verifies the image's signature with. */
  verifyKey?: string;
  /** Keyless verification before apply: identity, issuer and the trusted root's JSON text. */
  verifyKeyless?: { identity: string; issuer: string; trustedRoot: string; trustedRootFile: string };
  /** Attach (or write) the SBOM of plugin.wasm. */
  sbom: boolean;
  deployMode: DeployMode;
  kubeconfig?: string;
  context?: string;
  clusterKubeconfig?: string;
  url?: string;
  sha256?: string;
  selector?: Record<string, string>;
  targetRefs?: unknown;
  phase?: string;
  priority?: number;
  match?: unknown;
  imagePullPolicy?: string;
  imagePullSecret?: string;
  createPullSecret: boolean;
  forceConflicts: boolean;
  verifyUrl?: string;
  verifyTimeoutSeconds: number;
  /** The gateway Envoy's admin interface, for Istio's signals during verification. */
  gatewayAdminUrl?: string;
  /** The gateway's Istio agent status server, for Istio's signals during verification. */
  gatewayStatusUrl?: string;
  /** istiod's monitoring port, for Envoy's NACKs (its /debug/syncz) during verification. */
  istiodUrl?: string;
  stages: { toolchain: boolean; build: boolean; test: boolean; push: boolean; deploy: boolean };
}

function ascTarget(value: string): string {
  const v = value.trim();
  if (!/^[\w.-]+$/.test(v)) throw new UserError(`input \`asc-target\` must be an asconfig.json target name such as release or debug, got "${value}"`);
  return v;
}

function bool(name: InputName, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(v)) return true;
  if (['false', 'no', '0', 'off'].includes(v)) return false;
  throw new UserError(`input \`${name}\` must be true or false, got "${value}"`);
}

/**
 * Turns the raw record into typed, validated inputs. Unknown names are an
 * error: a misspelt input in a workflow or in action.yml must not be ignored.
 */
export function parseInputs(raw: RawInputs, cwd = process.cwd()): Inputs {
  for (const key of Object.keys(raw)) {
    if (!(key in INPUTS)) {
      throw new UserError(`unknown input \`${key}\`; known inputs: ${Object.keys(INPUTS).join(', ')}`);
    }
  }
  const get = (name: InputName): string | undefined => {
    const v = raw[name]?.trim();
    if (v) return v;
    return (INPUTS[name] as InputSpec).default;
  };

  const pluginDir = path.resolve(cwd, get('plugin-dir')!);
  if (!fs.existsSync(pluginDir) || !fs.statSync(pluginDir).isDirectory()) {
    throw new UserError(
      `input \`plugin-dir\`: ${pluginDir} is not a directory; set plugin-dir to the folder that holds your plugin's package.json`,
    );
  }

  const failStrategy = get('fail-strategy');
  if (failStrategy && !(FAIL_STRATEGIES as readonly string[]).includes(failStrategy)) {
    throw new UserError(`input \`fail-strategy\` must be one of ${FAIL_STRATEGIES.join(', ')}, got "${failStrategy}"`);
  }

  const envoyVersion = get('envoy-version')!;
  if (!/^\d+\.\d+\.\d+$/.test(envoyVersion)) {
    throw new UserError(`input \`envoy-version\` must be a release version such as ${DEFAULT_ENVOY_VERSION}, got "${envoyVersion}"`);
  }

  const timeout = positive('test-timeout', get('test-timeout')!);
  const deployMode = get('deploy-mode')!;
  if (!(DEPLOY_MODES as readonly string[]).includes(deployMode)) {
    throw new UserError(`input \`deploy-mode\` must be one of ${DEPLOY_MODES.join(', ')}, got "${deployMode}"`);
  }

  const asVersion = get('assemblyscript-version');
  if (asVersion && !/^\d+\.\d+\.\d+$/.test(asVersion)) {
    throw new UserError(`input \`assemblyscript-version\` must be an exact version such as 0.14.13, got "${asVersion}"`);
  }

  const optionalPath = (name: InputName): string | undefined => {
    const v = get(name);
    return v ? path.resolve(cwd, v) : undefined;
  };

  const imageFormat = get('image-format')!;
  if (!(IMAGE_FORMATS as readonly string[]).includes(imageFormat)) {
    throw new UserError(`input \`image-format\` must be one of ${IMAGE_FORMATS.join(', ')}, got "${imageFormat}"`);
  }
  const password = raw['registry-password'];
  if (password) maskSecret(password);
  const image = get('image');
  const registryCa = optionalPath('registry-ca');
  if (registryCa && !fs.existsSync(registryCa)) {
    throw new UserError(`input \`registry-ca\`: ${registryCa} does not exist; give the PEM file of the CA that signed the registry's certificate`);
  }
  const dockerConfig = optionalPath('docker-config');
  if (dockerConfig && !fs.existsSync(dockerConfig)) {
    throw new UserError(`input \`docker-config\`: ${dockerConfig} does not exist`);
  }

  return {
    pluginDir,
    entry: get('entry')!,
    ascTarget: ascTarget(get('asc-target')!),
    assemblyscriptVersion: asVersion,
    wasmPath: optionalPath('wasm-path'),
    name: get('name'),
    namespace: get('namespace'),
    pluginName: get('plugin-name'),
    pluginConfig: get('plugin-config'),
    failStrategy: failStrategy as FailStrategy | undefined,
    tests: optionalPath('tests') ?? path.join(pluginDir, 'tests.yaml'),
    envoyVersion,
    envoyPath: optionalPath('envoy-path'),
    envoyDownloadUrl: get('envoy-download-url')!.replace(/\/+$/, ''),
    testTimeoutSeconds: timeout,
    deployMode: deployMode as DeployMode,
    kubeconfig: raw.kubeconfig?.trim() ? raw.kubeconfig : undefined,
    context: get('context'),
    clusterKubeconfig: raw['cluster-kubeconfig']?.trim() ? raw['cluster-kubeconfig'] : undefined,
    url: get('url'),
    sha256: get('sha256'),
    selector: selector(get('selector')),
    targetRefs: yamlInput('target-refs', get('target-refs')),
    phase: get('phase'),
    priority: integer('priority', get('priority')),
    match: yamlInput('match', get('match')),
    imagePullPolicy: get('image-pull-policy'),
    imagePullSecret: get('image-pull-secret'),
    createPullSecret: bool('create-pull-secret', get('create-pull-secret')!),
    forceConflicts: bool('force-conflicts', get('force-conflicts')!),
    verifyUrl: get('verify-url'),
    verifyTimeoutSeconds: positive('verify-timeout', get('verify-timeout')!),
    gatewayAdminUrl: httpUrl('gateway-admin-url', get('gateway-admin-url')),
    gatewayStatusUrl: httpUrl('gateway-status-url', get('gateway-status-url')),
    istiodUrl: httpUrl('istiod-url', get('istiod-url')),
    image: image ? splitImage(image) : undefined,
    tags: (get('tags') ?? '').split(/[,\n]/).map((t) => t.trim()).filter(Boolean),
    imageFormat: imageFormat as ImageFormat,
    registryUsername: get('registry-username'),
    registryPassword: password?.trim() ? password : undefined,
    dockerConfig,
    registryCa,
    registryInsecure: bool('registry-insecure', get('registry-insecure')!),
    force: bool('force', get('force')!),
    ...signing(raw, cwd),
    sbom: bool('sbom', get('sbom')!),
    stages: {
      toolchain: bool('toolchain', get('toolchain')!),
      build: bool('build', get('build')!),
      test: bool('test', get('test')!),
      push: bool('push', get('push')!),
      deploy: bool('deploy', get('deploy')!),
    },
  };
}

/** PEM text as given, or the text of the file the value names. */
function pemInput(name: InputName, value: string, cwd: string, mask?: (text: string) => void): string {
  if (value.includes('-----BEGIN ')) return value;
  // A long or multi-line value is key material in the wrong shape (base64 of the PEM?): never echo it.
  if (/\n/.test(value.trim()) || value.length > 1024) throw new UserError(`input \`${name}\` is not PEM text: give the key file's contents as they are, starting with -----BEGIN`);
  const file = path.resolve(cwd, value.trim());
  if (!fs.existsSync(file)) throw new UserError(`input \`${name}\` is neither PEM text (-----BEGIN …) nor an existing file: ${file}`);
  const text = fs.readFileSync(file, 'utf8');
  mask?.(text);
  return text;
}

function signing(raw: RawInputs, cwd: string): Pick<Inputs, 'sign' | 'signKey' | 'signKeyPassword' | 'verifyKey' | 'verifyKeyless'> {
  // Masked before anything could print them, whichever stage reads them;
  // a PEM key line by line, as the runner matches a log line at a time.
  const mask = (v: string | undefined) => {
    if (!v) return;
    maskSecret(v);
    for (const line of v.split(/\r?\n/)) if (line.trim().length >= 8 && !line.startsWith('-----')) maskSecret(line.trim());
  };
  mask(raw['sign-key']);
  mask(raw['sign-key-password']);
  const mode = (raw.sign?.trim() || (INPUTS.sign.default as string)).toLowerCase();
  let sign: SignMode;
  if (['false', 'no', '0', 'off', 'none'].includes(mode)) sign = 'none';
  else if (['true', 'yes', '1', 'on', 'key'].includes(mode)) sign = 'key';
  else if (mode === 'keyless') sign = 'keyless';
  else throw new UserError(`input \`sign\` must be false, true (key) or keyless, got "${raw.sign}"`);
  const key = raw['sign-key']?.trim() ? raw['sign-key'] : undefined;
  if (sign === 'key' && !key) throw new UserError('input `sign` is true but `sign-key` is empty: pass the private key secret (cosign.key from cosign generate-key-pair), e.g. sign-key: ${{ secrets.COSIGN_PRIVATE_KEY }}');
  if (sign === 'none' && key) throw new UserError('input `sign-key` is set but `sign` is false: set sign: true to sign the pushed image, or leave sign-key empty');
  const verify = raw['verify-key']?.trim();
  const identity = raw['verify-identity']?.trim();
  const rootFile = raw['verify-trusted-root']?.trim();
  if (verify && identity) throw new UserError('inputs `verify-key` and `verify-identity` are both set: give verify-key for a key-based signature or verify-identity for a keyless one');
  if (rootFile && !identity) throw new UserError('input `verify-trusted-root` is set but `verify-identity` is empty: name the identity that must have signed the image');
  let verifyKeyless: Inputs['verifyKeyless'];
  if (identity) {
    if (!rootFile) {
      throw new UserError(
        'input `verify-identity` needs `verify-trusted-root`: the trusted_root.json of the Sigstore instance that issued the certificate (for the public one, the file `cosign initialize` keeps under ~/.sigstore/root/), committed to the repository',
      );
    }
    const file = path.resolve(cwd, rootFile);
    if (!fs.existsSync(file)) throw new UserError(`input \`verify-trusted-root\`: no such file: ${file}`);
    const issuer = raw['verify-oidc-issuer']?.trim() || (INPUTS['verify-oidc-issuer'].default as string);
    verifyKeyless = { identity, issuer, trustedRoot: fs.readFileSync(file, 'utf8'), trustedRootFile: file };
  }
  return {
    verifyKeyless,
    sign,
    signKey: sign === 'key' && key ? pemInput('sign-key', key, cwd, mask) : undefined,
    signKeyPassword: raw['sign-key-password'] || undefined,
    verifyKey: verify ? pemInput('verify-key', verify, cwd) : undefined,
  };
}

function positive(name: InputName, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UserError(`input \`${name}\` must be a positive number of seconds, got "${value}"`);
  return n;
}

function httpUrl(name: InputName, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UserError(`input \`${name}\` must be an http:// or https:// URL, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UserError(`input \`${name}\` must be an http:// or https:// URL, got "${value}"`);
  return value;
}

function integer(name: InputName, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new UserError(`input \`${name}\` must be an integer, got "${value}"`);
  return n;
}

function yamlInput(name: InputName, value: string | undefined): unknown {
  if (value === undefined) return undefined;
  try {
    return YAML.parse(value);
  } catch (err) {
    throw new UserError(`input \`${name}\` is not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** Labels as YAML/JSON (`{istio: ingressgateway}`) or `key=value,key=value`. */
function selector(value: string | undefined): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (/^[\w./-]+=[^,{}]*(,[\w./-]+=[^,{}]*)*$/.test(value.trim())) {
    return Object.fromEntries(value.split(',').map((pair) => pair.split('=').map((s) => s.trim()) as [string, string]));
  }
  const parsed = yamlInput('selector', value);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== 'string')) {
    throw new UserError('input `selector` must be labels: key=value,key=value or a YAML/JSON mapping of strings');
  }
  return parsed as Record<string, string>;
}

/** The raw inputs a composite step passes as JSON in ASM_WASM_INPUTS. */
export function inputsFromEnv(env: NodeJS.ProcessEnv = process.env): RawInputs {
  const text = env.ASM_WASM_INPUTS;
  if (!text) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UserError('ASM_WASM_INPUTS is not JSON; action.yml must pass a JSON object of the step\'s inputs');
  }
  const out: RawInputs = {};
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (v !== null && v !== undefined) out[k] = String(v);
  }
  return out;
}
