/**
 * An archive may be one file or a run of parts (`FILE.part-0001`, `FILE.part-0002`, …) cut to fit
 * removable media. `ArchiveFile` reads either as one byte range, so the tar index and ranged blob reads
 * never care; `PartWriter` writes a stream into parts of at most a given size. `cat FILE.part-* > FILE`
 * also rebuilds the single file, for tools that want one.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { type FileHandle, open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { LadingError, fsError } from '../../errors.js';

export function partName(file: string, n: number): string {
  return `${file}.part-${String(n).padStart(4, '0')}`;
}

interface Part {
  path: string;
  start: number;
  size: number;
  fh: FileHandle;
}

/** Random access over one file or its parts, as if they were one. */
export class ArchiveFile {
  private constructor(
    private readonly parts: Part[],
    readonly size: number,
  ) {}

  /** Opens FILE, or FILE.part-0001… when FILE itself does not exist. */
  static async open(file: string, name: string): Promise<ArchiveFile> {
    const single = await stat(file).catch(() => undefined);
    const paths = single !== undefined ? [file] : await partPaths(file);
    if (paths.length === 0) throw new LadingError('NOT_FOUND', `${name}: no such file (nor ${basename(partName(file, 1))})`);
    const parts: Part[] = [];
    let start = 0;
    try {
      for (const path of paths) {
        const fh = await open(path, 'r');
        const size = (await fh.stat()).size;
        parts.push({ path, start, size, fh });
        start += size;
      }
    } catch (e) {
      await Promise.all(parts.map((p) => p.fh.close()));
      throw fsError(e, 'open', file);
    }
    return new ArchiveFile(parts, start);
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    let done = 0;
    for (const p of this.parts) {
      const from = position + done;
      if (done >= length) break;
      if (from >= p.start + p.size || from < p.start) continue;
      const take = Math.min(length - done, p.start + p.size - from);
      const { bytesRead } = await p.fh.read(buffer, offset + done, take, from - p.start);
      done += bytesRead;
      if (bytesRead < take) break;
    }
    return { bytesRead: done };
  }

  /** A stream of bytes [start, end] (inclusive), across part boundaries. */
  stream(start: number, end: number, highWaterMark: number): Readable {
    const pieces = this.parts
      .filter((p) => p.start <= end && p.start + p.size > start)
      .map((p) => ({ path: p.path, from: Math.max(start, p.start) - p.start, to: Math.min(end, p.start + p.size - 1) - p.start }));
    if (pieces.length === 1) return createReadStream(pieces[0]!.path, { start: pieces[0]!.from, end: pieces[0]!.to, highWaterMark });
    return Readable.from(
      (async function* () {
        for (const piece of pieces) yield* createReadStream(piece.path, { start: piece.from, end: piece.to, highWaterMark });
      })(),
      { objectMode: false, highWaterMark },
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.fh.close().catch(() => undefined)));
  }
}

async function partPaths(file: string): Promise<string[]> {
  const dir = dirname(file);
  const prefix = `${basename(file)}.part-`;
  const names = (await readdir(dir).catch(() => [] as string[])).filter(
    (n) => n.startsWith(prefix) && /^\d{4,}$/.test(n.slice(prefix.length)),
  );
  names.sort();
  // Parts must run 0001, 0002, … without a gap: a missing part is a truncated archive, not a shorter one.
  names.forEach((n, i) => {
    if (Number(n.slice(prefix.length)) !== i + 1) {
      throw new LadingError('INVALID_ARCHIVE', `${file}: part ${basename(partName(file, i + 1))} is missing`);
    }
  });
  return names.map((n) => join(dir, n));
}

/** Writes a stream into `${base}.part-0001`, … of at most `partSize` bytes each; `paths` lists them. */
export class PartWriter extends Writable {
  readonly paths: string[] = [];
  private current: WriteStream | undefined;
  private written = 0;

  constructor(
    private readonly base: string,
    private readonly partSize: number,
  ) {
    super({ highWaterMark: 1 << 20 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    this.writeChunk(chunk).then(() => done(), done);
  }

  override _final(done: (e?: Error | null) => void): void {
    this.closeCurrent().then(() => done(), done);
  }

  private async writeChunk(chunk: Buffer): Promise<void> {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.current === undefined || this.written === this.partSize) {
        await this.closeCurrent();
        const path = partName(this.base, this.paths.length + 1);
        this.paths.push(path);
        this.current = createWriteStream(path, { flags: 'wx', flush: true });
        this.current.on('error', (e) => this.destroy(fsError(e, 'write', path) as Error));
        this.written = 0;
      }
      const take = Math.min(chunk.length - pos, this.partSize - this.written);
      const piece = chunk.subarray(pos, pos + take);
      if (!this.current.write(piece)) await new Promise<void>((r) => this.current?.once('drain', () => r()));
      this.written += take;
      pos += take;
    }
  }

  private async closeCurrent(): Promise<void> {
    const stream = this.current;
    if (stream === undefined) return;
    this.current = undefined;
    await new Promise<void>((resolve, reject) => {
      stream.once('error', reject);
      stream.end(resolve);
    });
  }
}

/** Parses sizes like 4G, 700M, 4500000000 (binary units). */
export function parseSize(spec: string): number {
  const m = /^(\d+)\s*([KMGT]?)(i?B)?$/i.exec(spec.trim());
  if (m === null) throw new LadingError('USAGE', `invalid size "${spec}": use a number of bytes or e.g. 700M, 4G`);
  const n = Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
  if (!Number.isSafeInteger(n) || n < 1024 * 1024) throw new LadingError('USAGE', `split size ${spec} is too small: at least 1M`);
  return n;
}
