// The pipeline's stages, as the action and the CLI run them. Each takes the
// typed inputs and what earlier stages produced, logs inside a group, sets
// its outputs and adds its part of the job summary.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { KeyObject } from 'node:crypto';
import * as core from '@actions/core';
import { buildPlugin, CompileError, readBuildRecord, type BuildResult } from './build/index.js';
import { countDiagnostics, formatDiagnostic } from './build/diagnostics.js';
import { validateModule } from './build/validate.js';
import { readModuleFile, sha256File } from './build/module-file.js';
import { installEnvoy } from './envoy/install.js';
import { UserError } from './errors.js';
import { group, setOutput } from './github.js';
import type { Inputs } from './inputs.js';
import { filterSettings, overridesFromInputs, readPluginFile, resolvePlugin, type FilterSettings, type PluginFile, type PluginOverrides, type ResolvedPlugin } from './plugin/index.js';
import { escapeHtml, writeSection } from './summary.js';
import { loadCases, loadTestFile } from './localtest/cases.js';
import { runLocalTest, type LocalTestReport } from './localtest/index.js';
import { installToolchain, installedToolchain, type ToolchainResult } from './toolchain/index.js';
import { DEFAULT_LAYOUT_DIR, push, type PushResult } from './oci/index.js';
import { pluginSbom, SBOM_FILE_NAME, SBOM_MEDIA_TYPE, SBOM_SPEC_VERSION, type PluginSbom } from './sbom/index.js';
// The deploy stage's modules (and the Kubernetes client under them, most of
// the bundle) are loaded by that stage alone: every other stage starts faster.
import type { DeployResult, PullSecretOptions } from './k8s/deploy.js';
import { summaryEnabled } from './summary.js';
import { imageOfUrl, KeyError, openRepository, parsePrivateKey, parsePublicKey, SignatureVerificationError, signImage, verifyImage, type SignRecord } from './sign/index.js';
import { run } from './exec.js';

export const STAGE_NAMES = ['toolchain', 'build', 'test', 'push', 'deploy'] as const;

/** What the stages produce, passed along in-process or through step outputs. */
export interface Results {
  toolchain?: ToolchainResult;
  build?: Pick<BuildResult, 'wasmPath' | 'sha256' | 'size'> & Partial<BuildResult>;
  test?: LocalTestReport;
  push?: Pick<PushResult, 'url' | 'digest'> & Partial<PushResult>;
  deploy?: DeployResult;
}

export async function toolchainStage(inputs: Inputs, results: Results): Promise<void> {
  const r = await group('Install the AssemblyScript toolchain', () =>
    installToolchain({ pluginDir: inputs.pluginDir, assemblyscriptVersion: inputs.assemblyscriptVersion }),
  );
  results.toolchain = r;
  setOutput('assemblyscript-version', r.assemblyscriptVersion);
  setOutput('cache-hit', r.cacheHit);
}

/** The compiler and dependencies to build with: the toolchain stage's, else what the plugin's node_modules and lockfile say. */
function toolchainFor(inputs: Inputs, results: Results): { nodeModules: string; compilerVersion: string; direct: Record<string, string> } {
  const t = results.toolchain;
  if (t) return { nodeModules: t.nodeModules, compilerVersion: t.assemblyscriptVersion, direct: t.direct };
  return installedToolchain(inputs.pluginDir);
}

