/** How the fs-verity workers share out layers read in place (src/verity/work-plan.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HASH_COST, planLayers, READ_COST, VERITY_COST } from '../../src/verity/work-plan.js';

const MiB = 2 ** 20;
const layer = (size: number) => ({ size, algorithm: 'sha256' as const });

/** Each worker's total once every file is hashed where the plan says (shed files are read again). */
function totals(sizes: number[], plan: { owner: number; keep: number }[], workers: number): number[] {
  const load = new Array<number>(workers).fill(0);
  const verity = VERITY_COST.sha512;
  plan.forEach(({ owner, keep }, i) => {
    const size = sizes[i]!;
    load[owner]! += size * (READ_COST + HASH_COST.sha256) + keep * size * verity;
    const shed = (1 - keep) * size * (verity + READ_COST);
    for (let w = 0; w < workers; w++) if (w !== owner) load[w]! += shed / (workers - 1);
  });
  return load;
}

describe('planLayers', () => {
  it('gives equal layers to the workers in turn and lets each owner hash all its files', () => {
    const sizes = [256 * MiB, 256 * MiB, 256 * MiB, 256 * MiB];
    const plan = planLayers(sizes.map(layer), [0, 0], 'sha512');
    assert.deepEqual(
      plan.map((p) => p.owner),
      [0, 1, 0, 1],
    );
    for (const p of plan) assert.equal(p.keep, 1);
  });

  it('splits a single layer: the owner keeps the share that evens out the work', () => {
    const plan = planLayers([layer(1024 * MiB)], [0, 0], 'sha512');
    assert.equal(plan[0]!.owner, 0);
    // The owner reads and digests the whole layer, so it keeps about a fifth of the files.
    assert.ok(plan[0]!.keep > 0.15 && plan[0]!.keep < 0.3, String(plan[0]!.keep));
    const [a, b] = totals([1024 * MiB], plan, 2);
    assert.ok(Math.abs(a! - b!) < 1e-3, `${a} vs ${b}`);
  });

  it('evens out unequal layers and a worker already busy', () => {
    const sizes = [900 * MiB, 50 * MiB, 50 * MiB];
    const plan = planLayers(sizes.map(layer), [0, 0], 'sha512');
    assert.deepEqual(
      plan.map((p) => p.owner),
      [0, 1, 1],
    );
    assert.ok(plan[0]!.keep < 1);
    assert.equal(plan[1]!.keep, 1);
    const [a, b] = totals(sizes, plan, 2);
    assert.ok(Math.abs(a! - b!) < 1e-3, `${a} vs ${b}`);
    // A worker with work queued already gets the next layer only when it is the less loaded.
    assert.equal(planLayers([layer(10 * MiB)], [5, 0], 'sha512')[0]!.owner, 1);
  });

  it('plans nothing for no layers, and one worker keeps everything', () => {
    assert.deepEqual(planLayers([], [0, 0], 'sha256'), []);
    assert.deepEqual(planLayers([layer(MiB), layer(MiB)], [0], 'sha256'), [
      { owner: 0, keep: 1 },
      { owner: 0, keep: 1 },
    ]);
  });
});
