// The push stage: plugin.wasm as an OCI image, pushed to a registry (or
// written as an OCI layout without one), read back as Istio would, with its
// SBOM attached and signed when the inputs ask.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readBuildRecord } from '../../build/index.js';
import { sha256File } from '../../build/module-file.js';
import { UserError } from '../../errors.js';
import { run } from '../../exec.js';
import type { Inputs } from '../../inputs.js';
import { DEFAULT_LAYOUT_DIR, push, type PushResult } from '../../oci/index.js';
import { pluginSbom, SBOM_FILE_NAME, SBOM_MEDIA_TYPE, SBOM_SPEC_VERSION, type PluginSbom } from '../../sbom/index.js';
import type { SignRecord } from '../../sign/index.js';
import { wasmFor, type Results, type Stage, type StageContext } from '../stage.js';
import { renderPush } from './render.js';
import { signingKey, signPushed } from './sign.js';

export interface PushStageRecord {
  push: PushResult;
  /** The plugin file's own sha256 (hex); the image is named by its manifest digest. */
  wasmSha256: string;
  format: Inputs['imageFormat'];
  /** The SBOM, and the file it was written to. */
  sbom?: Pick<PluginSbom, 'packages' | 'compilerVersion' | 'sdks'> & { path: string };
  signed?: SignRecord;
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

export async function runPush(ctx: StageContext): Promise<PushStageRecord> {
  const { inputs, results } = ctx;
  const wasm = await wasmFor(inputs, results);
  const sha = results.build?.sha256 || (await sha256File(wasm));
  // The signing key is read (and its password checked) before anything is pushed.
  const signKey = await signingKey(inputs);
  let sbom: PluginSbom | undefined;
  const r = await ctx.group(inputs.image ? `Push to ${inputs.image.registry}/${inputs.image.repository}` : 'Write the OCI image layout', async () => {
    const from = await provenance(inputs.pluginDir);
    const tags = inputs.tags.length > 0 ? inputs.tags : from.revision ? [from.revision.slice(0, 7)] : [];
    if (inputs.sbom) {
      sbom = await sbomOf(inputs, results, wasm, sha, from);
      ctx.log(`SBOM (CycloneDX ${SBOM_SPEC_VERSION}): ${sbom.packages} packages, AssemblyScript ${sbom.compilerVersion}, SDK ${sbom.sdks.join(', ') || 'none from npm'}`);
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
  const signed = signKey && inputs.image ? await ctx.group(`Sign ${r.imageRef}`, () => signPushed(inputs, r.digest, signKey, ctx.log)) : undefined;
  let written: PushStageRecord['sbom'];
  if (sbom) {
    // Beside the OCI layout (.asm-wasm/), pushed or not: a file to keep as a build artifact.
    const file = path.join(r.ociLayout ? path.dirname(r.ociLayout) : path.dirname(path.resolve(DEFAULT_LAYOUT_DIR)), SBOM_FILE_NAME);
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    await fs.promises.writeFile(file, sbom.bytes);
    written = { packages: sbom.packages, compilerVersion: sbom.compilerVersion, sdks: sbom.sdks, path: file };
  }
  return { push: r, wasmSha256: sha, format: inputs.imageFormat, sbom: written, signed };
}

export const pushStage: Stage<PushStageRecord> = {
  run: runPush,
  render: renderPush,
  keep: (results, record) => {
    results.push = record.push;
  },
};
