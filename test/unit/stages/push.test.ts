import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PushStageRecord } from '../../../src/stages/push/index.js';
import { renderPush } from '../../../src/stages/push/render.js';
import { expectGolden } from '../../helpers/golden.js';

const CWD = '/work/repo';
const WASM_SHA = 'c0ffee'.repeat(10) + 'c0ff';
const DIGEST = `sha256:${'d'.repeat(64)}`;
const SBOM_DIGEST = `sha256:${'5'.repeat(64)}`;
const SIG_DIGEST = `sha256:${'e'.repeat(64)}`;
const REPO = 'registry.example.com/mesh/header-auth';
const SBOM = { packages: 4, compilerVersion: '0.28.9', sdks: ['@gcoredev/proxy-wasm-sdk-as'], path: path.join(CWD, '.asm-wasm/plugin.cdx.json') };

function pushed(over: Partial<PushStageRecord> = {}): PushStageRecord {
  return {
    push: { imageRef: `${REPO}@${DIGEST}`, digest: DIGEST, url: `oci://${REPO}@${DIGEST}`, tags: ['v1.2.0', '3f2a9c1'], uploaded: 2, skipped: 1 },
    wasmSha256: WASM_SHA,
    format: 'compat',
    ...over,
  };
}

describe('the push stage\'s summary', () => {
  it('shows the image, its digest and tags, the SBOM attached and the signature (golden)', () => {
    const record = pushed({
      push: { ...pushed().push, attached: { digest: SBOM_DIGEST, via: 'api', uploaded: 2 } },
      sbom: SBOM,
      signed: { tag: `sha256-${'d'.repeat(64)}.sig`, ref: `${REPO}:sha256-${'d'.repeat(64)}.sig`, signatureDigest: SIG_DIGEST, reference: REPO, signatures: 1, reused: false, mode: 'key' },
    });
    const view = renderPush(record, { cwd: CWD });
    expectGolden('push-summary-signed-sbom.md', view.summary);
    expect(view.summary).toContain(`cosign verify --key cosign.pub --insecure-ignore-tlog ${REPO}@${DIGEST}`);
    expect(view.outputs).toEqual([
      ['digest', DIGEST],
      ['image-ref', `${REPO}@${DIGEST}`],
      ['url', `oci://${REPO}@${DIGEST}`],
      ['tags', 'v1.2.0,3f2a9c1'],
      ['signature-tag', `sha256-${'d'.repeat(64)}.sig`],
      ['signature-digest', SIG_DIGEST],
      ['sbom-path', SBOM.path],
      ['sbom-digest', SBOM_DIGEST],
    ]);
  });

  it('shows an image pushed without SBOM or signature, its SBOM listed by a fallback tag when asked (golden)', () => {
    const view = renderPush(pushed({ push: { ...pushed().push, tags: [] } }), { cwd: CWD });
    expectGolden('push-summary-plain.md', view.summary);
    expect(view.summary).toContain('<td>(none)</td>');
    expect(view.summary).not.toContain('SBOM');
    expect(view.summary).not.toContain('Signed');
    expect(view.outputs.map(([name]) => name)).toEqual(['digest', 'image-ref', 'url', 'tags']);

    const viaTag = renderPush(
      pushed({ push: { ...pushed().push, attached: { digest: SBOM_DIGEST, via: 'tag', tag: `sha256-${'d'.repeat(64)}`, uploaded: 2 } }, sbom: SBOM }),
      { cwd: CWD },
    );
    expect(viaTag.summary).toContain(`listed in <code>${REPO}:sha256-${'d'.repeat(64)}</code> (the registry has no referrers API)`);
  });

  it('says an OCI layout was written, not pushed, and where its SBOM file is (golden)', () => {
    const layout = path.join(CWD, '.asm-wasm/oci-layout');
    const record = pushed({
      push: { imageRef: `${layout}@${DIGEST}`, digest: DIGEST, url: `oci-layout://${layout}@${DIGEST}`, tags: [], uploaded: 3, skipped: 0, ociLayout: layout },
      format: 'wasm-artifact',
      sbom: SBOM,
    });
    const view = renderPush(record, { cwd: CWD });
    expectGolden('push-summary-oci-layout.md', view.summary);
    expect(view.summary).toContain('<h3>Image (OCI layout, not pushed)</h3>');
    expect(view.summary).toContain('written to <code>.asm-wasm/plugin.cdx.json</code>');
    expect(view.outputs).toContainEqual(['oci-layout', layout]);
    expect(view.outputs).toContainEqual(['sbom-path', SBOM.path]);
    expect(view.outputs.map(([name]) => name)).not.toContain('sbom-digest');
  });
});
