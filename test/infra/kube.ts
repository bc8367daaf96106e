// A real Kubernetes API server for the tests: kube-apiserver and etcd built
// from the Go module proxy by kube/build.sh, run on 127.0.0.1 with TLS, static
// token users, RBAC and our WasmPlugin CRD installed.
//
//   const kube = await startKube();      // in beforeAll, with kubeStartTimeout()
//   kube.kubeconfig('deployer');         // a kubeconfig YAML for that user
//   await kube.stop();                   // in afterAll
//
// Users: `admin` (system:masters), `deployer` (may manage WasmPlugins in any
// namespace, read secrets, pods and their logs), `nobody` (authenticated, no
// rights on WasmPlugins). Each has a bearer token and a client certificate.
//
// When the binaries are not cached yet, startKube builds them (several
// minutes, once per version). If they cannot be built or the server does not
// start, startKube throws: the tests fail, they are never skipped.
//
// To run one by hand: test/infra/kube/up.sh
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as https from 'node:https';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

export type KubeUser = 'admin' | 'deployer' | 'nobody';
export const KUBE_USERS: readonly KubeUser[] = ['admin', 'deployer', 'nobody'];

export interface KubeconfigOptions {
  /** How the user authenticates: a bearer token (default) or a client certificate. */
  auth?: 'token' | 'cert';
  /** Name of the context (and of the cluster entry); default `asm-wasm-test`. */
  context?: string;
  /** Another server URL (e.g. a closed port, to test "unreachable"). */
  server?: string;
  /** Another CA to trust (e.g. `otherCaPem`, to test a CA mismatch). */
  caPem?: string;
  /** tls-server-name of the cluster (e.g. a name the certificate does not have). */
  tlsServerName?: string;
  /** Another token (e.g. a wrong one, to test 401). */
  token?: string;
  /** Default namespace of the context. */
  namespace?: string;
}

export interface Kube {
  /** https://127.0.0.1:<port> */
  server: string;
  /** PEM of the CA that signed the server's certificate. */
  caPem: string;
  /** PEM of a CA that signed nothing this server uses, to test a CA mismatch. */
  otherCaPem: string;
  tokens: Readonly<Record<KubeUser, string>>;
  /** A complete kubeconfig YAML for the user. */
  kubeconfig(user: KubeUser, options?: KubeconfigOptions): string;
  /** A request to the API server as a user; the body is sent as JSON unless a string. */
  request(user: KubeUser, method: string, apiPath: string, body?: unknown, contentType?: string): Promise<KubeResponse>;
  /** Where the certificates, logs and etcd data are. */
  dir: string;
  /** Kills both processes and removes `dir`. Safe to call twice. */
  stop(): Promise<void>;
}

export interface KubeResponse {
  status: number;
  /** Parsed JSON, or the raw text if it is not JSON. */
  body: any;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const kubeDir = path.join(here, 'kube');
const CRD_NAME = 'wasmplugins.extensions.istio.io';

/** The versions pinned by the wrapper modules, and where build.sh puts the binaries. */
export function kubeBinaries(): { apiserver: string; etcd: string; k8sVersion: string; etcdVersion: string } {
  const cache = process.env.ASM_WASM_CACHE || path.join(os.homedir(), '.cache', 'asm-wasm-action');
  const k8sVersion = pinned(path.join(kubeDir, 'apiserver', 'go.mod'), 'k8s.io/kubernetes');
  const etcdVersion = pinned(path.join(kubeDir, 'etcd', 'go.mod'), 'go.etcd.io/etcd/server/v3');
  return {
    apiserver: path.join(cache, 'kube', k8sVersion, 'kube-apiserver'),
    etcd: path.join(cache, 'etcd', etcdVersion, 'etcd'),
    k8sVersion,
    etcdVersion,
  };
}

function pinned(gomod: string, module: string): string {
  for (const line of fs.readFileSync(gomod, 'utf8').split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words[0] === 'require') words.shift();
    if (words[0] === module && words[1]?.startsWith('v')) return words[1];
  }
  throw new Error(`${gomod} does not pin ${module}`);
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The timeout to give the beforeAll that calls startKube: short when the
 * binaries are cached, long enough for a cold build otherwise.
 */
export function kubeStartTimeout(): number {
  const { apiserver, etcd } = kubeBinaries();
  return isExecutable(apiserver) && isExecutable(etcd) ? 120_000 : 60 * 60_000;
}

/** Runs build.sh unless both binaries are cached; throws with its output if it fails. */
export async function ensureKubeBinaries(): Promise<{ apiserver: string; etcd: string }> {
  const bins = kubeBinaries();
  if (isExecutable(bins.apiserver) && isExecutable(bins.etcd)) return bins;
  const { code, stdout, stderr } = await runCapture('bash', [path.join(kubeDir, 'build.sh')], { echo: true });
  if (code !== 0) {
    throw new Error(
      `could not build kube-apiserver ${bins.k8sVersion} and etcd ${bins.etcdVersion} for the tests ` +
        `(test/infra/kube/build.sh exited with ${code}; it needs Go and the Go module proxy):\n${lastLines(stdout + stderr, 30)}`,
    );
  }
  if (!isExecutable(bins.apiserver) || !isExecutable(bins.etcd)) {
    throw new Error(`test/infra/kube/build.sh succeeded but did not produce ${bins.apiserver} and ${bins.etcd}`);
  }
  return bins;
}

function runCapture(
  command: string,
  args: string[],
  options: { cwd?: string; echo?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { cwd: options.cwd, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
        reject(new Error(`could not start ${command}: ${err.message}`));
        return;
      }
      resolve({ code: child.exitCode ?? 1, stdout, stderr });
    });
    if (options.echo) child.stderr?.on('data', (chunk) => process.stderr.write(chunk));
  });
}