export async function buildStage(inputs: Inputs, results: Results, spec: PluginSpec): Promise<void> {
  const tool = toolchainFor(inputs, results);
  let r: BuildResult;
  try {
    r = await group('Build plugin.wasm', () =>
      buildPlugin({
        pluginDir: inputs.pluginDir,
        entry: inputs.entry,
        target: inputs.ascTarget,
        pluginName: spec.model.wasm.pluginName!,
        ...tool,
      }),
    );
  } catch (err) {
    if (err instanceof CompileError) await writeBuildFailure(err, inputs.pluginDir);
    throw err;
  }
  results.build = r;
  setOutput('wasm-path', r.wasmPath);
  setOutput('wasm-sha256', r.sha256);
  setOutput('wasm-size', r.size);
  await writeSection({
    title: 'Build',
    lines: [
      `AssemblyScript ${escapeHtml(r.compilerVersion)}: <code>${escapeHtml(r.command)}</code>, output from ${escapeHtml(r.outputFrom)}` +
        (r.diagnostics.length ? `; compiler: ${countDiagnostics(r.diagnostics)}` : ''),
    ],
    rows: [
      ['plugin.wasm', 'size', 'sha256', 'ABI', 'root id'],
      [escapeHtml(path.relative(process.cwd(), r.wasmPath)), `${r.size} bytes`, `<code>${r.sha256}</code>`, r.module.abi, escapeHtml(r.rootId)],
    ],
    details: [
      ...(r.diagnostics.length ? [{ label: `Compiler diagnostics (${countDiagnostics(r.diagnostics)})`, text: r.diagnostics.map((d) => formatDiagnostic(d)).join('\n') }] : []),
      { label: 'Exports and imports', text: `exports: ${r.module.exports.join(', ')}\nimports: ${r.module.imports.join(', ')}` },
    ],
  });
}

async function writeBuildFailure(err: CompileError, pluginDir: string): Promise<void> {
  const rel = path.relative(process.cwd(), pluginDir);
  const shown = err.diagnostics.slice(0, 50);
  await writeSection({
    title: `Build failed: ${countDiagnostics(err.diagnostics)}`,
    lines: [escapeHtml(err.message)],
    rows: shown.length
      ? [
          ['', 'where', 'code', 'message'],
          ...shown.map((d) => [
            d.level === 'error' ? '❌' : '⚠️',
            escapeHtml(d.file ? `${d.file.startsWith('~lib/') ? d.file : path.join(rel, d.file)}:${d.line}:${d.column}` : ''),
            escapeHtml(d.code),
            escapeHtml(d.message),
          ]),
        ]
      : undefined,
    details: err.details ? [{ label: 'Compiler output', text: err.details }] : [],
  });
}

/** The wasm the test (and later push) stage uses: input, build result, or the build output of an earlier step. */
async function wasmFor(inputs: Inputs, results: Results): Promise<string> {
  // A build in this process, an earlier step's output, or the record a separate `asm-wasm build` left.
  const wasm = inputs.wasmPath ?? results.build?.wasmPath ?? (await readBuildRecord(inputs.pluginDir))?.wasmPath;
  if (!wasm) throw new UserError('no plugin.wasm: run the build stage first (input build: true, or `asm-wasm build`) or set `wasm-path`');
  if (inputs.wasmPath) {
    const v = await validateModule(readModuleFile(wasm, 'input `wasm-path`'));
    if (!v.ok) throw new UserError(`${wasm} is not a proxy-wasm plugin Envoy can load:\n- ${v.problems.join('\n- ')}`);
  }
  return wasm;
}

