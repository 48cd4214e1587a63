/**
 * One pass over a layer read in place (verity-worker.ts runs it for the layers it owns): the layer is
 * read once, in order, in chunks; every byte goes into the layer's own digest, and the bytes of each
 * file in it that this worker is to hash go into that file's fs-verity hasher while they are in the
 * buffer. The pass goes on span by span as the main thread parses the layer, so it keeps its place.
 */
import { createHash, type Hash } from 'node:crypto';
import type { DigestAlgorithm } from '../oci/digest.js';
import { readRange } from '../oci/fd-range.js';
import { FsVerityHasher, type VerityAlgorithm } from './fsverity.js';

/** A file inside the layer: `length` bytes at `start`, answered under `id`. */
export interface LayerFile {
  id: number;
  start: number;
  length: number;
}

export class LayerPass {
  /** Where the next span starts: every byte before it is in the layer's digest. */
  pos = 0;
  private readonly hash: Hash;

  constructor(
    readonly fd: number,
    readonly size: number,
    algorithm: DigestAlgorithm,
    private readonly verity: VerityAlgorithm,
    private readonly buffer: Buffer,
  ) {
    this.hash = createHash(algorithm);
  }

  /**
   * Reads on up to `upTo`, hashing `files` (in order, all within the span) on the way; returns their
   * fs-verity digests (hex). A layer that ends before one of them does is an error.
   */
  advance(upTo: number, files: readonly LayerFile[]): [number, string][] {
    const last = files[files.length - 1];
    if (files.length > 0 && (files[0]!.start < this.pos || last!.start + last!.length > upTo)) {
      throw new Error(`files outside the span ${this.pos}..${upTo} of a layer pass`);
    }
    const digests: [number, string][] = [];
    let next = 0;
    let hasher: FsVerityHasher | undefined;
    readRange(this.fd, this.pos, upTo - this.pos, this.buffer, (chunk) => {
      const chunkStart = this.pos;
      const chunkEnd = chunkStart + chunk.length;
      this.hash.update(chunk);
      while (next < files.length) {
        const f = files[next]!;
        if (f.start >= chunkEnd) break;
        hasher ??= new FsVerityHasher(this.verity);
        const from = Math.max(chunkStart, f.start);
        const to = Math.min(chunkEnd, f.start + f.length);
        hasher.update(chunk.subarray(from - chunkStart, to - chunkStart));
        if (to < f.start + f.length) break; // the file goes on in the next chunk
        digests.push([f.id, hasher.digest().toString('hex')]);
        hasher = undefined;
        next++;
      }
      this.pos = chunkEnd;
    });
    if (next < files.length) {
      const f = files[next]!;
      throw new Error(`the layer ends before the end of a ${f.length}-byte file at ${f.start}`);
    }
    return digests;
  }

  /** Reads the rest of the layer; its digest (hex) and how many bytes there were (fewer: it is short). */
  finish(): { hex: string; bytes: number } {
    this.advance(this.size, []);
    return { hex: this.hash.digest('hex'), bytes: this.pos };
  }
}
