/**
 * A minimal, strict reader of PE/COFF section tables: enough to find a Unified Kernel Image's sections
 * (`.cmdline`, `.linux`, `.osrel`…) and read the small ones, from a file on disk or from bytes streaming
 * past while an image's layers are read (so a 100 MiB UKI is never held in memory).
 *
 * Hand-written: the npm packages that parse PE files are unmaintained or pull in a whole disassembler,
 * and all a UKI check needs is the DOS stub's pointer, the COFF header and the section table (Microsoft
 * PE format, "Section Table"). Every offset and size is bounds-checked against the file's length, and a
 * truncated or malformed file is refused with INVALID_UKI naming what is wrong, never read past.
 *
 * Long section names (`/123`, an offset into the COFF string table) are reported as written: the
 * sections a UKI check reads all have names of at most 8 bytes.
 */
import { open } from 'node:fs/promises';
import { fsError, LadingError } from '../../errors.js';

export interface PeSection {
  /** The name as stored (up to 8 bytes, NUL padding removed). */
  name: string;
  virtualSize: number;
  virtualAddress: number;
  /** Where the section's bytes are in the file, and how many (the file-aligned size). */
  rawOffset: number;
  rawSize: number;
  /** The bytes that are the section's content: the virtual size when it is smaller than the raw size. */
  dataSize: number;
}

export interface PeFile {
  machine: number;
  /** 0x10b (PE32) or 0x20b (PE32+). */
  optionalMagic: number;
  sections: PeSection[];
}

/** Windows loads at most 96 sections; a file claiming more is not a PE image anyone boots. */
const MAX_SECTIONS = 96;
/** A PE header further into the file than this is refused (real ones sit within the first KiB). */
const MAX_HEADER_OFFSET = 64 * 1024;
const SECTION_HEADER = 40;
const COFF_HEADER = 20;

/** Bytes read from a section are limited: the sections worth reading (.cmdline, .osrel) are small. */
export const MAX_SECTION_READ = 1024 * 1024;

function invalid(what: string, msg: string): LadingError {
  return new LadingError('INVALID_UKI', `${what} is not a valid PE/UKI file: ${msg}`, { file: what });
}

/**
 * How many leading bytes the headers need, given the bytes seen so far (`head`): a number larger than
 * `head.length` means "read up to there and ask again"; `head.length` or less means they are complete.
 */
function headerEnd(head: Uint8Array, size: number, what: string): number {
  if (head.length < 64) return 64;
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (dv.getUint16(0, true) !== 0x5a4d) throw invalid(what, 'no "MZ" signature at the start');
  const pe = dv.getUint32(0x3c, true);
  if (pe < 64 || pe > MAX_HEADER_OFFSET) throw invalid(what, `PE header offset ${pe} is out of range`);
  const optional = pe + 4 + COFF_HEADER;
  if (optional > size) throw invalid(what, `truncated: ${size} bytes, the PE header ends at ${optional}`);
  if (head.length < optional) return optional;
  if (dv.getUint32(pe, true) !== 0x00004550) throw invalid(what, `no "PE\\0\\0" signature at offset ${pe}`);
  const sections = dv.getUint16(pe + 6, true);
  const optionalSize = dv.getUint16(pe + 20, true);
  if (sections === 0 || sections > MAX_SECTIONS) throw invalid(what, `${sections} sections (expected 1 to ${MAX_SECTIONS})`);
  if (optionalSize < 2) throw invalid(what, `optional header of ${optionalSize} bytes`);
  const end = optional + optionalSize + sections * SECTION_HEADER;
  if (end > size) throw invalid(what, `truncated: ${size} bytes, the section table ends at ${end}`);
  return end;
}