export async function testStage(inputs: Inputs, results: Results, spec: PluginSpec): Promise<void> {
  const wasm = await wasmFor(inputs, results);
  const file = loadTestFile(inputs.tests);
  const cases = file.cases;
  const filter = filterSettings(spec.model.object);
  const report = await group(`Test in Envoy ${inputs.envoyVersion} (${cases.length} cases)`, async () => {
    const envoy = await installEnvoy({ version: inputs.envoyVersion, envoyPath: inputs.envoyPath, downloadUrl: inputs.envoyDownloadUrl });
    core.info(`Envoy ${envoy.version} from ${envoy.source}: ${envoy.path}`);
    for (const note of spec.model.notes) core.info(`note: ${note}`);
    return runLocalTest({
      envoyBinary: envoy.path,
      envoyVersion: envoy.version,
      filter: {
        // The filter istiod would make of the resolved WasmPlugin: the object deploy applies.
        ...filter,
        wasmPath: wasm,
      },
      cases,
      upstreams: file.upstreams,
      timeoutSeconds: inputs.testTimeoutSeconds,
    });
  });
  results.test = report;
  setOutput('test-passed', report.passed);
  setOutput('test-failed', report.failed);
  await writeTestSummary(report, filter);
  if (report.failed > 0) {
    const failing = report.cases.filter((c) => !c.passed);
    const notRun = cases.length - report.cases.length;
    throw new UserError(
      `${report.failed} of ${cases.length} local Envoy test case(s) failed:\n${failing
        .map((c) => `- ${c.name} (${path.basename(inputs.tests)}:${c.line})\n    ${c.failures.join('\n    ')}`)
        .join('\n')}${notRun > 0 ? `\n- ${notRun} case(s) not run` : ''}${report.afterCases.length ? `\n- outside the cases: ${report.afterCases.join('; ')}` : ''}`,
      `Envoy log (last lines):\n${report.envoyLog.trimEnd().split('\n').slice(-30).join('\n')}`,
    );
  }
  if (report.afterCases.length > 0) {
    throw new UserError(
      `the plugin failed outside the test cases:\n- ${report.afterCases.join('\n- ')}`,
      `Envoy log (last lines):\n${report.envoyLog.trimEnd().split('\n').slice(-30).join('\n')}`,
    );
  }
}

async function writeTestSummary(report: LocalTestReport, filter: FilterSettings): Promise<void> {
  const req = (c: LocalTestReport['cases'][number]) =>
    escapeHtml(`${c.request.method} ${c.request.path}${Object.keys(c.request.headers).length ? ` ${Object.entries(c.request.headers).map(([k, v]) => `${k}: ${v}`).join(', ')}` : ''}`);
  const exp = (c: LocalTestReport['cases'][number]) =>
    escapeHtml([c.expect.status && `${c.expect.status}`, c.expect.upstream !== undefined && (c.expect.upstream ? 'reaches upstream' : 'stopped by plugin')].filter(Boolean).join(', '));
  await writeSection({
    title: `Local Envoy test: ${report.passed} passed, ${report.failed} failed${report.afterCases.length ? `, ${report.afterCases.length} problem(s) outside the cases` : ''}`,
    lines: [
      ...report.afterCases.map((p) => `❌ Outside the cases: ${escapeHtml(p)}`),
      `Envoy ${escapeHtml(report.envoyVersion)}, filter <code>${escapeHtml(`${filter.namespace}.${filter.name}`)}</code>, root_id <code>${escapeHtml(filter.rootId)}</code>, failStrategy ${filter.failStrategy}` +
        (filter.failStrategy === 'FAIL_CLOSE' ? ' (if the gateway cannot fetch or load the plugin, it denies every request)' : ''),
    ],
    rows: [
      ['', 'Case', 'Request', 'Expected', 'Actual'],
      ...report.cases.map((c) => [
        c.passed ? '✅' : '❌',
        escapeHtml(c.name),
        req(c),
        exp(c),
        c.passed ? (c.actual ? String(c.actual.status) : '') : escapeHtml(c.failures.join('; ')),
      ]),
    ],
    details: report.failed > 0 || report.afterCases.length > 0 ? [{ label: 'Envoy log', text: report.envoyLog.trimEnd().split('\n').slice(-60).join('\n') }] : [],
  });
}

/**
 * The plugin model of this run: wasmplugin.yaml read strictly, the inputs
 * that name its fields, and the two resolved without an image yet (what the
 * build and test stages use). Read once, before the first stage that needs
 * it, so a misspelt field fails before anything is built or sent.
 */
export interface PluginSpec {
  file: PluginFile;
  overrides: PluginOverrides;
  /** The file + inputs, validated: the test stage configures Envoy from it. */
  model: ResolvedPlugin;
}

export function pluginSpec(inputs: Inputs): PluginSpec {
  const file = readPluginFile(inputs.pluginDir);
  const overrides = overridesFromInputs(inputs);
  return { file, overrides, model: resolvePlugin(file, overrides, { pluginDir: inputs.pluginDir }) };
}

