// Stores the listed files under the artifact name, relative to their least
// common ancestor directory (what upload-artifact v4 does for plain paths).
/* global process, console */
import * as fs from 'node:fs';
import * as path from 'node:path';
const store = process.env.ACT_STANDIN_ARTIFACTS;
if (!store) throw new Error('upload-artifact stand-in: ACT_STANDIN_ARTIFACTS is not set');
const name = process.env.NAME;
const ws = process.env.GITHUB_WORKSPACE;
const lines = process.env.PATHS.split('\n').map((l) => l.trim()).filter(Boolean);
if (lines.some((l) => /[*?[]|^!/.test(l))) throw new Error(`upload-artifact stand-in: globs are not supported: ${lines.join(', ')}`);
const found = lines.map((l) => path.resolve(ws, l)).filter((p) => fs.existsSync(p));
const missing = lines.filter((l) => !fs.existsSync(path.resolve(ws, l)));
if (missing.length && process.env.IF_NO_FILES_FOUND === 'error') {
  console.log(`::error::upload-artifact stand-in: no file at ${missing.join(', ')}`);
  process.exit(1);
}
if (!found.length) {
  console.log(`::warning::upload-artifact stand-in: nothing to upload for ${name}`);
  process.exit(0);
}
const dest = path.join(store, name);
if (fs.existsSync(dest)) {
  console.log(`::error::upload-artifact stand-in: an artifact named ${name} was already uploaded in this run`);
  process.exit(1);
}
const dirs = found.map((p) => (fs.statSync(p).isDirectory() ? p : path.dirname(p)));
let root = dirs[0];
while (!dirs.every((d) => d === root || d.startsWith(root + path.sep))) root = path.dirname(root);
for (const p of found) fs.cpSync(p, path.join(dest, path.relative(root, p)), { recursive: true });
console.log(`upload-artifact stand-in: ${name}: ${found.map((p) => path.relative(root, p)).join(', ')}`);
