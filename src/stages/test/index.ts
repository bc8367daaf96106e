// The test stage: the plugin's cases run through a real local Envoy,
// configured from the same resolved WasmPlugin the deploy stage applies.
import { installEnvoy } from '../../envoy/install.js';
import { loadTestFile } from '../../localtest/cases.js';
import { runLocalTest, type LocalTestReport } from '../../localtest/index.js';
import { filterSettings, type FilterSettings } from '../../plugin/index.js';
import { spec, wasmFor, type Stage, type StageContext } from '../stage.js';
import * as path from 'node:path';
import { renderTest } from './render.js';

export interface TestStageRecord {
  report: LocalTestReport;
  /** The filter Envoy ran: the one istiod would make of the resolved WasmPlugin. */
  filter: FilterSettings;
  /** The test file's name, as failures cite it (`tests.yaml:12`). */
  testsFile: string;
  /** The cases in the file (a report may hold fewer when Envoy stopped early). */
  total: number;
}

export async function runTest(ctx: StageContext): Promise<TestStageRecord> {
  const { inputs } = ctx;
  const model = spec(ctx).model;
  const wasm = await wasmFor(inputs, ctx.results);
  const file = loadTestFile(inputs.tests);
  const cases = file.cases;
  const filter = filterSettings(model.object);
  const report = await ctx.group(`Test in Envoy ${inputs.envoyVersion} (${cases.length} cases)`, async () => {
    const envoy = await installEnvoy({ version: inputs.envoyVersion, envoyPath: inputs.envoyPath, downloadUrl: inputs.envoyDownloadUrl });
    ctx.log(`Envoy ${envoy.version} from ${envoy.source}: ${envoy.path}`);
    for (const note of model.notes) ctx.log(`note: ${note}`);
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
  return { report, filter, testsFile: path.basename(inputs.tests), total: cases.length };
}

export const testStage: Stage<TestStageRecord> = {
  run: runTest,
  render: renderTest,
  keep: (results, record) => {
    results.test = record.report;
  },
};
