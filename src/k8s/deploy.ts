// The deploy stage: put the WasmPlugin (or TrafficExtension) on the API
// server (dry run, apply or delete), verify that the gateway answers as the tests expect, and restore
// what was there before when it does not.
import { log as runLog } from '../log.js';
import { maskSecret } from '../github.js';
import { UserError } from '../errors.js';
import { KubeClient, type RequestPurpose } from './client.js';
import { diffObjects, sameContent } from './diff.js';
import { loadKubeconfig } from './kubeconfig.js';
import type { DeployMode } from './modes.js';
import { inspectGatewayPods, readFetchCounts, type FetchCounts, type PodCheck } from './pods.js';
import { formatVerifyReport, istioBaseline, verify, type VerifyOptions, type VerifyReport } from './verify.js';
import {
  KIND_RESOURCE,
  WASMPLUGIN_API_VERSION,
  WASMPLUGIN_GROUP,
  WASMPLUGIN_VERSION,
  changedPluginConfigKeys,
  wasmOf,
  wasmPluginView,
  type ExtensionResource,
  type ResourceKind,
} from './wasmplugin.js';
import type { ResolvedPlugin } from '../plugin/resolve.js';

export const FIELD_MANAGER = 'asm-wasm-action';

export { DEPLOY_MODES, type DeployMode } from './modes.js';
export type DeployOutcome = 'created' | 'configured' | 'unchanged' | 'deleted';

/** Registry credentials for the image pull secret (type kubernetes.io/dockerconfigjson). */
export interface PullSecretOptions {
  /** Secret name; also used as spec.imagePullSecret when that is not set. */
  name: string;
  /** Registry host, e.g. `registry.cn-hangzhou.aliyuncs.com`. */
  registry: string;
  username: string;
  password: string;
}

export interface GatewayCheckOptions {
  /** Kubeconfig (YAML or base64) of the data-plane cluster where the gateway pods run. */
  kubeconfig: string;
  context?: string;
  /** Namespace of the gateway pods; default the WasmPlugin's namespace. */
  namespace?: string;
}

export interface DeployOptions {
  /** The kubeconfig secret: YAML or base64. For ASM, the mesh instance's (control plane) kubeconfig. */
  kubeconfig: string;
  context?: string;
  mode: DeployMode;
  /**
   * The WasmPlugin as resolvePlugin made it (validated there, once): applied
   * exactly as it is. For `delete`, only its name and namespace are used.
   */
  plugin: Pick<ResolvedPlugin, 'object' | 'warnings' | 'notes'>;
  /** Take over fields another field manager owns (server-side apply force). */
  force?: boolean;
  /** Default `asm-wasm-action`. */
  fieldManager?: string;
  /** Per API request; default 30 s. */
  requestTimeoutMs?: number;
  /** Create or update this image pull secret next to the WasmPlugin first. */
  pullSecret?: PullSecretOptions;
  /** After an apply: HTTP cases against the gateway; on failure the previous state is restored. */
  verify?: VerifyOptions;
  /** After an apply: also look at the gateway pods in the data-plane cluster. */
  gateway?: GatewayCheckOptions;
  /** Default maskSecret (the runner's add-mask in a workflow; nothing on a laptop, where it would print the secret). */
  setSecret?: (value: string) => void;
  /** Progress lines; default the log (src/log.ts). */
  log?: (line: string) => void;
}

export interface RollbackResult {
  /** What was done (or meant): the previous spec put back, or the object we created deleted. */
  action: 'restored' | 'deleted';
  ok: boolean;
  /** Generation after a restore. */
  generation?: number;
  error?: string;
  /**
   * Set when nothing was rolled back because the live object is no longer
   * the one this run applied (another run or a person changed or deleted it
   * since): what happened to it. Their change is left as it is.
   */
  changedSince?: string;
}

export interface DeployResult {
  mode: DeployMode;
  /** `namespace/name` */
  wasmplugin: string;
  namespace: string;
  name: string;
  /** What happened, or for a dry run what would happen. */
  result: DeployOutcome;
  dryRun: boolean;
  /** metadata.generation after the operation (for a delete: of the deleted object). */
  generation?: number;
  /** Unified diff of labels, annotations and spec, live -> new; '' if none. */
  diff: string;
  server: string;
  context: string;
  /** WasmPlugin or TrafficExtension. */
  kind: ResourceKind;
  /** The object as the server returned it (for a dry run: as it would be). */
  object?: ExtensionResource;
  /** The live object before the operation, or null if there was none. */
  previous: ExtensionResource | null;
  warnings: string[];
  /** Values the plugin model filled in (the default selector…), in words. */
  notes: string[];
  /** The top-level pluginConfig keys added, removed or changed (their values are never shown). */
  pluginConfigChanged?: string[];
  pullSecret?: { name: string; result: DeployOutcome };
  verification?: VerifyReport;
  pods?: PodCheck[];
  rollback?: RollbackResult;
}

