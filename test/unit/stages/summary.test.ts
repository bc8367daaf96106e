import * as core from '@actions/core';
import { afterEach, describe, expect, it } from 'vitest';
import { escapeHtml, sectionHtml, type Section } from '../../../src/summary.js';

// The runner's own summary helpers, as the stages used them before their
// sections were rendered as text: the text must be the same markup.
function viaRunner(section: Section): string {
  const s = core.summary.emptyBuffer().addHeading(escapeHtml(section.title), 3);
  for (const line of section.lines ?? []) s.addRaw(`<p>${line}</p>`, true);
  if (section.rows?.length) {
    const [head, ...body] = section.rows;
    s.addTable([head.map((c) => (typeof c === 'string' ? { data: c, header: true } : { ...c, header: true })), ...body]);
  }
  for (const d of section.details ?? []) s.addDetails(escapeHtml(d.label), `<pre>${escapeHtml(d.text)}</pre>`);
  return s.stringify();
}

afterEach(() => {
  core.summary.emptyBuffer();
});

describe('sectionHtml', () => {
  it.each<[string, Section]>([
    ['a title alone', { title: 'Build' }],
    ['a title that needs escaping', { title: 'Build failed: <1 error> & "more"' }],
    ['lines, a table with an empty cell, details', {
      title: 'Local Envoy test: 1 passed, 1 failed',
      lines: ['Envoy <code>1.40.0</code>', 'second'],
      rows: [['', 'Case', 'Actual'], ['✅', 'allows', ''], ['❌', 'denies', 'status 200, expected 403']],
      details: [{ label: 'Envoy log <tail>', text: 'line 1\n<b>not bold</b> & more' }],
    }],
    ['a header cell in the body', { title: 'T', rows: [['a', 'b'], [{ data: 'x', header: true }, 'y']] }],
  ])('makes the markup of the runner\'s summary helpers: %s', (_name, section) => {
    expect(sectionHtml(section)).toBe(viaRunner(section));
  });

  it('escapes the title and the details but not the cells and lines, which arrive escaped', () => {
    const html = sectionHtml({ title: 'a<b', lines: ['<code>x</code>'], rows: [['h'], ['<code>y</code>']], details: [{ label: 'l<', text: 't>' }] });
    expect(html).toContain('<h3>a&lt;b</h3>');
    expect(html).toContain('<p><code>x</code></p>');
    expect(html).toContain('<td><code>y</code></td>');
    expect(html).toContain('<details><summary>l&lt;</summary><pre>t&gt;</pre></details>');
  });
});
