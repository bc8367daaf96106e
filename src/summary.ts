// The job summary: what a reviewer reads instead of the log. Stages add
// sections; nothing is written when GITHUB_STEP_SUMMARY is unset (a laptop).
import * as core from '@actions/core';

export function summaryEnabled(): boolean {
  return Boolean(process.env.GITHUB_STEP_SUMMARY);
}

/** Escapes user data (test names, bodies, log lines) for the summary's HTML. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export type Cell = string | { data: string; header?: boolean };

/**
 * Writes one section. `rows` are already-escaped cells; the first row is the
 * header. Long text (logs) goes in `details`, collapsed.
 */
export async function writeSection(section: {
  title: string;
  lines?: string[];
  rows?: Cell[][];
  details?: Array<{ label: string; text: string }>;
}): Promise<void> {
  if (!summaryEnabled()) return;
  const s = core.summary.addHeading(escapeHtml(section.title), 3);
  for (const line of section.lines ?? []) s.addRaw(`<p>${line}</p>`, true);
  if (section.rows && section.rows.length > 0) {
    const [head, ...body] = section.rows;
    s.addTable([head.map((c) => (typeof c === 'string' ? { data: c, header: true } : { ...c, header: true })), ...body]);
  }
  for (const d of section.details ?? []) {
    s.addDetails(escapeHtml(d.label), `<pre>${escapeHtml(d.text)}</pre>`);
  }
  await s.write();
}