/** Thrown when verification fails after an apply; `result` has the report and the rollback. */
export class DeployVerificationError extends UserError {
  constructor(readonly result: DeployResult) {
    const failing = result.verification?.cases.filter((c) => !c.passed) ?? [];
    const podProblems = (result.pods ?? []).filter((p) => p.problems.length);
    const rb = result.rollback;
    const rollback = !rb
      ? 'nothing to roll back'
      : rb.changedSince
        ? `not rolled back: ${rb.changedSince}; their version was left as it is`
        : rb.ok
        ? rb.action === 'deleted'
          ? `rolled back: the ${result.kind} this run created was deleted`
          : `rolled back: the previous spec was restored (generation ${rb.generation})`
        : `ROLLBACK FAILED (${rb.error}): fix ${result.wasmplugin} by hand`;
    super(
      `verification of ${result.wasmplugin} failed (${[
        failing.length ? `${failing.length} case(s): ${failing.map((c) => c.name).join(', ')}` : '',
        podProblems.length ? `${podProblems.length} gateway pod(s) with problems` : '',
      ]
        .filter(Boolean)
        .join('; ')}); ${rollback}`,
      [
        ...failing.map((c) => `${c.name}: ${c.problems.join('; ')}`),
        ...podProblems.map((p) => `pod ${p.pod}: ${p.problems.join('; ')}`),
      ].join('\n'),
    );
    this.name = 'DeployVerificationError';
  }
}

function pluginPath(kind: ResourceKind, namespace: string, name?: string): string {
  const base = `/apis/${WASMPLUGIN_GROUP}/${WASMPLUGIN_VERSION}/namespaces/${encodeURIComponent(namespace)}/${KIND_RESOURCE[kind]}`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}

function purpose(kind: ResourceKind, verb: string, namespace: string, name?: string): RequestPurpose {
  return { verb, resource: `${KIND_RESOURCE[kind]}.${WASMPLUGIN_GROUP}`, namespace, name };
}

/** Fails with "is Istio or ASM installed?" when the server does not serve the kind. */
export async function checkResourceApi(client: KubeClient, kind: ResourceKind = 'WasmPlugin'): Promise<void> {
  const res = await client.send({ method: 'GET', path: `/apis/${WASMPLUGIN_GROUP}/${WASMPLUGIN_VERSION}` });
  const missing = () =>
    new UserError(
      `${client.where} does not serve ${WASMPLUGIN_API_VERSION} ${kind} (the ${kind} CRD is not installed): is Istio or ASM installed in this cluster? ` +
        (kind === 'TrafficExtension'
          ? 'TrafficExtension is served by newer Istio releases (the 1.31 line) only; deploy a WasmPlugin (drop `kind: TrafficExtension` from wasmplugin.yaml and put the spec.wasm fields under spec) to an older one. '
          : '') +
        'For Alibaba Cloud Service Mesh, use the kubeconfig of the mesh instance (its control plane), not the one of the data-plane cluster',
    );
  if (res.status === 404) throw missing();
  if (res.status !== 200) throw client.apiError(res, { verb: 'get', resource: `API group ${WASMPLUGIN_API_VERSION}` });
  const resources: { name?: string }[] = res.body?.resources ?? [];
  if (!resources.some((r) => r.name === KIND_RESOURCE[kind])) throw missing();
}

/** The live WasmPlugin or TrafficExtension, or null. */
export async function getLiveObject(client: KubeClient, kind: ResourceKind, namespace: string, name: string): Promise<ExtensionResource | null> {
  const res = await client.send({ method: 'GET', path: pluginPath(kind, namespace, name) });
  if (res.status === 404) return null;
  if (res.status !== 200) throw client.apiError(res, purpose(kind, 'get', namespace, name));
  return res.body as ExtensionResource;
}

/** Server-side apply of any object; `dryRun` asks the server to check it without storing it. */
async function serverSideApply(
  client: KubeClient,
  path: string,
  object: object,
  what: RequestPurpose,
  options: { fieldManager: string; force: boolean; dryRun: boolean },
): Promise<any> {
  const res = await client.send({
    method: 'PATCH',
    path,
    query: { fieldManager: options.fieldManager, force: options.force, dryRun: options.dryRun ? 'All' : undefined },
    body: object,
    contentType: 'application/apply-patch+yaml',
  });
  if (res.status === 200 || res.status === 201) return res.body;
  if (res.status === 404 && res.body?.details?.kind === 'namespaces') {
    throw new UserError(`namespace "${what.namespace}" does not exist on ${client.where}: create it, or set the namespace input`);
  }
  throw client.apiError(res, what);
}

