import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCases, logMatches, parseCases, parseTestFile } from '../../src/localtest/cases.js';
import { compare, problemsAfterCases } from '../../src/localtest/index.js';
import { startFake } from '../../src/localtest/upstream.js';
import * as http2 from 'node:http2';

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
    ['an unknown top-level field', 'upstream:\n  authz: {}\ncases:\n  - name: a\n    expect: {status: 200}\n', /t\.yaml:2: upstream: unknown field; known fields here: cases, upstreams/],
    ['upstreams that are a list', 'upstreams: [authz]\ncases:\n  - name: a\n    expect: {status: 200}\n', /t\.yaml:1: upstreams: must be a mapping of cluster names/],
    ['the default cluster name', 'upstreams:\n  upstream: {status: 200}\ncases:\n  - name: a\n    expect: {status: 200}\n', /t\.yaml:2: upstreams\.upstream: "upstream" is the cluster every test request goes to/],
    ['a cluster name with a space', 'upstreams:\n  "auth z": {}\ncases:\n  - name: a\n    expect: {status: 200}\n', /upstreams\.auth z: is not a usable cluster name/],
    ['an unknown upstream field', 'upstreams:\n  authz:\n    staus: 403\ncases:\n  - name: a\n    expect: {status: 200}\n', /t\.yaml:3: upstreams\.authz\.staus: unknown field; known fields here: status, headers, body, paths, grpc, grpcStatus/],
    ['a fake answer with an address', 'upstreams:\n  authz:\n    address: 10.0.0.7:80\n    status: 403\ncases:\n  - name: a\n    expect: {status: 200}\n', /t\.yaml:4: upstreams\.authz\.status: unknown field; known fields here: address, grpc/],
    ['an address without a port', 'upstreams:\n  authz: {address: 10.0.0.7}\ncases:\n  - name: a\n    expect: {status: 200}\n', /upstreams\.authz\.address: must be host:port/],
    ['a fake status out of range', 'upstreams:\n  authz:\n    paths:\n      /check: {status: 99}\ncases:\n  - name: a\n    expect: {status: 200}\n', /t\.yaml:4: upstreams\.authz\.paths\.\/check\.status: must be an HTTP status code/],
    ['a relative fake path', 'upstreams:\n  authz:\n    paths:\n      check: {status: 200}\ncases:\n  - name: a\n    expect: {status: 200}\n', /upstreams\.authz\.paths\.check: must be a path starting with \//],
    ['grpcStatus on an HTTP fake', 'upstreams:\n  authz: {grpcStatus: 7}\ncases:\n  - name: a\n    expect: {status: 200}\n', /upstreams\.authz\.grpcStatus: is for a gRPC upstream only/],
    ['calls to an undeclared upstream', 'upstreams:\n  authz: {}\ncases:\n  - name: a\n    expect:\n      calls: {auth: 1}\n', /t\.yaml:6: cases\[0\]\.expect\.calls\.auth: is not an upstream this file declares; declared fakes: authz/],
    ['calls to a real service', 'upstreams:\n  billing: {address: "10.0.0.7:80"}\ncases:\n  - name: a\n    expect:\n      calls: {billing: 1}\n', /calls\.billing: is a real service \(`address:`\); only a local fake's calls can be counted/],
    ['a call count that is not a number', 'upstreams:\n  authz: {}\ncases:\n  - name: a\n    expect:\n      calls: {authz: once}\n', /calls\.authz: must be a whole number of calls/],
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

describe('upstreams', () => {
  const text = [
    'upstreams:',
    '  authz:',
    '    status: 403',
    '    headers: {x-reason: denied}',
    '    body: "no\\n"',
    '    paths:',
    '      /check/alice: {status: 200, body: ok}',
    '  ratings: {grpc: true, grpcStatus: 5}',
    '  billing: {address: "10.0.0.7:8080"}',
    '  local: {address: "[::1]:9000", grpc: true}',
    '  empty:',
    'cases:',
    '  - name: alice is let through',
    '    request: {headers: {x-user: alice}}',
    '    expect: {status: 200, calls: {authz: 1, empty: 0}}',
    '',
  ].join('\n');

  it('reads fakes (answer, per-path answers inheriting from it) and addresses, and counts calls', () => {
    const cases = parseTestFile(text, 't.yaml');
    expect(cases.line).toBe(13);
    expect(cases.upstreams.authz).toEqual({
      kind: 'fake',
      name: 'authz',
      line: 3,
      grpc: false,
      answer: { status: 403, headers: { 'x-reason': 'denied' }, body: 'no\n' },
      paths: { '/check/alice': { status: 200, headers: { 'x-reason': 'denied' }, body: 'ok' } },
    });
    expect(cases.upstreams.ratings).toMatchObject({ kind: 'fake', grpc: true, answer: { status: 200, grpcStatus: 5 } });
    expect(cases.upstreams.billing).toEqual({ kind: 'address', name: 'billing', line: 9, grpc: false, host: '10.0.0.7', port: 8080 });
    expect(cases.upstreams.local).toMatchObject({ host: '::1', port: 9000, grpc: true });
    expect(cases.upstreams.empty).toMatchObject({ kind: 'fake', answer: { status: 200, headers: {}, body: '' }, paths: {} });
    expect(cases.cases[0].expect.calls).toEqual({ authz: 1, empty: 0 });
  });

  it('a file without upstreams has none', () => {
    expect(parseTestFile('cases:\n  - name: a\n    expect: {status: 200}\n', 't.yaml').upstreams).toEqual({});
  });

  it('the fake answers per path (query ignored) and records every call', async () => {
    const spec = parseTestFile(text, 't.yaml').upstreams.authz;
    if (spec.kind !== 'fake') throw new Error('not a fake');
    const fake = await startFake(spec);
    try {
      const alice = await fetch(`http://127.0.0.1:${fake.port}/check/alice?x=1`);
      expect([alice.status, await alice.text()]).toEqual([200, 'ok']);
      const bob = await fetch(`http://127.0.0.1:${fake.port}/check/bob`, { method: 'POST', body: 'hi' });
      expect([bob.status, bob.headers.get('x-reason'), await bob.text()]).toEqual([403, 'denied', 'no\n']);
      expect(fake.seen.map((r) => `${r.method} ${r.path} ${r.body}`)).toEqual(['GET /check/alice?x=1 ', 'POST /check/bob hi']);
    } finally {
      await fake.close();
    }
  });

  it('a gRPC fake speaks HTTP/2 and answers with one message and grpc-status', async () => {
    const spec = parseTestFile('upstreams:\n  ratings: {grpc: true, body: "abc", grpcStatus: 0}\ncases:\n  - name: a\n    expect: {calls: {ratings: 1}}\n', 't.yaml').upstreams.ratings;
    if (spec.kind !== 'fake') throw new Error('not a fake');
    const fake = await startFake(spec);
    const client = http2.connect(`http://127.0.0.1:${fake.port}`);
    try {
      const answer = await new Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        const req = client.request({ ':method': 'POST', ':path': '/ratings.Ratings/Get', 'content-type': 'application/grpc' });
        let headers: http2.IncomingHttpHeaders = {};
        let trailers: http2.IncomingHttpHeaders = {};
        const chunks: Buffer[] = [];
        req.on('response', (h) => (headers = h));
        req.on('trailers', (t) => (trailers = t));
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => resolve({ headers, trailers, body: Buffer.concat(chunks) }));
        req.on('error', reject);
        req.end(Buffer.from([0, 0, 0, 0, 0]));
      });
      expect(answer.headers[':status']).toBe(200);
      expect(answer.headers['content-type']).toBe('application/grpc');
      expect(answer.trailers['grpc-status']).toBe('0');
      expect([...answer.body]).toEqual([0, 0, 0, 0, 3, 97, 98, 99]);
      expect(fake.seen.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /ratings.Ratings/Get']);
    } finally {
      client.close();
      await fake.close();
    }
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

  it('counts the calls each fake received', () => {
    const call = { method: 'GET', path: '/check/bob', headers: {}, body: '' };
    expect(compare({ calls: { authz: 1, other: 0 } }, { ...actual, calls: { authz: [call] } }, '')).toEqual([]);
    expect(compare({ calls: { authz: 0, other: 1 } }, { ...actual, calls: { authz: [call, call] } }, '')).toEqual([
      'calls to authz: expected 0, got 2 (GET /check/bob, GET /check/bob)',
      'calls to other: expected 1, got 0',
    ]);
  });
});

// Envoy 1.40.0's log around a run: a plugin whose root context traps in
// onDone (proxy_on_done), and one whose stream context traps in onDelete
// (proxy_on_delete) after the response went out.
const ROOT_DONE_TRAP = [
  '[2026-12-01 21:49:47.736][26829][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log header-authorization: x: onConfigure',
  '[2026-12-01 21:49:47.817][26829][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log istio-system.header-authorization header-authorization: x: onRequestHeaders 2',
  '[2026-12-01 21:49:47.819][26829][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log istio-system.header-authorization header-authorization: x: stream onDelete 2',
  '[2026-12-01 21:49:48.127][26809][warning][main] [source/server/server.cc:1028] caught ENVOY_SIGTERM',
  '[2026-12-01 21:49:48.128][26829][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log header-authorization: x: root onDone 1',
  '[2026-12-01 21:49:48.128][26829][error][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] Function: proxy_on_done failed: Uncaught RuntimeError: unreachable',
  '[2026-12-01 21:49:48.132][26809][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log header-authorization: x: root onDone 1',
  '[2026-12-01 21:49:48.132][26809][error][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] Function: proxy_on_done failed: Uncaught RuntimeError: unreachable',
  '',
].join('\n');

const STREAM_DELETE_TRAP = [
  '[2026-12-01 21:49:50.100][26897][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log istio-system.header-authorization header-authorization: x: onRequestHeaders 2',
  '[2026-12-01 21:49:50.112][26897][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log istio-system.header-authorization header-authorization: x: stream onDelete 2',
  '[2026-12-01 21:49:50.113][26897][error][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] Function: proxy_on_delete failed: Uncaught RuntimeError: unreachable',
  '[2026-12-01 21:49:50.428][26887][warning][main] [source/server/server.cc:1028] caught ENVOY_SIGTERM',
  '',
].join('\n');

describe('problemsAfterCases', () => {
  const upTo = (log: string, text: string) => log.indexOf(text) + text.length;

  it('reports a trap at shutdown once, with Envoy\'s line and how often', () => {
    const runs = [{ name: 'one', logRange: [0, upTo(ROOT_DONE_TRAP, 'stream onDelete 2')] as [number, number] }];
    expect(problemsAfterCases(ROOT_DONE_TRAP, runs, 'exit code 0')).toEqual([
      'the plugin trapped in proxy_on_done at shutdown, after Envoy was told to stop; Envoy: "Function: proxy_on_done failed: Uncaught RuntimeError: unreachable" (2 times: once per copy of the plugin)',
    ]);
  });

  it('leaves out a trap a case already reported, and reports one that fell between cases', () => {
    const end = upTo(STREAM_DELETE_TRAP, 'stream onDelete 2');
    expect(problemsAfterCases(STREAM_DELETE_TRAP, [{ name: 'one', logRange: [0, STREAM_DELETE_TRAP.length] }], 'exit code 0')).toEqual([]);
    expect(problemsAfterCases(STREAM_DELETE_TRAP, [{ name: 'one', logRange: [0, end] }], 'exit code 0')).toEqual([
      'the plugin trapped in proxy_on_delete after the last case ("one"); Envoy: "Function: proxy_on_delete failed: Uncaught RuntimeError: unreachable"',
    ]);
    expect(problemsAfterCases(STREAM_DELETE_TRAP, [{ name: 'one', logRange: [0, end] }, { name: 'two', logRange: [end + 200, end + 250] }], 'exit code 0')).toEqual([
      'the plugin trapped in proxy_on_delete between cases, after "one"; Envoy: "Function: proxy_on_delete failed: Uncaught RuntimeError: unreachable"',
    ]);
    expect(problemsAfterCases(STREAM_DELETE_TRAP, [], 'exit code 0')[0]).toMatch(/^the plugin trapped in proxy_on_delete before the first case/);
  });

  it('reports an Envoy that crashed when stopped, but not one stopped by a signal it was sent', () => {
    expect(problemsAfterCases('', [], 'signal SIGSEGV')).toEqual(['Envoy ended badly when stopped (signal SIGSEGV)']);
    expect(problemsAfterCases('', [], 'signal SIGKILL')).toEqual([]);
    expect(problemsAfterCases('', [], 'exit code 0')).toEqual([]);
  });
});