/** Where the image came from: the repository, the commit and the commit's time. */
async function provenance(dir: string): Promise<{ source?: string; revision?: string; created?: string }> {
  const git = async (args: string[]) => {
    try {
      const r = await run('git', args, { cwd: dir, echo: false, allowFailure: true });
      return r.exitCode === 0 ? r.stdout.trim() : undefined;
    } catch {
      return undefined;
    }
  };
  const env = process.env;
  const source = env.GITHUB_REPOSITORY ? `${env.GITHUB_SERVER_URL ?? 'https://github.com'}/${env.GITHUB_REPOSITORY}` : undefined;
  const revision = env.GITHUB_SHA || (await git(['rev-parse', 'HEAD']));
  // The commit time, not now: the same commit always gives the same image.
  const created = revision ? await git(['show', '-s', '--format=%cI', revision]) : undefined;
  return { source, revision, created };
}

/** The compiler that built `sha`: this run's build or toolchain, the build record of an earlier step, else the input (the lockfile's when unset). */
async function compilerOf(inputs: Inputs, results: Results, sha: string): Promise<string | undefined> {
  if (results.build?.compilerVersion) return results.build.compilerVersion;
  if (results.toolchain) return results.toolchain.assemblyscriptVersion;
  try {
    const record = await readBuildRecord(inputs.pluginDir);
    if (record?.sha256 === sha) return record.compilerVersion;
  } catch {
    // the record is of another module: it says nothing about this one
  }
  return inputs.assemblyscriptVersion;
}

/** The SBOM of the module being pushed; an unreadable plugin directory names the input that skips it. */
async function sbomOf(inputs: Inputs, results: Results, wasm: string, sha: string, from: { source?: string; revision?: string; created?: string }): Promise<PluginSbom> {
  try {
    return pluginSbom({
      pluginDir: inputs.pluginDir,
      wasmSha256: sha,
      wasmSize: results.build?.size || (await fs.promises.stat(wasm)).size,
      compilerVersion: await compilerOf(inputs, results, sha),
      sdks: results.toolchain?.sdks.map((s) => s.sdk),
      ...from,
    });
  } catch (err) {
    if (err instanceof UserError) throw new UserError(`the SBOM of plugin.wasm needs the plugin's package.json and lockfile: ${err.message}; or set \`sbom: false\` to push without one`);
    throw err;
  }
}

