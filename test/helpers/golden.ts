import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';

const DIR = path.join(import.meta.dirname, '..', 'golden');

/** Compares text with test/golden/<name>; UPDATE_GOLDEN=1 rewrites the file instead. */
export function expectGolden(name: string, text: string): void {
  const file = path.join(DIR, name);
  if (process.env.UPDATE_GOLDEN === '1' || !fs.existsSync(file)) {
    if (process.env.CI && !fs.existsSync(file)) throw new Error(`golden file ${file} is missing`);
    fs.writeFileSync(file, text);
  }
  expect(text).toBe(fs.readFileSync(file, 'utf8'));
}
