import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.js';
import type { CaseResult, LocalTestReport } from '../../../src/localtest/index.js';
import type { TestStageRecord } from '../../../src/stages/test/index.js';
import { renderTest } from '../../../src/stages/test/render.js';
import { expectGolden } from '../../helpers/golden.js';

const ENVOY_LOG = Array.from({ length: 70 }, (_, i) => `[info][wasm] line ${i + 1}`).join('\n');

function passed(name: string, line: number, status: number, over: Partial<CaseResult> = {}): CaseResult {
  return {
    name,
    line,
    request: { method: 'GET', path: '/', headers: {} },
    expect: { status },
    actual: { status, headers: {}, body: '', upstream: { reached: status === 200 } },
    passed: true,
    failures: [],
    log: '',
    durationMs: 12,
    ...over,
  };
}

const CASES: CaseResult[] = [
  passed('allows a request with the token', 3, 200, { request: { method: 'GET', path: '/api', headers: { 'x-token': 'abc' } }, expect: { status: 200, upstream: true } }),
  passed('denies a request without the token', 9, 403, { expect: { status: 403, upstream: false } }),
];

function record(report: Partial<LocalTestReport> = {}, over: Partial<TestStageRecord> = {}): TestStageRecord {
  return {
    report: { envoyVersion: '1.40.0', passed: 2, failed: 0, cases: CASES, afterCases: [], envoyLog: ENVOY_LOG, ...report },
    filter: { name: 'header-auth', namespace: 'istio-system', rootId: 'header-auth', failStrategy: 'FAIL_CLOSE' },
    testsFile: 'tests.yaml',
    total: 2,
    ...over,
  };
}

describe('the test stage\'s summary', () => {
  it('shows every case with its request, what was expected and the status, and what FAIL_CLOSE means (golden)', () => {
    const view = renderTest(record());
    expectGolden('test-summary-passed.md', view.summary);
    expect(view.outputs).toEqual([['test-passed', 2], ['test-failed', 0]]);
    expect(view.error).toBeUndefined();
    // A passing run has no Envoy log in the summary.
    expect(view.summary).not.toContain('<details>');
  });

  it('shows a failed case with why, the Envoy log tail, and fails naming the case where the file has it (golden)', () => {
    const failing: CaseResult = {
      ...passed('denies <script> in the path', 15, 403),
      request: { method: 'POST', path: '/<script>', headers: { 'content-type': 'text/plain' } },
      expect: { status: 403, upstream: false },
      actual: { status: 200, headers: {}, body: '', upstream: { reached: true } },
      passed: false,
      failures: ['status 200, expected 403', 'the request reached the upstream'],
    };
    const view = renderTest(record({ passed: 1, failed: 2, cases: [CASES[0], failing] }, { total: 3, filter: { name: 'header-auth', namespace: 'istio-system', rootId: 'header-auth', failStrategy: 'FAIL_OPEN' } }));
    expectGolden('test-summary-failed.md', view.summary);
    expect(view.outputs).toEqual([['test-passed', 1], ['test-failed', 2]]);
    expect(view.summary).not.toContain('denies every request');
    // The last 60 lines of the Envoy log, escaped.
    expect(view.summary).toContain('line 70');
    expect(view.summary).toContain('<pre>[info][wasm] line 11\n');
    expect(view.summary).not.toContain('line 10\n');
    expect(view.error).toBeInstanceOf(UserError);
    expect(view.error!.message).toBe(
      '2 of 3 local Envoy test case(s) failed:\n' +
        '- denies <script> in the path (tests.yaml:15)\n    status 200, expected 403\n    the request reached the upstream\n' +
        '- 1 case(s) not run',
    );
    expect((view.error as UserError).details).toMatch(/^Envoy log \(last lines\):\n.*line 41$/m);
    expect((view.error as UserError).details!.split('\n')).toHaveLength(31);
  });

  it('shows what went wrong outside the cases and fails with it when every case passed (golden)', () => {
    const trap = 'proxy_on_done trapped: wasm trap: unreachable (Envoy: "[critical][wasm] Plugin trapped")';
    const view = renderTest(record({ afterCases: [trap] }));
    expectGolden('test-summary-outside-cases.md', view.summary);
    expect(view.summary).toContain('<h3>Local Envoy test: 2 passed, 0 failed, 1 problem(s) outside the cases</h3>');
    expect(view.error!.message).toBe(`the plugin failed outside the test cases:\n- ${trap}`);
  });
});