async function openssl(dir: string, ...args: string[]): Promise<void> {
  const { code, stdout, stderr } = await runCapture('openssl', args, { cwd: dir });
  if (code !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${stdout}${stderr}`);
}

/** A CA, the server's certificate, a client certificate per user, the service-account key pair. */
async function makePki(dir: string): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  await Promise.all([
    openssl(dir, 'req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '7', '-subj', '/CN=asm-wasm-test-ca', ...ca),
    openssl(dir, 'req', '-x509', ...ec, '-keyout', 'other-ca.key', '-out', 'other-ca.crt', '-days', '7', '-subj', '/CN=asm-wasm-test-ca', ...ca),
    openssl(dir, 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'sa.key'),
  ]);
  await openssl(dir, 'pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub');
  await fsp.writeFile(
    path.join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n',
  );
  await fsp.writeFile(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n');
  const leaf = async (name: string, subject: string, ext: string) => {
    await openssl(dir, 'req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    // A serial per certificate: -CAcreateserial would race on ca.srl.
    const serial = `0x${randomBytes(16).toString('hex')}`;
    await openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', serial,
      '-out', `${name}.crt`, '-days', '7', '-extfile', ext);
  };
  await Promise.all([
    leaf('server', '/CN=kube-apiserver', 'server.ext'),
    leaf('client-admin', '/O=system:masters/CN=admin', 'client.ext'),
    leaf('client-deployer', '/CN=deployer', 'client.ext'),
    leaf('client-nobody', '/CN=nobody', 'client.ext'),
  ]);
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

function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface Proc {
  name: string;
  child: ChildProcess;
  log: string;
  exited: boolean;
}

function startProcess(name: string, binary: string, args: string[], log: string): Proc {
  const out = fs.openSync(log, 'a');
  const child = spawn(binary, args, { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const proc: Proc = { name, child, log, exited: false };
  child.on('exit', () => {
    proc.exited = true;
  });
  child.on('error', () => {
    proc.exited = true;
  });
  return proc;
}

function logTail(proc: Proc, n = 30): string {
  try {
    return lastLines(fs.readFileSync(proc.log, 'utf8'), n);
  } catch {
    return '(no log)';
  }
}

/** Polls `check` until it returns true, failing early if one of `procs` exits. */
export async function waitFor(what: string, procs: Proc[], timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    const dead = procs.find((p) => p.exited);
    if (dead) {
      throw new Error(`${dead.name} exited while waiting for ${what} (log ${dead.log}):\n${logTail(dead)}`);
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = (err as Error).message;
    }
    if (Date.now() > deadline) {
      const logs = procs.map((p) => `--- ${p.name} (${p.log}):\n${logTail(p)}`).join('\n');
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${lastError ? ` (${lastError})` : ''}\n${logs}`);
    }
    await sleep(100);
  }
}