function dockerConfigJson(secret: PullSecretOptions): string {
  const auth = Buffer.from(`${secret.username}:${secret.password}`).toString('base64');
  return JSON.stringify({ auths: { [secret.registry]: { username: secret.username, password: secret.password, auth } } });
}

/** Creates or updates the image pull secret; returns what happened. */
export async function applyPullSecret(
  client: KubeClient,
  namespace: string,
  secret: PullSecretOptions,
  options: { fieldManager: string; force: boolean; dryRun: boolean; setSecret: (v: string) => void },
): Promise<DeployOutcome> {
  const json = dockerConfigJson(secret);
  const data = Buffer.from(json).toString('base64');
  for (const value of [secret.password, Buffer.from(`${secret.username}:${secret.password}`).toString('base64'), json, data]) {
    options.setSecret(value);
  }
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(secret.name)}`;
  const what = { verb: 'patch', resource: 'secrets', namespace, name: secret.name };
  const before = await client.send({ method: 'GET', path });
  if (before.status !== 200 && before.status !== 404) throw client.apiError(before, { ...what, verb: 'get' });
  const after = await serverSideApply(
    client,
    path,
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: secret.name, namespace },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': data },
    },
    what,
    options,
  );
  if (before.status === 404) return 'created';
  const same = before.body?.data?.['.dockerconfigjson'] === after?.data?.['.dockerconfigjson'] && before.body?.type === after?.type;
  return same ? 'unchanged' : 'configured';
}

/**
 * Why the live object is no longer the one this run applied, or undefined
 * when it still is: the same resourceVersion, or only what the server and
 * controllers write moved (status, managedFields; istiod may write status).
 */
function changedSinceApply(applied: ExtensionResource, live: ExtensionResource): string | undefined {
  const what = `${live.metadata.namespace}/${live.metadata.name}`;
  if (applied.metadata.uid && live.metadata.uid !== applied.metadata.uid) {
    return `someone else deleted ${what} and created it again after this run applied it`;
  }
  if (live.metadata.resourceVersion === applied.metadata.resourceVersion || sameContent(applied, live)) return undefined;
  return (
    `someone else changed ${what} after this run applied it ` +
    `(resourceVersion ${applied.metadata.resourceVersion} → ${live.metadata.resourceVersion}, generation ${applied.metadata.generation} → ${live.metadata.generation})`
  );
}

/**
 * Puts `previous` back exactly (labels, annotations, spec), or deletes the
 * object when there was no previous one, but only while the live object is
 * still the one this run applied (`target.applied`, as the apply returned
 * it). Optimistic concurrency: the write carries the resourceVersion that
 * was checked (a forced server-side apply with metadata.resourceVersion, a DELETE with
 * preconditions), so a change that lands between the check and the write
 * is refused by the API server and looked at again. When another run or a
 * person changed or deleted the object since, nothing is written and
 * `changedSince` says what happened: a rollback never overwrites a newer
 * deploy.
 */
export async function rollback(
  client: KubeClient,
  previous: ExtensionResource | null,
  target: { namespace: string; name: string; applied: ExtensionResource },
  fieldManager = FIELD_MANAGER,
): Promise<RollbackResult> {
  const { namespace, name, applied } = target;
  const kind = applied.kind;
  const action = previous ? 'restored' : 'deleted';
  try {
    for (let attempt = 1; ; attempt++) {
      const live = await getLiveObject(client, kind, namespace, name);
      if (!live) {
        // Gone: nothing of this run is left to undo, and someone else's delete is not undone either.
        return previous
          ? { action, ok: false, changedSince: `someone else deleted ${namespace}/${name} after this run applied it` }
          : { action, ok: true };
      }
      const changed = changedSinceApply(applied, live);
      if (changed) return { action, ok: false, changedSince: changed };
      const checked = live.metadata.resourceVersion;
      if (!previous) {
        const res = await client.send({
          method: 'DELETE',
          path: pluginPath(kind, namespace, name),
          body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: live.metadata.uid, resourceVersion: checked } },
        });
        if (res.status === 200 || res.status === 202 || res.status === 404) return { action, ok: true };
        if (res.status === 409 && attempt < 3) continue;
        throw client.apiError(res, purpose(kind, 'delete', namespace, name));
      }
      // A forced server-side apply of the previous object, by the manager
      // that applied this run's: it takes back every field this run set and
      // drops the ones the previous object did not have, and it leaves no
      // second (Update) entry for our manager that would make the next apply
      // conflict with ourselves. metadata.resourceVersion (the checked one)
      // makes it conditional: the API server refuses it with 409 if the
      // object changed in between.
      const body = {
        apiVersion: WASMPLUGIN_API_VERSION,
        kind,
        metadata: {
          name,
          namespace,
          resourceVersion: checked,
          ...(previous.metadata.labels ? { labels: previous.metadata.labels } : {}),
          ...(previous.metadata.annotations ? { annotations: previous.metadata.annotations } : {}),
        },
        spec: previous.spec,
      } as ExtensionResource;
      const res = await client.send({
        method: 'PATCH',
        path: pluginPath(kind, namespace, name),
        query: { fieldManager, force: true },
        body,
        contentType: 'application/apply-patch+yaml',
      });
      if (res.status === 200 || res.status === 201) return { action, ok: true, generation: res.body?.metadata?.generation };
      // Changed between the check and the write: look again (and refuse if it is no longer ours).
      if (res.status === 409 && attempt < 3) continue;
      throw client.apiError(res, purpose(kind, 'patch', namespace, name));
    }
  } catch (err) {
    return { action, ok: false, error: (err as Error).message };
  }
}

function outcome(previous: ExtensionResource | null, after: ExtensionResource, dryRun: boolean): DeployOutcome {
  if (!previous) return 'created';
  // A server-side apply that changes nothing is not written: same resourceVersion.
  if (!dryRun) return after.metadata.resourceVersion === previous.metadata.resourceVersion ? 'unchanged' : 'configured';
  return sameContent(previous, after) ? 'unchanged' : 'configured';
}

/** Dry-run, apply or delete the WasmPlugin or TrafficExtension, then verify (and roll back) after an apply. */
export async function deploy(options: DeployOptions): Promise<DeployResult> {
  const setSecret = options.setSecret ?? maskSecret;
  const log = options.log ?? runLog.info;
  const fieldManager = options.fieldManager ?? FIELD_MANAGER;
  const force = options.force ?? false;
  const config = loadKubeconfig(options.kubeconfig, { context: options.context, setSecret });
  // Parse the data-plane kubeconfig now too, so its credentials are masked before any log line.
  const gatewayConfig = options.gateway
    ? loadKubeconfig(options.gateway.kubeconfig, { context: options.gateway.context, setSecret, inputName: 'cluster-kubeconfig' })
    : undefined;
  const client = new KubeClient(config, { timeoutMs: options.requestTimeoutMs, onRetry: log });
  const { namespace, name } = options.plugin.object.metadata;
  const kind = options.plugin.object.kind;
  const dryRun = options.mode === 'dry-run';

  // What is applied is the resolved object, as it is: nothing is added here.
  let desired: ExtensionResource | undefined;
  let warnings: string[] = [];
  if (options.mode === 'apply' || options.mode === 'dry-run') {
    desired = structuredClone(options.plugin.object);
    const wasm = wasmOf(desired);
    if (!wasm.url) throw new UserError('no url to deploy: run the push stage with `image` set (its pinned oci:// url is used), or set `url`');
    if (options.pullSecret && wasm.imagePullSecret !== options.pullSecret.name) {
      throw new UserError(
        `the pull secret to create is "${options.pullSecret.name}", but ${kind === 'TrafficExtension' ? 'spec.wasm' : 'spec'}.imagePullSecret is ${wasm.imagePullSecret ? `"${wasm.imagePullSecret}"` : 'not set'}: set \`image-pull-secret\` to the Secret the gateway should pull with`,
      );
    }
    warnings = options.plugin.warnings;
  } else if (options.mode !== 'delete') {
    throw new UserError(`mode must be dry-run, apply or delete, not "${String(options.mode)}"`);
  }

  log(`${options.mode} ${kind} ${namespace}/${name} on ${config.server} (context "${config.context}")`);
  const notes = options.mode === 'delete' ? [] : options.plugin.notes;
  for (const note of notes) log(`note: ${note}`);
  await checkResourceApi(client, kind);
  const previous = await getLiveObject(client, kind, namespace, name);
  const base = {
    mode: options.mode,
    kind,
    wasmplugin: `${namespace}/${name}`,
    namespace,
    name,
    dryRun,
    server: config.server,
    context: config.context,
    previous,
    warnings,
    notes,
  };

  if (options.mode === 'delete') {
    if (!previous) {
      log(`${kind} ${namespace}/${name} does not exist: nothing to delete`);
      return { ...base, result: 'unchanged', diff: '' };
    }
    const res = await client.send({
      method: 'DELETE',
      path: pluginPath(kind, namespace, name),
      body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: previous.metadata.uid } },
    });
    if (res.status !== 200 && res.status !== 202 && res.status !== 404) throw client.apiError(res, purpose(kind, 'delete', namespace, name));
    return { ...base, result: 'deleted', generation: previous.metadata.generation, diff: diffObjects(previous, null) };
  }

  let pullSecret: DeployResult['pullSecret'];
  if (options.pullSecret) {
    const result = await applyPullSecret(client, namespace, options.pullSecret, { fieldManager, force, dryRun, setSecret });
    pullSecret = { name: options.pullSecret.name, result };
    log(`image pull secret ${namespace}/${options.pullSecret.name}: ${result}${dryRun ? ' (dry run)' : ''}`);
  }

  const fetchBefore: Map<string, FetchCounts> = new Map();
  let gatewayClient: KubeClient | undefined;
  const gatewayNamespace = options.gateway?.namespace || namespace;
  if (gatewayConfig && !dryRun) {
    gatewayClient = new KubeClient(gatewayConfig, { timeoutMs: options.requestTimeoutMs, onRetry: log });
    for (const [pod, counts] of await readFetchCounts(gatewayClient, gatewayNamespace, wasmPluginView(desired!))) fetchBefore.set(pod, counts);
  }

  // Istio's signals on the gateway before the apply, to tell what this apply changes.
  const verifyBaseline = options.verify && !dryRun ? await istioBaseline(options.verify.istio, wasmPluginView(desired!)) : undefined;
  const applyStarted = new Date();
  const object = (await serverSideApply(client, pluginPath(kind, namespace, name), desired!, purpose(kind, 'patch', namespace, name), {
    fieldManager,
    force,
    dryRun,
  })) as ExtensionResource;
  const result: DeployResult = {
    ...base,
    result: outcome(previous, object, dryRun),
    generation: object.metadata.generation,
    diff: diffObjects(previous, object),
    pluginConfigChanged: changedPluginConfigKeys(previous ? wasmOf(previous).pluginConfig : undefined, wasmOf(object).pluginConfig),
    object,
    pullSecret,
  };
  log(`${kind} ${namespace}/${name}: ${result.result}${dryRun ? ' (dry run: nothing was changed)' : ''}, generation ${result.generation}`);
  if (result.pluginConfigChanged?.length) {
    log(`pluginConfig keys ${previous ? 'changed' : 'set'}: ${result.pluginConfigChanged.join(', ')} (values are not shown)`);
  }
  if (dryRun || (!options.verify && !gatewayClient)) return result;

  let failed = false;
  if (options.verify) {
    log(`verifying ${options.verify.url} with ${options.verify.cases.length} case(s)`);
    result.verification = await verify({
      ...options.verify,
      // Verification reads the gateway by WasmPlugin's field names; a TrafficExtension's are the same settings.
      plugin: options.verify.plugin ?? wasmPluginView(object),
      baseline: options.verify.baseline ?? verifyBaseline,
      unchanged: result.result === 'unchanged',
      log: options.verify.log ?? log,
      onAttempt: (attempt, cases) => {
        const failing = cases.filter((c) => !c.passed).length;
        log(`  attempt ${attempt}: ${failing} of ${cases.length} case(s) failing, retrying`);
        options.verify?.onAttempt?.(attempt, cases);
      },
    });
    log(formatVerifyReport(result.verification));
    failed ||= !result.verification.passed;
  }
  if (gatewayClient) {
    result.pods = await inspectGatewayPods(gatewayClient, gatewayNamespace, wasmPluginView(desired!), { since: applyStarted, fetchBefore });
    for (const pod of result.pods) {
      log(`gateway pod ${pod.pod}: ${pod.problems.length ? pod.problems.join('; ') : 'ok'}${pod.notes.length ? ` (${pod.notes.join('; ')})` : ''}`);
    }
    failed ||= result.pods.some((p) => p.problems.length > 0);
  }
  if (!failed) return result;

  if (result.result !== 'unchanged') {
    log(previous ? `restoring the previous spec of ${namespace}/${name}` : `deleting ${namespace}/${name}, which this run created`);
    result.rollback = await rollback(client, previous, { namespace, name, applied: object }, fieldManager);
    if (result.rollback.changedSince) log(`not rolled back: ${result.rollback.changedSince}; their version was left as it is`);
  }
  throw new DeployVerificationError(result);
}