/** Parses the headers in `head` (which must hold at least headerEnd bytes of a `size`-byte file). */
function parseHeaders(head: Uint8Array, size: number, what: string): PeFile {
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const pe = dv.getUint32(0x3c, true);
  const machine = dv.getUint16(pe + 4, true);
  const count = dv.getUint16(pe + 6, true);
  const optionalSize = dv.getUint16(pe + 20, true);
  const optional = pe + 4 + COFF_HEADER;
  const optionalMagic = dv.getUint16(optional, true);
  if (optionalMagic !== 0x10b && optionalMagic !== 0x20b) {
    throw invalid(what, `optional header magic 0x${optionalMagic.toString(16)} (expected 0x10b or 0x20b)`);
  }
  const sections: PeSection[] = [];
  for (let i = 0; i < count; i++) {
    const o = optional + optionalSize + i * SECTION_HEADER;
    const rawName = head.subarray(o, o + 8);
    const nul = rawName.indexOf(0);
    const name = Buffer.from(nul < 0 ? rawName : rawName.subarray(0, nul)).toString('latin1');
    const virtualSize = dv.getUint32(o + 8, true);
    const virtualAddress = dv.getUint32(o + 12, true);
    const rawSize = dv.getUint32(o + 16, true);
    const rawOffset = dv.getUint32(o + 20, true);
    if (rawSize > 0 && rawOffset + rawSize > size) {
      throw invalid(
        what,
        `section ${JSON.stringify(name)} (offset ${rawOffset}, ${rawSize} bytes) extends past the end of the ${size}-byte file`,
      );
    }
    const dataSize = virtualSize > 0 ? Math.min(virtualSize, rawSize) : rawSize;
    sections.push({ name, virtualSize, virtualAddress, rawOffset, rawSize, dataSize });
  }
  return { machine, optionalMagic, sections };
}

/**
 * Reads a PE file pushed to it chunk by chunk (in order, from the start): keeps only the headers and
 * the content of the sections `want` picks.
 */
export class PeReader {
  private head = Buffer.alloc(0);
  private need = 64;
  private pos = 0;
  private parsed: PeFile | undefined;
  private readonly data = new Map<number, Buffer>();

  constructor(
    readonly size: number,
    readonly what: string,
    private readonly want: (name: string) => boolean,
  ) {}

  update(chunk: Uint8Array): void {
    const base = this.pos;
    this.pos += chunk.length;
    let offset = 0;
    while (this.parsed === undefined && offset < chunk.length) {
      const take = Math.min(this.need - this.head.length, chunk.length - offset);
      this.head = Buffer.concat([this.head, chunk.subarray(offset, offset + take)]);
      offset += take;
      if (this.head.length >= this.need) {
        this.need = headerEnd(this.head, this.size, this.what);
        if (this.head.length >= this.need) this.start();
      }
    }
    if (this.parsed !== undefined && offset < chunk.length) this.capture(chunk.subarray(offset), base + offset);
  }

  /** The headers and the wanted sections' bytes; INVALID_UKI when the file ended too early. */
  finish(): { pe: PeFile; sections: Map<PeSection, Buffer> } {
    if (this.parsed === undefined || this.pos < this.size) {
      throw invalid(
        this.what,
        `truncated: ${this.pos} of ${this.size} bytes, ${this.parsed === undefined ? 'the headers are incomplete' : 'a section is incomplete'}`,
      );
    }
    const out = new Map<PeSection, Buffer>();
    for (const [i, buf] of this.data) out.set(this.parsed.sections[i]!, buf);
    return { pe: this.parsed, sections: out };
  }

  private start(): void {
    this.parsed = parseHeaders(this.head, this.size, this.what);
    this.parsed.sections.forEach((s, i) => {
      if (!this.want(s.name)) return;
      if (s.dataSize > MAX_SECTION_READ)
        throw invalid(this.what, `section ${s.name} is ${s.dataSize} bytes (at most ${MAX_SECTION_READ} are read)`);
      const buf = Buffer.alloc(s.dataSize);
      // Bytes already seen (a section overlapping the headers) come from the kept head.
      const end = Math.min(s.rawOffset + s.dataSize, this.head.length);
      if (end > s.rawOffset) this.head.copy(buf, 0, s.rawOffset, end);
      this.data.set(i, buf);
    });
  }

  private capture(bytes: Uint8Array, at: number): void {
    const end = at + bytes.length;
    this.parsed!.sections.forEach((s, i) => {
      const buf = this.data.get(i);
      if (buf === undefined) return;
      const from = Math.max(at, s.rawOffset);
      const to = Math.min(end, s.rawOffset + s.dataSize);
      if (to > from) buf.set(bytes.subarray(from - at, to - at), from - s.rawOffset);
    });
  }
}

/** Reads a PE file from disk (headers and the sections `want` picks), in 1 MiB reads. */
export async function readPeFile(path: string, want: (name: string) => boolean): Promise<{ pe: PeFile; sections: Map<PeSection, Buffer> }> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fsError(e, 'open', path);
  }
  try {
    const size = (await fh.stat()).size;
    const reader = new PeReader(size, path, want);
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      reader.update(buf.subarray(0, bytesRead));
    }
    return reader.finish();
  } catch (e) {
    throw fsError(e, 'read', path);
  } finally {
    await fh.close();
  }
}
