// The deploy stage: put the WasmPlugin (or TrafficExtension) on the API
// server (dry run, apply or delete), verify that the gateway answers as the tests expect, and restore
// what was there before when it does not. The requests are in objects.ts,
// the rollback in rollback.ts; this file runs them in order.
import { log as runLog } from '../log.js';
import { maskSecret } from '../github.js';
import { UserError } from '../errors.js';
import { KubeClient } from './client.js';
import { diffObjects, sameContent } from './diff.js';
import { loadKubeconfig } from './kubeconfig.js';
import type { DeployMode } from './modes.js';
import { inspectGatewayPods, readFetchCounts, type FetchCounts, type PodCheck } from './pods.js';
import { formatVerifyReport, istioBaseline, verify, type VerifyOptions, type VerifyReport } from './verify.js';
import { applyPullSecret, restorePullSecret, checkResourceApi, FIELD_MANAGER, getLiveObject, pluginPath, purpose, serverSideApply, type DeployOutcome, type PullSecretOptions } from './objects.js';
import { rollback, type RollbackResult } from './rollback.js';
import { changedPluginConfigKeys, wasmOf, wasmPluginView, type ExtensionResource, type ResourceKind } from './wasmplugin.js';
import type { ResolvedPlugin } from '../plugin/resolve.js';

export { DEPLOY_MODES, type DeployMode } from './modes.js';
export { FIELD_MANAGER, type DeployOutcome, type PullSecretOptions } from './objects.js';
export { rollback, type RollbackResult } from './rollback.js';

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
  pullSecret?: { name: string; result: DeployOutcome; restored?: string };
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
  let secretChange: Awaited<ReturnType<typeof applyPullSecret>> | undefined;
  if (options.pullSecret) {
    secretChange = await applyPullSecret(client, namespace, options.pullSecret, { fieldManager, force, dryRun, setSecret });
    pullSecret = { name: options.pullSecret.name, result: secretChange.result };
    log(`image pull secret ${namespace}/${options.pullSecret.name}: ${secretChange.result}${dryRun ? ' (dry run)' : ''}`);
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
  // The pull secret goes back too: a gateway pod started later would pull with it.
  if (secretChange && pullSecret && secretChange.result !== 'unchanged') {
    try {
      pullSecret.restored = await restorePullSecret(client, namespace, pullSecret.name, secretChange, fieldManager);
    } catch (err) {
      pullSecret.restored = `not restored: ${(err as Error).message}`;
    }
    log(`image pull secret ${namespace}/${pullSecret.name}: ${pullSecret.restored}`);
  }
  throw new DeployVerificationError(result);
}