export async function pushStage(inputs: Inputs, results: Results): Promise<void> {
  const wasm = await wasmFor(inputs, results);
  const sha = results.build?.sha256 || (await sha256File(wasm));
  // The signing key is read (and its password checked) before anything is pushed.
  const signKey = await signingKey(inputs);
  let sbom: PluginSbom | undefined;
  const r = await group(inputs.image ? `Push to ${inputs.image.registry}/${inputs.image.repository}` : 'Write the OCI image layout', async () => {
    const from = await provenance(inputs.pluginDir);
    const tags = inputs.tags.length > 0 ? inputs.tags : from.revision ? [from.revision.slice(0, 7)] : [];
    if (inputs.sbom) {
      sbom = await sbomOf(inputs, results, wasm, sha, from);
      core.info(`SBOM (CycloneDX ${SBOM_SPEC_VERSION}): ${sbom.packages} packages, AssemblyScript ${sbom.compilerVersion}, SDK ${sbom.sdks.join(', ') || 'none from npm'}`);
    }
    return push({
      attach: sbom && inputs.image ? { artifactType: SBOM_MEDIA_TYPE, mediaType: SBOM_MEDIA_TYPE, data: sbom.bytes, fileName: SBOM_FILE_NAME } : undefined,
      wasmPath: wasm,
      wasmSha256: sha,
      registry: inputs.image?.registry,
      repository: inputs.image?.repository,
      tags,
      format: inputs.imageFormat,
      username: inputs.registryUsername,
      password: inputs.registryPassword,
      dockerConfigPath: inputs.dockerConfig,
      caFile: inputs.registryCa,
      insecure: inputs.registryInsecure,
      force: inputs.force,
      ...from,
    });
  });
  results.push = r;
  setOutput('digest', r.digest);
  setOutput('image-ref', r.imageRef);
  setOutput('url', r.url);
  setOutput('tags', r.tags.join(','));
  if (r.ociLayout) setOutput('oci-layout', r.ociLayout);
  const signed = signKey && inputs.image ? await group(`Sign ${r.imageRef}`, () => signPushed(inputs, r.digest, signKey)) : undefined;
  let sbomPath: string | undefined;
  if (sbom) {
    // Beside the OCI layout (.asm-wasm/), pushed or not: a file to keep as a build artifact.
    sbomPath = path.join(r.ociLayout ? path.dirname(r.ociLayout) : path.dirname(path.resolve(DEFAULT_LAYOUT_DIR)), SBOM_FILE_NAME);
    await fs.promises.mkdir(path.dirname(sbomPath), { recursive: true });
    await fs.promises.writeFile(sbomPath, sbom.bytes);
    setOutput('sbom-path', sbomPath);
    if (r.attached) setOutput('sbom-digest', r.attached.digest);
  }
  await writeSection({
    title: r.ociLayout ? 'Image (OCI layout, not pushed)' : 'Pushed image',
    rows: [
      ['image', 'manifest digest', 'tags', 'format', 'blobs uploaded / already there'],
      [escapeHtml(r.imageRef.split('@')[0]), `<code>${r.digest}</code>`, escapeHtml(r.tags.join(', ') || '(none)'), inputs.imageFormat, `${r.uploaded} / ${r.skipped}`],
    ],
    lines: [
      `WasmPlugin url: <code>${escapeHtml(r.url)}</code>. For an <code>oci://</code> url, <code>sha256</code> is this manifest digest; the plugin file's own sha256 is <code>${sha}</code>.`,
      ...(sbom ? [sbomSummaryLine(sbom, r, sbomPath!)] : []),
      ...(signed ? [signatureSummaryLine(signed)] : []),
    ],
  });
}

/** The summary's SBOM line: what it lists, where it is, how to fetch it. */
export function sbomSummaryLine(sbom: Pick<PluginSbom, 'packages' | 'compilerVersion' | 'sdks'>, r: Pick<PushResult, 'imageRef' | 'attached' | 'ociLayout'>, file: string): string {
  const what = `SBOM <code>${SBOM_FILE_NAME}</code> (CycloneDX ${SBOM_SPEC_VERSION}): ${sbom.packages} packages, AssemblyScript ${escapeHtml(sbom.compilerVersion)}, SDK ${escapeHtml(sbom.sdks.join(', ') || 'none from npm')}`;
  if (!r.attached) return `${what}; written to <code>${escapeHtml(path.relative(process.cwd(), file) || file)}</code>.`;
  const repo = r.imageRef.split('@')[0];
  const where =
    r.attached.via === 'api'
      ? 'listed by the registry\'s referrers API'
      : `listed in <code>${escapeHtml(`${repo}:${r.attached.tag}`)}</code> (the registry has no referrers API)`;
  return `${what}; attached to the image as <code>${escapeHtml(`${repo}@${r.attached.digest}`)}</code>, ${where}. Fetch it with <code>${escapeHtml(`oras discover ${r.imageRef}`)}</code>.`;
}

/** The key of `sign: true`, decrypted in memory; undefined when the stage does not sign. */
async function signingKey(inputs: Inputs): Promise<KeyObject | undefined> {
  if (inputs.sign === 'none') return undefined;
  if (inputs.sign === 'keyless') {
    throw new UserError(
      'input `sign: keyless` is not supported yet (it needs GitHub\'s OIDC token, Fulcio and Rekor); sign with a key instead: sign: true and sign-key (cosign generate-key-pair)',
    );
  }
  if (!inputs.image) throw new UserError('input `sign` needs `image`: only an image pushed to a registry can be signed, not an OCI layout');
  try {
    return await parsePrivateKey(inputs.signKey!, inputs.signKeyPassword);
  } catch (err) {
    if (err instanceof KeyError) throw new UserError(`input \`sign-key\`: ${err.message}`);
    throw err;
  }
}

