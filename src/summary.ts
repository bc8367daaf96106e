// The job summary: what a reviewer reads instead of the log. Each stage's
// renderer makes its part as text (pure, golden-tested); writeSummary
// appends it. Nothing is written when GITHUB_STEP_SUMMARY is unset (a laptop).
import * as fs from 'node:fs/promises';

export function summaryEnabled(): boolean {
  return Boolean(process.env.GITHUB_STEP_SUMMARY);
}

/** Escapes user data (test names, bodies, log lines) for the summary's HTML. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export type Cell = string | { data: string; header?: boolean };

/** One section: `rows` are already-escaped cells, the first row the header; long text (logs) goes in `details`, collapsed. */
export interface Section {
  title: string;
  lines?: string[];
  rows?: Cell[][];
  details?: Array<{ label: string; text: string }>;
}

// The runner's summary helpers (@actions/core) wrap an empty cell as a bare
// opening tag; sections keep the markup they made before they were rendered here.
function wrap(tag: string, content: string): string {
  return content ? `<${tag}>${content}</${tag}>` : `<${tag}>`;
}

/** A section as the summary's HTML, one element a line. */
export function sectionHtml(section: Section): string {
  const out = [wrap('h3', escapeHtml(section.title))];
  for (const line of section.lines ?? []) out.push(`<p>${line}</p>`);
  if (section.rows && section.rows.length > 0) {
    const [head, ...body] = section.rows;
    const cell = (c: Cell, header: boolean) => (typeof c === 'string' ? wrap(header ? 'th' : 'td', c) : wrap(header || c.header ? 'th' : 'td', c.data));
    const row = (cells: Cell[], header: boolean) => wrap('tr', cells.map((c) => cell(c, header)).join(''));
    out.push(wrap('table', [row(head, true), ...body.map((r) => row(r, false))].join('')));
  }
  for (const d of section.details ?? []) out.push(wrap('details', wrap('summary', escapeHtml(d.label)) + `<pre>${escapeHtml(d.text)}</pre>`));
  return out.map((l) => `${l}\n`).join('');
}

/**
 * Appends text (HTML or Markdown) to the job summary; nothing without
 * GITHUB_STEP_SUMMARY or text. The file is the one the variable names now
 * (the toolkit's summary writer keeps the first path it saw for the life of
 * the process, which one process running several CLI commands must not).
 */
export async function writeSummary(text: string): Promise<void> {
  const file = process.env.GITHUB_STEP_SUMMARY;
  if (!summaryEnabled() || !text || !file) return;
  try {
    await fs.access(file, fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    throw new Error(`cannot write the job summary: GITHUB_STEP_SUMMARY names ${file}, which does not exist or is not writable`);
  }
  await fs.appendFile(file, text, 'utf8');
}
