// Real Istio for the tests: istiod (pilot-discovery) out of cluster against
// the tests' kube-apiserver, and an ingress gateway (pilot-agent running the
// PyPI Envoy) labelled `istio: ingressgateway`, in front of a local upstream.
// Both are built from the Go module proxy by istio/build.sh.
//
//   const kube = await startKube({ crd: false });
//   const istio = await startIstio(kube, { envoy: inject('envoyPath') });  // installs Istio's CRDs
//   istio.gatewayUrl    http://127.0.0.1:<port>, routed to the upstream
//   istio.adminUrl      the gateway Envoy's admin interface (config dump, stats)
//   istio.statusUrl     the Istio agent's status port (/stats/prometheus)
//   startIstio(kube, { envoy, secureXds: true })   the gateway on mutual TLS xDS: gets pull secrets
//   await istio.stop();
//
// Everything listens on 127.0.0.1 except the agent's status server, which
// Istio always binds on all interfaces (on a free port here). The agent
// caches Wasm modules in /var/lib/istio/data, a path fixed in Istio: it must
// be writable (startIstio creates it).
//
// Why the settings below:
// - istiod: PILOT_ENABLE_METADATA_EXCHANGE=false and PILOT_ENABLE_ALPN_FILTER=false,
//   because istiod would otherwise put Istio-only filters (istio.metadata_exchange,
//   istio.alpn) in the gateway's config, which upstream Envoy rejects;
//   ENABLE_CA_SERVER=false and no webhooks: the gateway uses file-mounted
//   certificates and nothing is injected.
// - gateway: plaintext xDS (controlPlaneAuthPolicy NONE) by default, or mutual
//   TLS with `secureXds` (below); file-mounted workload certificates in
//   ./var/run/secrets/workload-spiffe-credentials (so no CA is asked), the
//   agent's bootstrap template in ./var/lib/istio/envoy (where the
//   agent looks for it, relative to its working directory), with Envoy's
//   health and Prometheus listeners moved to 127.0.0.1 and free ports
//   (ENVOY_STATUS_PORT, ENVOY_PROMETHEUS_PORT).
//
// `secureXds`: istiod hands a WasmPlugin's imagePullSecret only to a proxy
// whose identity it verified (pilot/pkg/xds/ecds.go, GeneratePullSecrets:
// proxy.VerifiedIdentity). That identity is set in pilot/pkg/xds/auth.go
// (authorize, after authenticate) from what the authenticators return, and
// pkg/security's Authenticate runs them only on a TLS connection (unless
// XDS_AUTH_PLAINTEXT): on the plaintext gRPC port no proxy is ever verified,
// whatever token it sends. So with `secureXds` istiod also serves xDS over
// TLS (--secureGRPCAddr, the 15012 of a cluster) with a certificate from a CA
// made here (--tlsCertFile/--tlsKeyFile/--caCertFile); with those flags the
// same CA file is what istiod verifies client certificates against
// (createPeerCertVerifier). The gateway's workload certificate, for
// spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway, is signed
// by that CA, and the agent connects with controlPlaneAuthPolicy MUTUAL_TLS,
// presenting it (file-mounted certificates: proxyMetadata
// ISTIO_META_TLS_CLIENT_CERT_CHAIN/_KEY/_ROOT_CERT). ClientCertAuthenticator
// takes the SPIFFE ID from the verified chain, and authorize accepts it
// because its namespace and service account are the proxy's own.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { startUpstream, type Upstream } from '../../src/localtest/upstream.js';
import { waitFor, type Kube, type KubeResponse, type Proc } from './kube.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const istioDir = path.join(here, 'istio');
/** Fixed in Istio (constants.IstioDataDir): where the agent caches Wasm modules. */
export const ISTIO_DATA_DIR = '/var/lib/istio/data';

export function istioVersion(): string {
  return fs.readFileSync(path.join(istioDir, 'version'), 'utf8').trim();
}

