// The push stage's outputs and summary section, from its record alone: the
// image, its digest and tags, and the SBOM and signature when there are.
import * as path from 'node:path';
import type { PushResult } from '../../oci/index.js';
import { SBOM_FILE_NAME, SBOM_SPEC_VERSION, type PluginSbom } from '../../sbom/index.js';
import type { SignRecord } from '../../sign/index.js';
import { escapeHtml, sectionHtml } from '../../summary.js';
import type { OutputValue, RenderContext, StageView } from '../stage.js';
import type { PushStageRecord } from './index.js';

export function renderPush(record: PushStageRecord, where: RenderContext): StageView {
  const { push: r, sbom, signed } = record;
  const outputs: Array<[string, OutputValue]> = [
    ['digest', r.digest],
    ['image-ref', r.imageRef],
    ['url', r.url],
    ['tags', r.tags.join(',')],
  ];
  if (r.ociLayout) outputs.push(['oci-layout', r.ociLayout]);
  if (signed) outputs.push(['signature-tag', signed.tag], ['signature-digest', signed.signatureDigest]);
  if (sbom) {
    outputs.push(['sbom-path', sbom.path]);
    if (r.attached) outputs.push(['sbom-digest', r.attached.digest]);
  }
  return {
    outputs,
    summary: sectionHtml({
      title: r.ociLayout ? 'Image (OCI layout, not pushed)' : 'Pushed image',
      rows: [
        ['image', 'manifest digest', 'tags', 'format', 'blobs uploaded / already there'],
        [escapeHtml(r.imageRef.split('@')[0]), `<code>${r.digest}</code>`, escapeHtml(r.tags.join(', ') || '(none)'), record.format, `${r.uploaded} / ${r.skipped}`],
      ],
      lines: [
        `WasmPlugin url: <code>${escapeHtml(r.url)}</code>. For an <code>oci://</code> url, <code>sha256</code> is this manifest digest; the plugin file's own sha256 is <code>${record.wasmSha256}</code>.`,
        ...(sbom ? [sbomSummaryLine(sbom, r, sbom.path, where)] : []),
        ...(signed ? [signatureSummaryLine(signed)] : []),
      ],
    }),
  };
}

/** The summary's SBOM line: what it lists, where it is, how to fetch it. */
export function sbomSummaryLine(
  sbom: Pick<PluginSbom, 'packages' | 'compilerVersion' | 'sdks'>,
  r: Pick<PushResult, 'imageRef' | 'attached' | 'ociLayout'>,
  file: string,
  where: RenderContext,
): string {
  const what = `SBOM <code>${SBOM_FILE_NAME}</code> (CycloneDX ${SBOM_SPEC_VERSION}): ${sbom.packages} packages, AssemblyScript ${escapeHtml(sbom.compilerVersion)}, SDK ${escapeHtml(sbom.sdks.join(', ') || 'none from npm')}`;
  if (!r.attached) return `${what}; written to <code>${escapeHtml(path.relative(where.cwd, file) || file)}</code>.`;
  const repo = r.imageRef.split('@')[0];
  const at =
    r.attached.via === 'api'
      ? 'listed by the registry\'s referrers API'
      : `listed in <code>${escapeHtml(`${repo}:${r.attached.tag}`)}</code> (the registry has no referrers API)`;
  return `${what}; attached to the image as <code>${escapeHtml(`${repo}@${r.attached.digest}`)}</code>, ${at}. Fetch it with <code>${escapeHtml(`oras discover ${r.imageRef}`)}</code>.`;
}

export function signatureSummaryLine(s: Pick<SignRecord, 'ref' | 'signatureDigest' | 'signatures' | 'reused'> & Partial<Pick<SignRecord, 'mode' | 'keyless'>>): string {
  const image = escapeHtml(s.ref.replace(/:sha256-([0-9a-f]+)\.sig$/, '@sha256:$1'));
  const signed = `<code>${escapeHtml(s.ref)}</code> = <code>${s.signatureDigest}</code>, ${s.signatures} signature(s)`;
  if (s.mode === 'keyless') {
    const k = s.keyless;
    const identity = k?.identity ? escapeHtml(k.identity) : '&lt;identity&gt;';
    const issuer = k?.issuer ? escapeHtml(k.issuer) : '&lt;issuer&gt;';
    return (
      `Signed (cosign, keyless): ${signed}; certificate for <code>${identity}</code> from <code>${issuer}</code>` +
      `${k ? `, Rekor entry ${k.logIndex}` : ''}. Verify with <code>cosign verify --certificate-identity ${identity} --certificate-oidc-issuer ${issuer} ${image}</code>.`
    );
  }
  return `Signed (cosign, key): ${signed}${s.reused ? ', this key\'s signature was already there' : ''}. Verify with <code>cosign verify --key cosign.pub --insecure-ignore-tlog ${image}</code>.`;
}
