// The test stage's outputs, summary section and failure, from its record
// alone: a table of cases with what was expected and what came back.
import { UserError } from '../../errors.js';
import type { LocalTestReport } from '../../localtest/index.js';
import { escapeHtml, sectionHtml } from '../../summary.js';
import type { StageView } from '../stage.js';
import type { TestStageRecord } from './index.js';

type CaseResult = LocalTestReport['cases'][number];

const logTail = (report: LocalTestReport, lines: number) => report.envoyLog.trimEnd().split('\n').slice(-lines).join('\n');

function request(c: CaseResult): string {
  const headers = Object.entries(c.request.headers);
  return escapeHtml(`${c.request.method} ${c.request.path}${headers.length ? ` ${headers.map(([k, v]) => `${k}: ${v}`).join(', ')}` : ''}`);
}

function expected(c: CaseResult): string {
  return escapeHtml([c.expect.status && `${c.expect.status}`, c.expect.upstream !== undefined && (c.expect.upstream ? 'reaches upstream' : 'stopped by plugin')].filter(Boolean).join(', '));
}

export function renderTest(record: TestStageRecord): StageView {
  const { report, filter } = record;
  const summary = sectionHtml({
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
        request(c),
        expected(c),
        c.passed ? (c.actual ? String(c.actual.status) : '') : escapeHtml(c.failures.join('; ')),
      ]),
    ],
    details: report.failed > 0 || report.afterCases.length > 0 ? [{ label: 'Envoy log', text: logTail(report, 60) }] : [],
  });
  return {
    outputs: [
      ['test-passed', report.passed],
      ['test-failed', report.failed],
    ],
    summary,
    error: failure(record),
  };
}

/** Why the stage fails, naming each failing case where the test file has it; undefined when it passed. */
function failure({ report, testsFile, total }: TestStageRecord): UserError | undefined {
  if (report.failed > 0) {
    const failing = report.cases.filter((c) => !c.passed);
    const notRun = total - report.cases.length;
    return new UserError(
      `${report.failed} of ${total} local Envoy test case(s) failed:\n${failing
        .map((c) => `- ${c.name} (${testsFile}:${c.line})\n    ${c.failures.join('\n    ')}`)
        .join('\n')}${notRun > 0 ? `\n- ${notRun} case(s) not run` : ''}${report.afterCases.length ? `\n- outside the cases: ${report.afterCases.join('; ')}` : ''}`,
      `Envoy log (last lines):\n${logTail(report, 30)}`,
    );
  }
  if (report.afterCases.length > 0) {
    return new UserError(`the plugin failed outside the test cases:\n- ${report.afterCases.join('\n- ')}`, `Envoy log (last lines):\n${logTail(report, 30)}`);
  }
  return undefined;
}