async function signPushed(inputs: Inputs, digest: string, key: KeyObject): Promise<SignRecord> {
  const client = await openRepository({ ...registryLogin(inputs, inputs.image!.registry), registry: inputs.image!.registry, repository: inputs.image!.repository });
  try {
    const s = await signImage({ client, digest, key, log: (line) => core.info(line) });
    setOutput('signature-tag', s.tag);
    setOutput('signature-digest', s.signatureDigest);
    return s;
  } finally {
    client.close();
  }
}

/** The registry credentials of the inputs, for `registry`; username and password only when it is the `image` input's registry. */
function registryLogin(inputs: Inputs, registry: string): { username?: string; password?: string; dockerConfigPath?: string; caFile?: string; insecure?: boolean } {
  const own = !inputs.image || inputs.image.registry === registry;
  return {
    username: own ? inputs.registryUsername : undefined,
    password: own ? inputs.registryPassword : undefined,
    dockerConfigPath: inputs.dockerConfig,
    caFile: inputs.registryCa,
    insecure: inputs.registryInsecure,
  };
}

export function signatureSummaryLine(s: Pick<SignRecord, 'ref' | 'signatureDigest' | 'signatures' | 'reused'>): string {
  return (
    `Signed (cosign, key): <code>${escapeHtml(s.ref)}</code> = <code>${s.signatureDigest}</code>, ${s.signatures} signature(s)` +
    `${s.reused ? ', this key\'s signature was already there' : ''}. Verify with <code>cosign verify --key cosign.pub --insecure-ignore-tlog ${escapeHtml(s.ref.replace(/:sha256-([0-9a-f]+)\.sig$/, '@sha256:$1'))}</code>.`
  );
}

/**
 * verify-key: the image the WasmPlugin will fetch must carry a cosign
 * signature that verifies with the key, for exactly that digest; otherwise
 * the stage stops here and nothing reaches the cluster.
 */
async function verifyBeforeApply(inputs: Inputs, plugin: ResolvedPlugin): Promise<void> {
  const url = plugin.wasm.url ?? '';
  const image = imageOfUrl(url);
  if (!image) throw new UserError(`input \`verify-key\` needs an oci:// image to verify, but the url to apply is ${url || 'empty'}; nothing was sent to the cluster`);
  const digest = image.digest ?? (plugin.wasm.sha256 ? `sha256:${plugin.wasm.sha256.replace(/^sha256:/, '')}` : undefined);
  if (!digest) throw new UserError(`input \`verify-key\` needs the image pinned by digest (a url with @sha256:…, or sha256), but ${url} names a tag that could move after the check; nothing was sent to the cluster`);
  let key: KeyObject;
  try {
    key = parsePublicKey(inputs.verifyKey!);
  } catch (err) {
    if (err instanceof KeyError) throw new UserError(`input \`verify-key\`: ${err.message}`);
    throw err;
  }
  const v = await group(`Verify the signature of ${image.registry}/${image.repository}@${digest}`, async () => {
    const client = await openRepository({ ...registryLogin(inputs, image.registry), registry: image.registry, repository: image.repository });
    try {
      return await verifyImage({ client, digest, key, log: (line) => core.info(line) });
    } catch (err) {
      if (err instanceof SignatureVerificationError) throw new UserError(`${err.message}; nothing was sent to the cluster`);
      throw err;
    } finally {
      client.close();
    }
  });
  await writeSection({ title: 'Signature verified', lines: [`<code>${escapeHtml(`${image.registry}/${image.repository}@${digest}`)}</code> is signed by <code>verify-key</code> (<code>${escapeHtml(v.ref)}</code>, ${v.checked} signature(s) checked).`] });
}

/**
 * The WasmPlugin to deploy: the same file and inputs as the model the test
 * stage ran, with the pushed image's url and digest (or the \`url\` input).
 */
