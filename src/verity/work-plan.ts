/**
 * How the fs-verity workers share out an image whose uncompressed layers are read in place. Each such
 * layer has an owner: the worker that computes the layer's own digest, which is one sequential pass
 * over its bytes. The owner can hash the files inside the layer from the same buffer at no extra read;
 * any other worker must read them again. So files stay with their owner unless that leaves one worker
 * with more work than the others can take over.
 *
 * Pure arithmetic on estimated costs, so the plan can be tested without threads.
 */
import type { DigestAlgorithm } from '../oci/digest.js';
import type { VerityAlgorithm } from './fsverity.js';

/**
 * What a byte costs a worker, in seconds per GiB as measured on the bench machine (2 vCPUs, Node 20):
 * only the ratios matter.
 */
const GiB = 2 ** 30;
export const READ_COST = 0.35 / GiB;
export const HASH_COST: Record<DigestAlgorithm, number> = { sha256: 0.62 / GiB, sha512: 1.1 / GiB };
/** fs-verity: the data blocks and the Merkle tree's upper levels. */
export const VERITY_COST: Record<VerityAlgorithm, number> = { sha256: 0.7 / GiB, sha512: 1.25 / GiB };

export interface PlannedLayer {
  /** Index of the worker that reads the layer and computes its digest. */
  owner: number;
  /** The share (0..1) of the layer's file bytes the owner hashes; other workers take the rest. */
  keep: number;
}

/**
 * Plans `layers` (in the order they will be read) over `workers` that already have `load` seconds of
 * work each: every layer goes to the least loaded worker when its turn comes (in order rather than
 * largest first, so the first layers' owners start side by side), counting its reading, its digest
 * and the fs-verity hashing of its files. When owners alone cannot even out the work (fewer layers
 * than workers, or one much larger), each overloaded owner keeps only the share of its files that
 * brings it down to the level every worker then ends at, the others taking the rest and reading it again.
 */
export function planLayers(
  layers: readonly { size: number; algorithm: DigestAlgorithm }[],
  load: readonly number[],
  verityAlgorithm: VerityAlgorithm,
): PlannedLayer[] {
  const verity = VERITY_COST[verityAlgorithm];
  const planned = [...load];
  const owned = planned.map(() => 0);
  const owners = layers.map((layer) => {
    const w = planned.indexOf(Math.min(...planned));
    planned[w]! += layer.size * (READ_COST + HASH_COST[layer.algorithm] + verity);
    owned[w]! += layer.size;
    return w;
  });
  // The level every worker ends at: what the overloaded shed (as fs-verity work) is what the others
  // take on, plus reading it again. Found by bisection (the excess falls as the level rises).
  const excess = (level: number) =>
    planned.reduce((sum, l) => sum + (l > level ? ((l - level) / verity) * (verity + READ_COST) : l - level), 0);
  let lo = Math.min(...planned);
  let hi = Math.max(...planned);
  for (let i = 0; i < 50 && hi - lo > 1e-9; i++) {
    const mid = (lo + hi) / 2;
    if (excess(mid) > 0) lo = mid;
    else hi = mid;
  }
  const keep = planned.map((l, w) => (l <= hi || owned[w] === 0 ? 1 : Math.max(0, 1 - (l - hi) / verity / owned[w]!)));
  return owners.map((owner) => ({ owner, keep: keep[owner]! }));
}
