// Tar reading, as Go's archive/tar presents entries: what the gate needs to
// take plugin.wasm out of an image layer the way Istio's fetcher does, from
// memory or streamed from a file.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path/posix';
import * as zlib from 'node:zlib';
import { WASM_FILE_NAME, isWasm } from './image.js';

/** An archive Go's archive/tar would refuse, or one without plugin.wasm: the gate says which. */
export class TarError extends Error {}

/** plugin.wasm found in a layer: its hash and whether it starts like a module. */
export interface TarWasm {
  sha256: string;
  magic: boolean;
}

export interface TarEntry {
  name: string;
  type: string;
  data: Buffer;
}

function parseOctal(buf: Buffer): number {
  const text = buf.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarError(`bad number "${text}" in a tar header`);
  return parseInt(text, 8);
}

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.subarray(0, end === -1 ? buf.length : end).toString('utf8');
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const len = parseInt(data.subarray(pos, space).toString('ascii'), 10);
    if (!Number.isFinite(len) || len <= 0) throw new TarError('bad PAX record in tar');
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

/** A header's type flag, after checking its checksum. */
function headerType(header: Buffer): string {
  const stored = parseOctal(header.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
  if (sum !== stored) throw new TarError('tar header checksum mismatch');
  return String.fromCharCode(header[156] || 0x30);
}

/** An entry's name: ustar prefix joined, then a GNU long name, then a PAX path, as Go reads it. */
function entryName(header: Buffer, longName: string | undefined, pax: Record<string, string>): string {
  let name = cString(header.subarray(0, 100));
  const magic = header.subarray(257, 263).toString('latin1');
  if (magic.startsWith('ustar')) {
    const prefix = cString(header.subarray(345, 500));
    if (prefix) name = `${prefix}/${name}`;
  }
  if (longName !== undefined) name = longName;
  if (pax.path !== undefined) name = pax.path;
  return name;
}

/** The entries of a tar archive (PAX and GNU long names merged, as Go does). */
export function readTar(archive: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let pos = 0;
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  while (pos + 512 <= archive.length) {
    const header = archive.subarray(pos, pos + 512);
    if (header.every((b) => b === 0)) break;
    const type = headerType(header);
    const size = pax.size !== undefined ? parseInt(pax.size, 10) : parseOctal(header.subarray(124, 136));
    const start = pos + 512;
    const end = start + size;
    if (end > archive.length) throw new TarError('tar archive is truncated');
    const data = archive.subarray(start, end);
    pos = start + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      pax = { ...pax, ...parsePax(data) };
      continue;
    }
    if (type === 'g') continue;
    if (type === 'L') {
      longName = cString(data);
      continue;
    }
    if (type === 'K') continue;
    entries.push({ name: entryName(header, longName, pax), type, data });
    pax = {};
    longName = undefined;
  }
  return entries;
}

/** Go's filepath.Base on a slash path: trailing slashes dropped, "" is ".". */
function goBase(name: string): string {
  const trimmed = name.replace(/\/+$/, '');
  if (trimmed === '') return name === '' ? '.' : '/';
  return basename(trimmed);
}

export function extractFromTarGz(layer: Buffer): Buffer {
  let tar: Buffer;
  try {
    tar = zlib.gunzipSync(layer);
  } catch (err) {
    throw new TarError(`failed to parse layer as tar.gz: ${(err as Error).message}`);
  }
  // The entry is a view into the archive, not a copy: the module is not held twice.
  for (const entry of readTar(tar)) {
    if (goBase(entry.name) === WASM_FILE_NAME) return entry.data;
  }
  throw new TarError(`${WASM_FILE_NAME} not found in the archive`);
}

/** Reads exact byte counts from a stream of chunks, holding only what is not yet taken. */
class ChunkReader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(private readonly chunks: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<void> {
    while (this.buf.length < n && !this.ended) {
      const next = await this.chunks.next();
      if (next.done) this.ended = true;
      else this.buf = this.buf.length > 0 ? Buffer.concat([this.buf, next.value]) : next.value;
    }
  }

  /** The next n bytes (fewer at the end of the stream). */
  async take(n: number): Promise<Buffer> {
    await this.fill(n);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  /** Hands the next n bytes to `use` piece by piece; returns how many there were. */
  async each(n: number, use: (piece: Buffer) => void): Promise<number> {
    let left = n;
    while (left > 0) {
      await this.fill(1);
      if (this.buf.length === 0) break;
      const piece = this.buf.subarray(0, Math.min(left, this.buf.length));
      use(piece);
      this.buf = this.buf.subarray(piece.length);
      left -= piece.length;
    }
    return n - left;
  }
}

/**
 * extractFromTarGz over a stream: the first entry whose base name is
 * plugin.wasm, hashed as it is read, as Go's archive/tar reads an archive
 * entry by entry (the same header, PAX and long-name rules as readTar).
 */
export async function scanTarGz(file: string): Promise<TarWasm> {
  const chunks = createReadStream(file).pipe(zlib.createGunzip())[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const reader = new ChunkReader(chunks);
  try {
    let pax: Record<string, string> = {};
    let longName: string | undefined;
    for (;;) {
      const header = await reader.take(512);
      if (header.length < 512 || header.every((b) => b === 0)) break;
      const type = headerType(header);
      const size = pax.size !== undefined ? parseInt(pax.size, 10) : parseOctal(header.subarray(124, 136));
      const padding = Math.ceil(size / 512) * 512 - size;
      if (type === 'x' || type === 'L') {
        const data = await reader.take(size);
        if (data.length < size) throw new TarError('tar archive is truncated');
        await reader.take(padding);
        if (type === 'x') pax = { ...pax, ...parsePax(data) };
        else longName = cString(data);
        continue;
      }
      const name = type === 'g' || type === 'K' ? undefined : entryName(header, longName, pax);
      if (name !== undefined && goBase(name) === WASM_FILE_NAME) {
        const hash = createHash('sha256');
        let head = Buffer.alloc(0);
        const got = await reader.each(size, (piece) => {
          if (head.length < 8) head = Buffer.concat([head, piece.subarray(0, 8 - head.length)]);
          hash.update(piece);
        });
        if (got < size) throw new TarError('tar archive is truncated');
        return { sha256: hash.digest('hex'), magic: isWasm(head) };
      }
      if ((await reader.each(size, () => undefined)) < size) throw new TarError('tar archive is truncated');
      await reader.take(padding);
      if (name !== undefined) {
        pax = {};
        longName = undefined;
      }
    }
  } catch (err) {
    if (err instanceof TarError) throw err;
    throw new TarError(`failed to parse layer as tar.gz: ${(err as Error).message}`);
  } finally {
    await chunks.return?.();
  }
  throw new TarError(`${WASM_FILE_NAME} not found in the archive`);
}