function httpGet(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.setTimeout(2000, () => req.destroy(new Error('timeout')));
  });
}

function apiRequest(
  server: string,
  caPem: string,
  token: string,
  method: string,
  apiPath: string,
  body?: unknown,
  contentType?: string,
): Promise<KubeResponse> {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(apiPath, server),
      {
        method,
        ca: caPem,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': contentType ?? 'application/json' }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${apiPath} timed out`)));
    req.end(payload);
  });
}

const running = new Set<Proc>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of running) if (!p.exited) p.child.kill('SIGKILL');
  });
}

/**
 * A watchdog outside this process: if the test worker dies without calling
 * stop() (killed on a timeout, a crash), it kills etcd and the API server and
 * removes their directory.
 */
function startWatchdog(dir: string, pids: number[]): ChildProcess {
  const script = [
    'parent=$1; dir=$2; shift 2',
    'while kill -0 "$parent" 2>/dev/null; do sleep 1; done',
    'kill -TERM "$@" 2>/dev/null; sleep 2; kill -KILL "$@" 2>/dev/null',
    'rm -rf "$dir"',
  ].join('\n');
  const child = spawn('sh', ['-c', script, 'kube-watchdog', String(process.pid), dir, ...pids.map(String)], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return child;
}

async function stopProcess(proc: Proc): Promise<void> {
  running.delete(proc);
  if (proc.exited) return;
  const exited = new Promise<void>((resolve) => proc.child.once('exit', () => resolve()));
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export interface StartKubeOptions {
  /** Install the WasmPlugin CRD (default true); false gives a cluster without Istio. */
  crd?: boolean;
}

/** Starts etcd and kube-apiserver, installs the CRD and the RBAC setup. */
export async function startKube(options: StartKubeOptions = {}): Promise<Kube> {
  const bins = await ensureKubeBinaries();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startKubeOnce(bins, options);
    } catch (err) {
      // A free port can be taken by another process before etcd or the API
      // server binds it: try again with new ports.
      if (attempt < 3 && /address already in use/.test((err as Error).message)) continue;
      throw err;
    }
  }
}