/** Where build.sh puts the binaries, Istio's CRDs and the bootstrap template. */
export function istioFiles(): { dir: string; discovery: string; agent: string; crds: string; bootstrap: string; version: string } {
  const cache = process.env.ASM_WASM_CACHE || path.join(os.homedir(), '.cache', 'asm-wasm-action');
  const version = istioVersion();
  const dir = path.join(cache, 'istio', version);
  return {
    dir,
    version,
    discovery: path.join(dir, 'pilot-discovery'),
    agent: path.join(dir, 'pilot-agent'),
    crds: path.join(dir, 'crd-all.gen.yaml'),
    bootstrap: path.join(dir, 'envoy_bootstrap_tmpl.json'),
  };
}

function present(f: string, executable: boolean): boolean {
  try {
    fs.accessSync(f, executable ? fs.constants.X_OK : fs.constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

function cached(): boolean {
  const f = istioFiles();
  return present(f.discovery, true) && present(f.agent, true) && present(f.crds, false) && present(f.bootstrap, false);
}

/** The beforeAll timeout: short when Istio is cached, long enough for a cold build otherwise. */
export function istioStartTimeout(): number {
  return cached() ? 180_000 : 90 * 60_000;
}

/** Runs build.sh unless everything is cached; throws with its output when it fails. */
export async function ensureIstio(): Promise<ReturnType<typeof istioFiles>> {
  const files = istioFiles();
  if (cached()) return files;
  const out = await new Promise<{ code: number; text: string }>((resolve) => {
    let text = '';
    const child = spawn('bash', [path.join(istioDir, 'build.sh')], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      text += c.toString();
      process.stderr.write(c);
    });
    child.on('error', (err) => resolve({ code: 1, text: `${text}\n${err.message}` }));
    child.on('exit', (code) => resolve({ code: code ?? 1, text }));
  });
  if (out.code !== 0 || !cached()) {
    throw new Error(
      `could not build Istio ${files.version} for the tests (test/infra/istio/build.sh exited with ${out.code}; it needs Go and the Go module proxy):\n` +
        out.text.trimEnd().split('\n').slice(-30).join('\n'),
    );
  }
  return files;
}

export interface Istio {
  version: string;
  /** http://127.0.0.1:<port>: the gateway's HTTP listener (Gateway server bound to 127.0.0.1). */
  gatewayUrl: string;
  /** http://127.0.0.1:<port>: the gateway Envoy's admin interface. */
  adminUrl: string;
  /** http://127.0.0.1:<port>: the Istio agent's status server. */
  statusUrl: string;
  /** The upstream the gateway routes to. */
  upstream: Upstream;
  /** Where the logs, certificates and configuration are. */
  dir: string;
  /** How the gateway talks to istiod: plaintext, or mutual TLS (`secureXds`), where istiod verifies its identity. */
  xds: 'plaintext' | 'mtls';
  /** The agent's log so far (its own lines and Envoy's). */
  agentLog(): string;
  istiodLog(): string;
  /** http://127.0.0.1:<port>: istiod's monitoring port (15014 in a cluster), which also serves its /debug endpoints (syncz). */
  istiodUrl: string;
  /** Seconds from start to: istiod ready, gateway serving. */
  timings: { istiodReadyMs: number; gatewayReadyMs: number; crdsMs: number };
  /**
   * With `validationWebhook`: istiod's validation webhook (its HTTPS server's
   * /validate) and the CA of its certificate. The API server calls it for
   * every create and update of an Istio resource, as in a cluster.
   */
  validation?: { url: string; caPem: string };
  /** Stops the gateway (Envoy with it), istiod and the upstream. Safe to call twice. */
  stop(): Promise<void>;
}

export interface IstioOptions {
  /** The Envoy binary the gateway runs (required unless `gateway` is false). */
  envoy?: string;
  /**
   * Start the gateway (default true). false runs istiod alone: no upstream
   * traffic, nothing on the ports one gateway per machine may hold; the
   * gateway's URLs are then empty strings.
   */
  gateway?: boolean;
  /**
   * Serve istiod's validation webhook over HTTPS (a certificate for 127.0.0.1
   * from a CA made here, given to istiod with --tlsCertFile/--tlsKeyFile/--caCertFile,
   * as a cluster mounts it in ./var/run/secrets/istiod/tls) and register a
   * ValidatingWebhookConfiguration for Istio's API groups that points the API
   * server at it (failurePolicy Fail, so a webhook that cannot be reached
   * fails the request instead of letting it through). Istio's own install
   * registers the same webhook; here istiod's controller for it is off, so
   * this one is written by hand.
   */
  validationWebhook?: boolean;
  /**
   * xDS over mutual TLS instead of plaintext, so that istiod verifies the
   * gateway's identity and sends it WasmPlugins' image pull secrets (see the
   * top of this file). Default false: plaintext, where pull secrets are
   * withheld (`proxy … is not authorized to receive secret`).
   */
  secureXds?: boolean;
  /** Registries (host:port) the agent may pull from over plain HTTP or without verifying TLS. */
  insecureRegistries?: string[];
  /** A PEM file the agent trusts for registries (its SSL_CERT_FILE). */
  registryCaFile?: string;
  /**
   * Registry credentials the agent pulls with when a WasmPlugin brings no pull
   * secret (its default keychain: a Docker config.json, as on a node). istiod
   * hands a WasmPlugin's imagePullSecret only to a proxy whose identity it
   * verified over mTLS xDS, which needs `secureXds`.
   */
  registryAuth?: { registry: string; username: string; password: string };
  /**
   * Envoy stats the gateway keeps on top of Istio's default list
   * (proxyConfig.proxyStatsMatcher.inclusionRegexps), e.g. Envoy's ECDS
   * counters `.*extension_config_discovery.*`, which Istio leaves out.
   */
  statsInclusionRegexps?: string[];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function httpGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(3000, () => req.destroy(new Error('timeout')));
  });
}

