import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCases, logMatches, parseCases } from '../../src/test/cases.js';
import { compare } from '../../src/test/index.js';

describe('parseCases', () => {
  it('reads the reference plugin tests', () => {
    const cases = loadCases(path.resolve(import.meta.dirname, '../../plugin/tests.yaml'));
    expect(cases.length).toBeGreaterThanOrEqual(4);
    const allowed = cases[0];
    expect(allowed.request).toEqual({ method: 'GET', path: '/status/418', headers: { allow: 'true' }, body: undefined });
    expect(allowed.expect.upstream).toBe(true);
    expect(allowed.expect.upstreamHeaders).toEqual({ allow: 'true' });
    expect(cases[1].expect.status).toBe(403);
    expect(cases[1].line).toBeGreaterThan(allowed.line);
  });

  it('fills in defaults and lower-cases header names', () => {
    const [c] = parseCases('cases:\n  - name: x\n    expect:\n      headers:\n        Content-Type: text/plain\n        X-Gone: null\n', 't.yaml');
    expect(c.request).toEqual({ method: 'GET', path: '/', headers: {}, body: undefined });
    expect(c.expect.headers).toEqual({ 'content-type': 'text/plain', 'x-gone': null });
  });

  it.each([
    ['not YAML', 'cases:\n  - name: [\n', /t\.yaml:\d+: not valid YAML/],
    ['no cases list', 'tests: []\n', /t\.yaml:1: must be a mapping with a `cases:` list/],
    ['an empty list', 'cases: []\n', /cases: has no cases/],
    ['a case without a name', 'cases:\n  - request: {path: /}\n    expect: {status: 200}\n', /t\.yaml:2: cases\[0\]\.name: is required/],
    ['a status out of range', 'cases:\n  - name: a\n    expect: {status: 1}\n  - name: a\n    expect: {status: 200}\n', /t\.yaml:3: cases\[0\]\.expect\.status: must be an HTTP status/],
    ['an unknown field', 'cases:\n  - name: a\n    expect:\n      staus: 200\n', /t\.yaml:4: cases\[0\]\.expect\.staus: unknown field; known fields here: status/],
    ['a status that is text', 'cases:\n  - name: a\n    expect:\n      status: forbidden\n', /t\.yaml:4: cases\[0\]\.expect\.status: must be an HTTP status code/],
    ['an unquoted boolean header', 'cases:\n  - name: a\n    request:\n      headers:\n        allow: true\n    expect: {status: 200}\n', /t\.yaml:5: cases\[0\]\.request\.headers\.allow: must be a string; quote it \("true"\)/],
    ['a relative path', 'cases:\n  - name: a\n    request: {path: status/418}\n    expect: {status: 200}\n', /cases\[0\]\.request\.path: must be a path starting with \//],
    ['a bad method', 'cases:\n  - name: a\n    request: {method: FETCH}\n    expect: {status: 200}\n', /request\.method: must be one of GET/],
    ['no expectations', 'cases:\n  - name: a\n    expect: {}\n', /cases\[0\]\.expect: checks nothing/],
    ['a bad regex', 'cases:\n  - name: a\n    expect:\n      logs: ["/(/"]\n', /cases\[0\]\.expect\.logs\[0\]: is not a valid regular expression/],
    ['an unquoted log line with a colon', 'cases:\n  - name: a\n    expect:\n      logs:\n        - wasm: hello\n', /expect\.logs: must be a list of strings \(quote an entry/],
  ])('rejects %s, naming the line and field', (_name, text, message) => {
    expect(() => parseCases(text, 't.yaml')).toThrow(message);
  });

  it('rejects a duplicate case name', () => {
    expect(() => parseCases('cases:\n  - name: a\n    expect: {status: 200}\n  - name: a\n    expect: {status: 200}\n', 't.yaml')).toThrow(
      /t\.yaml:4: cases\[1\]\.name: "a" is used by another case/,
    );
  });

  it('says where the missing file should be', () => {
    expect(() => loadCases('/nonexistent/tests.yaml')).toThrow(/input `tests`: \/nonexistent\/tests\.yaml does not exist/);
  });
});

describe('logMatches', () => {
  it('matches substrings and /regular expressions/', () => {
    const log = '[info][wasm] wasm log istio-system.x: #12 wasm-as: on_http_request_headers';
    expect(logMatches(log, 'wasm-as: on_http_request_headers')).toBe(true);
    expect(logMatches(log, '/#\\d+ wasm-as/')).toBe(true);
    expect(logMatches(log, '/#[a-z]+ wasm-as/')).toBe(false);
    expect(logMatches(log, 'deny by default')).toBe(false);
  });
});

describe('compare', () => {
  const actual = {
    status: 403,
    headers: { 'content-type': 'text/plain', 'content-length': '5' },
    body: 'nope\n',
    upstream: { reached: false },
  };

  it('passes when everything matches', () => {
    expect(compare({ status: 403, headers: { 'content-type': 'text/plain', 'x-absent': null }, body: 'nope\n', upstream: false }, actual, '')).toEqual([]);
  });

  it('lists every mismatch with expected and actual', () => {
    const failures = compare(
      { status: 418, headers: { 'content-type': 'application/json', 'content-length': null }, bodyContains: ['teapot'], upstream: true, upstreamHeaders: { allow: 'true' }, logs: ['on_http_request_headers'] },
      actual,
      'nothing useful',
    );
    expect(failures).toEqual([
      'status: expected 418, got 403',
      'response header content-type: expected "application/json", got "text/plain"',
      'response header content-length: expected (absent), got "5"',
      'body: expected to contain "teapot", got "nope\\n"',
      'upstream: expected the request to reach the upstream; it did not',
      'upstream header allow: expected "true", got (absent)',
      'Envoy log: expected a line matching "on_http_request_headers"; none was written',
    ]);
  });
});