export function deployPlugin(inputs: Inputs, results: Results, spec: PluginSpec): ResolvedPlugin {
  if (inputs.deployMode === 'delete') return spec.model;
  const pushed = results.push?.url;
  if (!inputs.url && pushed?.startsWith('oci-layout://')) {
    throw new UserError('the push stage wrote an OCI layout, which no gateway can fetch: set `image` to push to a registry, or set `url`');
  }
  if (!inputs.url && !pushed && !spec.file.manifest.spec?.url) {
    throw new UserError('no url to deploy: run the push stage with `image` set (its pinned oci:// url is used), or set `url`');
  }
  return resolvePlugin(spec.file, spec.overrides, {
    pluginDir: inputs.pluginDir,
    pushed: pushed ? { url: pushed, digest: results.push?.digest } : undefined,
    requireUrl: true,
  });
}

export async function deployStage(inputs: Inputs, results: Results, spec: PluginSpec): Promise<void> {
  if (!inputs.kubeconfig) {
    throw new UserError('input `kubeconfig` is empty: pass the kubeconfig secret of the API server that holds WasmPlugins (for ASM, the mesh instance\'s), e.g. kubeconfig: ${{ secrets.ASM_KUBECONFIG }}');
  }
  const plugin = deployPlugin(inputs, results, spec);
  // Before anything is sent to the cluster: the image must carry a signature by verify-key.
  if (inputs.verifyKey && inputs.deployMode !== 'delete') await verifyBeforeApply(inputs, plugin);
  const { namespace, name } = plugin.object.metadata;
  let pullSecret: PullSecretOptions | undefined;
  if (inputs.createPullSecret) {
    const secretName = plugin.wasm.imagePullSecret;
    if (!secretName) throw new UserError('input `create-pull-secret` needs `image-pull-secret`: the name of the Secret to create');
    if (!inputs.image || !inputs.registryUsername || !inputs.registryPassword) {
      throw new UserError('input `create-pull-secret` needs `image`, `registry-username` and `registry-password` to write the pull secret');
    }
    pullSecret = { name: secretName, registry: inputs.image.registry, username: inputs.registryUsername, password: inputs.registryPassword };
  }
  const cases = inputs.verifyUrl ? loadCases(inputs.tests) : undefined;
  const title = `${inputs.deployMode === 'dry-run' ? 'Dry-run' : inputs.deployMode === 'delete' ? 'Delete' : 'Apply'} ${plugin.object.kind} ${namespace}/${name}`;
  const { deploy, DeployVerificationError, formatDeploySummary } = await import('./k8s/index.js');
  const writeDeploySummary = async (r: DeployResult) => {
    if (summaryEnabled()) await core.summary.addRaw(formatDeploySummary(r), true).write();
  };
  let result: DeployResult;
  try {
    result = await group(title, () =>
      deploy({
        kubeconfig: inputs.kubeconfig!,
        context: inputs.context,
        mode: inputs.deployMode,
        plugin,
        force: inputs.forceConflicts,
        pullSecret,
        verify:
          inputs.verifyUrl && cases
            ? {
                url: inputs.verifyUrl,
                cases,
                timeoutMs: inputs.verifyTimeoutSeconds * 1000,
                istio:
                  inputs.gatewayAdminUrl || inputs.gatewayStatusUrl
                    ? { adminUrl: inputs.gatewayAdminUrl, statusUrl: inputs.gatewayStatusUrl, istiodUrl: inputs.istiodUrl }
                    : undefined,
              }
            : undefined,
        gateway: inputs.clusterKubeconfig ? { kubeconfig: inputs.clusterKubeconfig } : undefined,
      }),
    );
  } catch (err) {
    // A failed verification still has a report and a rollback to show.
    if (err instanceof DeployVerificationError) await writeDeploySummary(err.result);
    throw err;
  }
  results.deploy = result;
  setOutput('wasmplugin', result.wasmplugin);
  setOutput('result', result.result);
  if (result.generation !== undefined) setOutput('generation', result.generation);
  await writeDeploySummary(result);
}