async function startKubeOnce(bins: { apiserver: string; etcd: string }, options: StartKubeOptions): Promise<Kube> {
  const withCrd = options.crd ?? true;
  installExitHook();
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'asm-wasm-kube-'));
  const procs: Proc[] = [];
  let watchdog: ChildProcess | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // The API server first, so it does not log etcd going away.
    for (const p of [...procs].reverse()) await stopProcess(p);
    if (watchdog?.pid) {
      try {
        process.kill(watchdog.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await fsp.rm(dir, { recursive: true, force: true });
  };

  try {
    await makePki(dir);
    const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
    const caPem = read('ca.crt');
    const tokens = Object.fromEntries(KUBE_USERS.map((u) => [u, `${u}-${randomBytes(16).toString('hex')}`])) as Record<
      KubeUser,
      string
    >;
    await fsp.writeFile(
      path.join(dir, 'tokens.csv'),
      [`${tokens.admin},admin,uid-admin,"system:masters"`, `${tokens.deployer},deployer,uid-deployer`, `${tokens.nobody},nobody,uid-nobody`].join(
        '\n',
      ) + '\n',
      { mode: 0o600 },
    );

    const [etcdClient, etcdPeer, apiPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const etcd = startProcess(
      'etcd',
      bins.etcd,
      [
        '--name=default',
        `--data-dir=${path.join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
        '--unsafe-no-fsync',
        '--quota-backend-bytes=1073741824',
        '--log-level=warn',
      ],
      path.join(dir, 'etcd.log'),
    );
    procs.push(etcd);
    running.add(etcd);
    await waitFor('etcd to be healthy', [etcd], 30_000, async () => (await httpGet(`${etcdUrl}/health`)) === 200);

    const server = `https://127.0.0.1:${apiPort}`;
    const apiserver = startProcess(
      'kube-apiserver',
      bins.apiserver,
      [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        `--cert-dir=${path.join(dir, 'certs')}`,
        `--tls-cert-file=${path.join(dir, 'server.crt')}`,
        `--tls-private-key-file=${path.join(dir, 'server.key')}`,
        `--client-ca-file=${path.join(dir, 'ca.crt')}`,
        `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
        '--authorization-mode=RBAC',
        `--service-account-key-file=${path.join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${path.join(dir, 'sa.key')}`,
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        '--service-cluster-ip-range=10.96.0.0/24',
        // Nothing below is needed by the tests, and each costs start-up time.
        '--endpoint-reconciler-type=none',
        '--enable-priority-and-fairness=false',
        '--profiling=false',
        '--v=0',
      ],
      path.join(dir, 'kube-apiserver.log'),
    );
    procs.push(apiserver);
    running.add(apiserver);
    watchdog = startWatchdog(dir, procs.map((p) => p.child.pid!).filter(Boolean));

    const as = (user: KubeUser, method: string, apiPath: string, body?: unknown, contentType?: string) =>
      apiRequest(server, caPem, tokens[user], method, apiPath, body, contentType);
    const must = async (what: string, res: Promise<KubeResponse>, ok: number[] = [200, 201]) => {
      const r = await res;
      if (!ok.includes(r.status)) throw new Error(`could not ${what}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      return r;
    };

    await waitFor('kube-apiserver to be ready', [etcd, apiserver], 120_000, async () => (await as('admin', 'GET', '/readyz')).status === 200);

    const crd = YAML.parse(fs.readFileSync(path.join(kubeDir, 'wasmplugin-crd.yaml'), 'utf8'));
    if (withCrd) {
      await must('install the WasmPlugin CRD', as('admin', 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd));
    }
    await must('create the istio-system namespace', as('admin', 'POST', '/api/v1/namespaces', namespaceObject('istio-system')));
    await must(
      'create the deployer ClusterRole',
      as('admin', 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'asm-wasm-deployer' },
        rules: [
          {
            apiGroups: ['extensions.istio.io'],
            resources: ['wasmplugins'],
            verbs: ['get', 'list', 'create', 'update', 'patch', 'delete'],
          },
          { apiGroups: [''], resources: ['secrets', 'pods', 'pods/log'], verbs: ['get', 'list'] },
        ],
      }),
    );
    await must(
      'bind the deployer ClusterRole',
      as('admin', 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'asm-wasm-deployer' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'asm-wasm-deployer' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'deployer' }],
      }),
    );
    if (withCrd) {
      await waitFor('the WasmPlugin CRD to be established', [etcd, apiserver], 60_000, async () => {
        const r = await as('admin', 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}`);
        return (r.body?.status?.conditions ?? []).some((c: any) => c.type === 'Established' && c.status === 'True');
      });
    }
    // Established is set before the endpoint serves, and RBAC's caches see
    // the binding a moment after it is created: wait until the deployer can
    // list what it may list.
    await waitFor('the deployer\'s rights to take effect', [etcd, apiserver], 60_000, async () => {
      const r = await as('deployer', 'GET', withCrd ? '/apis/extensions.istio.io/v1alpha1/wasmplugins' : '/api/v1/secrets');
      return r.status === 200;
    });

    const clientCert = (user: KubeUser) => ({ cert: read(`client-${user}.crt`), key: read(`client-${user}.key`) });
    const kubeconfig = (user: KubeUser, options: KubeconfigOptions = {}): string => {
      const context = options.context ?? 'asm-wasm-test';
      const b64 = (s: string) => Buffer.from(s).toString('base64');
      const credentials =
        options.auth === 'cert'
          ? { 'client-certificate-data': b64(clientCert(user).cert), 'client-key-data': b64(clientCert(user).key) }
          : { token: options.token ?? tokens[user] };
      return YAML.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: context,
            cluster: {
              server: options.server ?? server,
              'certificate-authority-data': b64(options.caPem ?? caPem),
              ...(options.tlsServerName ? { 'tls-server-name': options.tlsServerName } : {}),
            },
          },
        ],
        users: [{ name: `${context}-${user}`, user: credentials }],
        contexts: [
          {
            name: context,
            context: { cluster: context, user: `${context}-${user}`, ...(options.namespace ? { namespace: options.namespace } : {}) },
          },
        ],
        'current-context': context,
      });
    };

    return {
      server,
      caPem,
      otherCaPem: read('other-ca.crt'),
      tokens,
      kubeconfig,
      request: as,
      dir,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

export function namespaceObject(name: string): object {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
}