function openssl(dir: string, ...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd: dir }, (err, _out, stderr) => (err ? reject(new Error(`openssl ${args.join(' ')}: ${stderr}`)) : resolve()));
  });
}

/**
 * A workload certificate for the gateway's SPIFFE identity, signed by `ca`
 * (its root becomes root-cert.pem) or by a self-signed root made here.
 */
async function workloadCerts(dir: string, identity: string, ca?: { cert: string; key: string }): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  if (ca) {
    await fsp.copyFile(ca.cert, path.join(dir, 'root-cert.pem'));
  } else {
    await openssl(dir, 'req', '-x509', ...ec, '-keyout', 'root.key', '-out', 'root-cert.pem', '-days', '2', '-subj', '/O=cluster.local',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  }
  await fsp.writeFile(path.join(dir, 'leaf.ext'), `subjectAltName=URI:${identity}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n`);
  await openssl(dir, 'req', ...ec, '-keyout', 'key.pem', '-out', 'leaf.csr', '-subj', '/O=cluster.local');
  await openssl(dir, 'x509', '-req', '-in', 'leaf.csr', '-CA', ca?.cert ?? 'root-cert.pem', '-CAkey', ca?.key ?? 'root.key',
    '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-out', 'cert-chain.pem', '-days', '2', '-extfile', 'leaf.ext');
}


const running = new Set<Proc>();
let exitHook = false;

/** Started in its own process group, so that Envoy (the agent's child) goes with it. */
function startProcess(name: string, binary: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; log: string }): Proc {
  const out = fs.openSync(options.log, 'a');
  const child = spawn(binary, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', out, out], detached: true });
  fs.closeSync(out);
  const proc: Proc = { name, child, log: options.log, exited: false };
  child.on('exit', () => (proc.exited = true));
  child.on('error', () => (proc.exited = true));
  running.add(proc);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const p of running) if (!p.exited && p.child.pid) killGroup(p.child.pid, 'SIGKILL');
    });
  }
  return proc;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // gone
  }
}

