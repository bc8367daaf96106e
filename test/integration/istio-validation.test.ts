// Our offline validation of wasmplugin.yaml, differential-tested against
// Istio's own: every resource in test/fixtures/wasmplugin-corpus/ (one
// WasmPlugin or TrafficExtension per file) is sent, as a server-side dry-run
// create, to the tests' kube-apiserver carrying Istio's CRDs (structural
// schema and CEL rules) with istiod's validation webhook registered (istiod
// out of cluster, serving /validate over HTTPS with its own certificate, as
// an install registers it), and read by the plugin model (read + resolve,
// as the stages do). The rules:
// - what Istio refuses, we refuse, with a message that names the file, the
//   line and the field;
// - what Istio accepts, we accept, unless the case says we refuse it on
//   purpose and why (`# ours: refuses on purpose: …`);
// - what we accept and resolve, Istio accepts too (the resolved object is
//   sent the same way);
// - each file says what Istio does with it (`# istio: accepts|refuses`), so a
//   new Istio that judges differently fails here, not on a user's deploy.
// The dry run carries fieldValidation=Strict, as kubectl sends it: without
// it the API server drops unknown fields without a word.
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { KIND_RESOURCE, parsePluginManifest, resolvePlugin, type ResourceKind } from '../../src/plugin/index.js';
import { istioStartTimeout, startIstio, type Istio } from '../infra/istio.js';
import { kubeStartTimeout, startKube, type Kube } from '../infra/kube.js';

const CORPUS = path.join(import.meta.dirname, '../fixtures/wasmplugin-corpus');

interface Case {
  name: string;
  file: string;
  text: string;
  object: any;
  /** What the file says Istio does with it. */
  istio: 'accepts' | 'refuses';
  /** Why we refuse what Istio accepts, when we do. */
  purpose?: string;
}

function loadCorpus(): Case[] {
  return fs
    .readdirSync(CORPUS)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      const file = path.join(CORPUS, f);
      const text = fs.readFileSync(file, 'utf8');
      const istio = /^# istio: (accepts|refuses)$/m.exec(text)?.[1];
      if (!istio) throw new Error(`${file}: says neither "# istio: accepts" nor "# istio: refuses"`);
      const purpose = /^# ours: refuses on purpose: (.+)$/m.exec(text)?.[1];
      return { name: f.replace(/\.yaml$/, ''), file, text, object: YAML.parse(text), istio: istio as Case['istio'], purpose };
    });
}

const cases = loadCorpus();
let kube: Kube;
let istio: Istio;
const rows: string[] = [];
const timings: Record<string, number> = {};

beforeAll(async () => {
  const started = Date.now();
  kube = await startKube({ crd: false });
  istio = await startIstio(kube, { gateway: false, validationWebhook: true });
  timings.startMs = Date.now() - started;
}, kubeStartTimeout() + istioStartTimeout());

afterAll(async () => {
  console.log(`corpus of ${cases.length} (istio ${istio?.version}, start ${timings.startMs} ms):\n${rows.join('\n')}`);
  await istio?.stop();
  await kube?.stop();
});

/** Istio's verdict on an object: the API server's dry-run create, through the CRD's schema, its CEL rules and istiod's webhook. */
async function istioJudges(object: any): Promise<{ accepted: boolean; by: string; message: string }> {
  const kind = object?.kind as ResourceKind;
  const namespace = object?.metadata?.namespace ?? 'istio-system';
  const res = await kube.request(
    'admin',
    'POST',
    `/apis/extensions.istio.io/v1alpha1/namespaces/${namespace}/${KIND_RESOURCE[kind]}?dryRun=All&fieldValidation=Strict`,
    object,
  );
  if (res.status === 201 || res.status === 200) return { accepted: true, by: '', message: '' };
  const message = String(res.body?.message ?? JSON.stringify(res.body));
  if (res.status >= 500) throw new Error(`the API server failed (HTTP ${res.status}): ${message}`);
  const by = /admission webhook "[^"]*" denied/.test(message) ? 'istiod' : /strict decoding error|unknown field/.test(message) ? 'schema (strict)' : 'CRD schema/CEL';
  return { accepted: false, by, message };
}

/** Ours: wasmplugin.yaml read strictly and resolved as the deploy stage does (a url required). */
function weJudge(c: Case) {
  try {
    const resolved = resolvePlugin(parsePluginManifest(c.text, c.file), {}, { pluginDir: CORPUS, requireUrl: true });
    return { accepted: true as const, resolved, message: '' };
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    return { accepted: false as const, resolved: undefined, message: err.message };
  }
}

describe(`our validation against Istio's on ${cases.length} resources`, () => {
  it('covers both kinds, good and bad, and the refusals on purpose say why', () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
    for (const kind of ['WasmPlugin', 'TrafficExtension']) {
      expect(cases.filter((c) => c.object.kind === kind && c.istio === 'accepts').length, kind).toBeGreaterThan(0);
      expect(cases.filter((c) => c.object.kind === kind && c.istio === 'refuses').length, kind).toBeGreaterThan(0);
    }
    for (const c of cases.filter((x) => x.purpose)) expect(c.istio, `${c.name} refuses on purpose what Istio refuses anyway`).toBe('accepts');
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const theirs = await istioJudges(c.object);
    const ours = weJudge(c);
    rows.push(
      `  ${c.name.padEnd(40)} istio ${theirs.accepted ? 'accepts' : `refuses (${theirs.by})`}; ours ${ours.accepted ? 'accepts' : `refuses: ${ours.message.split('\n')[0].slice(0, 160)}`}`,
    );
    expect(theirs.accepted ? 'accepts' : `refuses: ${theirs.message}`, `${c.file} says Istio ${c.istio} it`).toMatch(new RegExp(`^${c.istio}`));

    if (!theirs.accepted || c.purpose) {
      expect(ours.accepted, `Istio refuses ${c.name} (${theirs.message}), and we accept it`).toBe(false);
      // Clearer than Istio's: the file, the line and the field.
      expect(ours.message).toContain(c.file);
      expect(ours.message).toMatch(/\b(spec|metadata|kind)(\.[A-Za-z]|:|\[| )/);
      return;
    }
    expect(ours.accepted, `Istio accepts ${c.name}, and we refuse it: ${ours.message}`).toBe(true);
    // What we would apply (the resolved object), Istio takes as well.
    const applied = await istioJudges(ours.resolved!.object);
    expect(applied.accepted, `Istio refuses our resolved ${c.name}: ${applied.message}`).toBe(true);
  });
});