async function stopProcess(proc: Proc): Promise<void> {
  running.delete(proc);
  const pid = proc.child.pid;
  if (!pid) return;
  if (!proc.exited) {
    const exited = new Promise<void>((resolve) => proc.child.once('exit', () => resolve()));
    killGroup(pid, 'SIGTERM');
    const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
  // Envoy may outlive the agent by a moment: take the whole group.
  killGroup(pid, 'SIGKILL');
}

/** Kills the process groups and removes `dir` if the test worker dies without stop(). */
function startWatchdog(dir: string, pids: number[]): ChildProcess {
  const script = [
    'parent=$1; dir=$2; shift 2',
    'while kill -0 "$parent" 2>/dev/null; do sleep 1; done',
    'for p in "$@"; do kill -TERM -- "-$p" 2>/dev/null; done; sleep 2',
    'for p in "$@"; do kill -KILL -- "-$p" 2>/dev/null; done',
    'rm -rf "$dir"',
  ].join('\n');
  const child = spawn('sh', ['-c', script, 'istio-watchdog', String(process.pid), dir, ...pids.map(String)], { detached: true, stdio: 'ignore' });
  child.unref();
  return child;
}

function tail(file: string, n = 40): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}

async function must(what: string, res: Promise<KubeResponse>, ok: number[] = [200, 201]): Promise<KubeResponse> {
  const r = await res;
  if (!ok.includes(r.status)) throw new Error(`could not ${what}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
  return r;
}

/** Istio's CRD documents from crd-all.gen.yaml. */
export function istioCrds(file = istioFiles().crds): any[] {
  return YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'))
    .map((d) => d.toJS())
    .filter((d) => d?.kind === 'CustomResourceDefinition');
}

/** Installs Istio's own CRDs (all of crd-all.gen.yaml) and waits until the ones the tests use are served. */
export async function installIstioCrds(kube: Kube): Promise<void> {
  const crds = istioCrds();
  await Promise.all(
    crds.map((crd) => must(`install CRD ${crd.metadata.name}`, kube.request('admin', 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd), [201, 409])),
  );
  const needed = ['wasmplugins.extensions.istio.io', 'gateways.networking.istio.io', 'virtualservices.networking.istio.io', 'serviceentries.networking.istio.io'];
  for (const name of needed) {
    if (!crds.some((c) => c.metadata.name === name)) throw new Error(`Istio's CRDs do not define ${name}`);
  }
  await waitFor("Istio's CRDs to be established", [], 60_000, async () => {
    for (const name of needed) {
      const r = await kube.request('admin', 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      if (!(r.body?.status?.conditions ?? []).some((c: any) => c.type === 'Established' && c.status === 'True')) return false;
    }
    // Established comes a moment before the endpoint serves.
    return (await kube.request('deployer', 'GET', '/apis/extensions.istio.io/v1alpha1/wasmplugins')).status === 200;
  });
}

/** Creates or replaces an Istio object (networking.istio.io v1). */
async function putObject(kube: Kube, object: any): Promise<void> {
  const [group, version] = object.apiVersion.split('/');
  const plural = object.kind === 'ServiceEntry' ? 'serviceentries' : `${object.kind.toLowerCase()}s`;
  const base = `/apis/${group}/${version}/namespaces/${object.metadata.namespace}/${plural}`;
  const created = await must(`create ${object.kind} ${object.metadata.name}`, kube.request('admin', 'POST', base, object), [201, 409]);
  if (created.status === 201) return;
  // Left by an earlier startIstio on the same API server: take it over (new ports).
  const current = await must(`read ${object.kind} ${object.metadata.name}`, kube.request('admin', 'GET', `${base}/${object.metadata.name}`));
  const replacement = { ...object, metadata: { ...object.metadata, resourceVersion: current.body.metadata.resourceVersion } };
  await must(`replace ${object.kind} ${object.metadata.name}`, kube.request('admin', 'PUT', `${base}/${object.metadata.name}`, replacement));
}

export async function startIstio(kube: Kube, options: IstioOptions): Promise<Istio> {
  const files = await ensureIstio();
  const started = Date.now();
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'asm-wasm-istio-'));
  const procs: Proc[] = [];
  let upstream: Upstream | undefined;
  let watchdog: ChildProcess | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const p of [...procs].reverse()) await stopProcess(p);
    if (watchdog?.pid) killGroup(watchdog.pid, 'SIGKILL');
    // The webhook would fail every Istio write once istiod is gone.
    if (options.validationWebhook) await kube.request('admin', 'DELETE', `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${VALIDATION_WEBHOOK}`).catch(() => undefined);
    await upstream?.close();
    await fsp.rm(dir, { recursive: true, force: true });
  };

  try {
    try {
      await fsp.mkdir(ISTIO_DATA_DIR, { recursive: true });
      await fsp.access(ISTIO_DATA_DIR, fs.constants.W_OK);
    } catch (err) {
      throw new Error(
        `the Istio agent caches Wasm modules in ${ISTIO_DATA_DIR} (fixed in Istio), which is not writable here (${(err as Error).message}): ` +
          `create it and give this user write access (e.g. sudo install -d -o "$USER" ${ISTIO_DATA_DIR})`,
        { cause: err },
      );
    }
    const crdsStart = Date.now();
    await installIstioCrds(kube);
    const crdsMs = Date.now() - crdsStart;

    const [grpcPort, secureGrpcPort, httpPort, monitoringPort, httpsPort, adminPort, statusPort, healthPort, promPort, listenerPort] = await Promise.all(
      Array.from({ length: 10 }, () => freePort()),
    );
    // Where the gateway connects, and how.
    const xds = options.secureXds
      ? { address: `127.0.0.1:${secureGrpcPort}`, policy: 'MUTUAL_TLS' }
      : { address: `127.0.0.1:${grpcPort}`, policy: 'NONE' };
    upstream = await startUpstream();

    // istiod
    const istiodDir = path.join(dir, 'istiod');
    await fsp.mkdir(istiodDir, { recursive: true });
    await fsp.writeFile(path.join(istiodDir, 'kubeconfig'), kube.kubeconfig('admin'), { mode: 0o600 });
    await fsp.writeFile(
      path.join(istiodDir, 'mesh'),
      YAML.stringify({
        rootNamespace: 'istio-system',
        trustDomain: 'cluster.local',
        enableAutoMtls: false,
        defaultConfig: { discoveryAddress: xds.address, controlPlaneAuthPolicy: xds.policy },
      }),
    );
    await fsp.writeFile(path.join(istiodDir, 'meshNetworks'), 'networks: {}\n');
    const tlsArgs: string[] = [];
    const tls = path.join(istiodDir, 'tls');
    if (options.validationWebhook || options.secureXds) {
      await serverCerts(tls);
      tlsArgs.push(`--tlsCertFile=${path.join(tls, 'cert.pem')}`, `--tlsKeyFile=${path.join(tls, 'key.pem')}`, `--caCertFile=${path.join(tls, 'ca.pem')}`);
    }
    const istiod = startProcess(
      'istiod',
      files.discovery,
      [
        'discovery',
        `--kubeconfig=${path.join(istiodDir, 'kubeconfig')}`,
        `--meshConfig=${path.join(istiodDir, 'mesh')}`,
        `--networksConfig=${path.join(istiodDir, 'meshNetworks')}`,
        `--grpcAddr=127.0.0.1:${grpcPort}`,
        `--httpAddr=127.0.0.1:${httpPort}`,
        `--httpsAddr=127.0.0.1:${httpsPort}`,
        `--monitoringAddr=127.0.0.1:${monitoringPort}`,
        `--secureGRPCAddr=${options.secureXds ? xds.address : ''}`,
        '--domain=cluster.local',
        '--shutdownDuration=1s',
        '--log_output_level=default:info',
        ...tlsArgs,
      ],
      {
        cwd: istiodDir,
        log: path.join(dir, 'istiod.log'),
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          POD_NAME: 'istiod-local',
          POD_NAMESPACE: 'istio-system',
          REVISION: 'default',
          ENABLE_CA_SERVER: 'false',
          PILOT_ENABLE_METADATA_EXCHANGE: 'false',
          PILOT_ENABLE_ALPN_FILTER: 'false',
          PILOT_ENABLE_GATEWAY_API: 'false',
          PILOT_ENABLE_GATEWAY_API_STATUS: 'false',
          PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER: 'false',
          PILOT_ENABLE_ANALYSIS: 'false',
          PILOT_ENABLE_STATUS: 'false',
          VALIDATION_WEBHOOK_CONFIG_NAME: '',
          INJECTION_WEBHOOK_CONFIG_NAME: '',
          PILOT_DEBOUNCE_AFTER: '20ms',
          PILOT_DEBOUNCE_MAX: '500ms',
          GOMAXPROCS: '2',
        },
      },
    );
    procs.push(istiod);
    await waitFor('istiod to be ready', [istiod], 120_000, async () => (await httpGet(`http://127.0.0.1:${httpPort}/ready`)).status === 200);
    const istiodReadyMs = Date.now() - started;
    let validation: Istio['validation'];
    if (options.validationWebhook) {
      validation = { url: `https://127.0.0.1:${httpsPort}/validate`, caPem: await fsp.readFile(path.join(istiodDir, 'tls', 'ca.pem'), 'utf8') };
      await registerValidationWebhook(kube, validation, [istiod]);
    }
    if (options.gateway === false) {
      watchdog = startWatchdog(dir, procs.map((p) => p.child.pid!).filter(Boolean));
      return {
        version: files.version,
        gatewayUrl: '',
        adminUrl: '',
        statusUrl: '',
        upstream,
        dir,
        xds: options.secureXds ? 'mtls' : 'plaintext',
        agentLog: () => '',
        istiodLog: () => tail(istiod.log, 100_000),
        istiodUrl: `http://127.0.0.1:${monitoringPort}`,
        timings: { istiodReadyMs, gatewayReadyMs: 0, crdsMs },
        validation,
        stop,
      };
    }
    if (!options.envoy) throw new Error('startIstio: `envoy` is required to start the gateway');

    // The Gateway, and a route to the upstream through a ServiceEntry.
    await putObject(kube, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'upstream', namespace: 'istio-system' },
      spec: {
        hosts: ['upstream.asm-wasm.test'],
        location: 'MESH_EXTERNAL',
        resolution: 'STATIC',
        ports: [{ number: upstream.port, name: 'http', protocol: 'HTTP' }],
        endpoints: [{ address: '127.0.0.1' }],
      },
    });
    await putObject(kube, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'gateway', namespace: 'istio-system' },
      spec: {
        selector: { istio: 'ingressgateway' },
        servers: [{ port: { number: listenerPort, name: 'http', protocol: 'HTTP' }, bind: '127.0.0.1', hosts: ['*'] }],
      },
    });
    await putObject(kube, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'upstream', namespace: 'istio-system' },
      spec: {
        hosts: ['*'],
        gateways: ['istio-system/gateway'],
        http: [{ route: [{ destination: { host: 'upstream.asm-wasm.test', port: { number: upstream.port } } }] }],
      },
    });

    // The gateway: pilot-agent in router mode, running the PyPI Envoy.
    const gwDir = path.join(dir, 'gateway');
    const credentials = path.join(gwDir, 'var/run/secrets/workload-spiffe-credentials');
    await workloadCerts(
      credentials,
      'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway',
      options.secureXds ? { cert: path.join(tls, 'ca.pem'), key: path.join(tls, 'ca.key') } : undefined,
    );
    await fsp.mkdir(path.join(gwDir, 'var/lib/istio/envoy'), { recursive: true });
    await fsp.mkdir(path.join(gwDir, 'etc/istio/proxy'), { recursive: true });
    // Istio's template, with Envoy's health and Prometheus listeners on loopback.
    const template = (await fsp.readFile(files.bootstrap, 'utf8')).replaceAll('{{ .wildcard }}', '127.0.0.1');
    await fsp.writeFile(path.join(gwDir, 'var/lib/istio/envoy/envoy_bootstrap_tmpl.json'), template);
    const dockerConfig: Record<string, string> = {};
    if (options.registryAuth) {
      const { registry, username, password } = options.registryAuth;
      const dockerDir = path.join(gwDir, 'docker');
      await fsp.mkdir(dockerDir, { recursive: true });
      const auth = Buffer.from(`${username}:${password}`).toString('base64');
      await fsp.writeFile(path.join(dockerDir, 'config.json'), JSON.stringify({ auths: { [registry]: { auth } } }), { mode: 0o600 });
      dockerConfig.DOCKER_CONFIG = dockerDir;
    }
    const proxyConfig = {
      discoveryAddress: xds.address,
      controlPlaneAuthPolicy: xds.policy,
      // With file-mounted certificates the agent takes what it presents to
      // istiod, and the root it checks istiod's certificate against, from here.
      ...(options.secureXds
        ? {
            proxyMetadata: {
              ISTIO_META_TLS_CLIENT_CERT_CHAIN: path.join(credentials, 'cert-chain.pem'),
              ISTIO_META_TLS_CLIENT_KEY: path.join(credentials, 'key.pem'),
              ISTIO_META_TLS_CLIENT_ROOT_CERT: path.join(credentials, 'root-cert.pem'),
            },
          }
        : {}),
      binaryPath: options.envoy,
      configPath: path.join(gwDir, 'etc/istio/proxy'),
      proxyAdminPort: adminPort,
      statusPort,
      concurrency: 1,
      drainDuration: '1s',
      terminationDrainDuration: '1s',
      ...(options.statsInclusionRegexps?.length ? { proxyStatsMatcher: { inclusionRegexps: options.statsInclusionRegexps } } : {}),
    };
    const agent = startProcess(
      'istio-agent',
      files.agent,
      [
        'proxy',
        'router',
        '--domain=istio-system.svc.cluster.local',
        '--proxyLogLevel=warning',
        '--proxyComponentLogLevel=wasm:info,misc:error',
        '--log_output_level=default:info',
      ],
      {
        cwd: gwDir,
        log: path.join(dir, 'gateway.log'),
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          PROXY_CONFIG: JSON.stringify(proxyConfig),
          POD_NAME: 'istio-ingressgateway-local',
          POD_NAMESPACE: 'istio-system',
          INSTANCE_IP: '127.0.0.1',
          SERVICE_ACCOUNT: 'istio-ingressgateway',
          ISTIO_META_CLUSTER_ID: 'Kubernetes',
          ISTIO_META_WORKLOAD_NAME: 'istio-ingressgateway',
          ISTIO_METAJSON_LABELS: JSON.stringify({ istio: 'ingressgateway', app: 'istio-ingressgateway' }),
          ENVOY_STATUS_PORT: String(healthPort),
          ENVOY_PROMETHEUS_PORT: String(promPort),
          FILE_MOUNTED_CERTS: 'true',
          ...(options.insecureRegistries?.length ? { WASM_INSECURE_REGISTRIES: options.insecureRegistries.join(',') } : {}),
          ...(options.registryCaFile ? { SSL_CERT_FILE: options.registryCaFile } : {}),
          ...dockerConfig,
          GOMAXPROCS: '2',
        },
      },
    );
    procs.push(agent);
    watchdog = startWatchdog(dir, procs.map((p) => p.child.pid!).filter(Boolean));
    const gatewayUrl = `http://127.0.0.1:${listenerPort}`;
    await waitFor('the gateway to route to the upstream', [istiod, agent], 120_000, async () => (await httpGet(`${gatewayUrl}/status/200`)).status === 200);
    const gatewayReadyMs = Date.now() - started;

    return {
      version: files.version,
      gatewayUrl,
      adminUrl: `http://127.0.0.1:${adminPort}`,
      statusUrl: `http://127.0.0.1:${statusPort}`,
      upstream,
      dir,
      xds: options.secureXds ? 'mtls' : 'plaintext',
      agentLog: () => tail(agent.log, 100_000),
      istiodLog: () => tail(istiod.log, 100_000),
      istiodUrl: `http://127.0.0.1:${monitoringPort}`,
      timings: { istiodReadyMs, gatewayReadyMs, crdsMs },
      validation,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

const VALIDATION_WEBHOOK = 'istio-validator-asm-wasm-test';

/** A CA and a serving certificate for 127.0.0.1 (and istiod's in-cluster name), as istiod reads them with --tlsCertFile. */
async function serverCerts(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(dir, 'req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=istiod-test-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  await fsp.writeFile(path.join(dir, 'leaf.ext'), 'subjectAltName=IP:127.0.0.1,DNS:istiod.istio-system.svc\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n');
  await openssl(dir, 'req', ...ec, '-keyout', 'key.pem', '-out', 'leaf.csr', '-subj', '/CN=istiod');
  await openssl(dir, 'x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', `0x${randomBytes(12).toString('hex')}`,
    '-out', 'cert.pem', '-days', '2', '-extfile', 'leaf.ext');
}

/**
 * Points the API server at istiod's /validate for Istio's API groups, as the
 * `istio-validator-istio-system` configuration of an install does, and waits
 * until a write goes through it (an AdmissionReview istiod refuses).
 */
async function registerValidationWebhook(kube: Kube, validation: NonNullable<Istio['validation']>, procs: Proc[]): Promise<void> {
  await must(
    'register the validation webhook',
    kube.request('admin', 'POST', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name: VALIDATION_WEBHOOK },
      webhooks: [
        {
          name: 'rev.validation.istio.io',
          clientConfig: { url: validation.url, caBundle: Buffer.from(validation.caPem).toString('base64') },
          rules: [
            {
              operations: ['CREATE', 'UPDATE'],
              apiGroups: ['security.istio.io', 'networking.istio.io', 'telemetry.istio.io', 'extensions.istio.io'],
              apiVersions: ['*'],
              resources: ['*'],
            },
          ],
          failurePolicy: 'Fail',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          timeoutSeconds: 10,
        },
      ],
    }),
  );
  // Registration takes a moment to reach the API server's admission chain:
  // wait until istiod refuses something only istiod refuses (a targetRefs kind
  // outside Istio's list passes the CRD's schema).
  const probe = {
    apiVersion: 'extensions.istio.io/v1alpha1',
    kind: 'WasmPlugin',
    metadata: { name: 'webhook-probe', namespace: 'istio-system' },
    spec: { url: 'oci://example.test/probe:v1', targetRefs: [{ kind: 'Pod', name: 'x' }] },
  };
  await waitFor('the API server to call istiod\'s validation webhook', procs, 30_000, async () => {
    const r = await kube.request('admin', 'POST', '/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins?dryRun=All', probe);
    return r.status === 400 && /admission webhook/.test(String(r.body?.message));
  });
}

/** Polls `check` every 100 ms until it is true; returns the milliseconds it took, or throws. */
export async function within(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  let last = '';
  for (;;) {
    try {
      if (await check()) return Date.now() - start;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? ` (${last})` : ''}`);
    await sleep(100);
  }
}

export { httpGet };
