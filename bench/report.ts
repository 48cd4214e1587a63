/**
 * The bench's result rows and how they are printed: one markdown table (medians, ratio, goal, met) and
 * the raw runs underneath, so a reader can see the spread behind every median.
 */
import { markdownTable, median } from './measure.js';

export interface Row {
  name: string;
  peer: string;
  kind: 'time' | 'throughput';
  goal: number;
  informational: boolean;
  /** Seconds per run of lading and of the peer, when the benchmark ran. */
  lading?: number[] | undefined;
  peerRuns?: number[] | undefined;
  /** Bytes hashed, for throughput rows. */
  bytes?: number;
  /**
   * A second goal measured outside the timings (requests per image on a re-run): `value` is shown next
   * to the ratio, `text` next to the goal, and the row is met only when both goals are.
   */
  extraGoal?: { text: string; value: string; met: boolean };
  error?: string;
}

export const gib = (bytes: number) => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(0)} MiB`);
export const mbps = (bytes: number, s: number) => (bytes / 1e6 / s).toFixed(0);

export function render(rows: Row[]): string {
  const table = rows.map((r) => {
    const name = `${r.name} vs ${r.peer}`;
    const extra = r.extraGoal;
    const goalText = `${r.kind === 'time' ? '≤' : '≥'} ${r.goal.toFixed(2)}${extra ? `, ${extra.text}` : ''}${r.informational ? ' (info)' : ''}`;
    if (r.lading === undefined || r.peerRuns === undefined) return [name, 'error', 'error', '-', goalText, 'FAILED'];
    const a = median(r.lading);
    const b = median(r.peerRuns);
    const ratio = r.kind === 'time' ? a / b : b / a; // throughput ratio = (bytes/a) / (bytes/b)
    const met = (r.kind === 'time' ? ratio <= r.goal : ratio >= r.goal) && (extra?.met ?? true);
    const cell = (s: number) => (r.bytes === undefined ? s.toFixed(3) : `${s.toFixed(3)} (${mbps(r.bytes, s)} MB/s)`);
    const ratioText = `${ratio.toFixed(2)} ${r.kind === 'time' ? 'time' : 'throughput'}${extra ? `, ${extra.value}` : ''}`;
    return [name, cell(a), cell(b), ratioText, goalText, `${met ? 'yes' : 'no'}${r.informational ? ' (info)' : ''}`];
  });
  const header = ['benchmark', 'lading (median s)', 'peer (median s)', 'ratio lading/peer', 'goal', 'met'];
  return markdownTable(header, table);
}

export function samples(rows: Row[]): string[] {
  const list = (xs: number[]) => xs.map((s) => s.toFixed(2)).join(' ');
  return rows.flatMap((r, i) => {
    if (r.lading === undefined || r.peerRuns === undefined) return [`${r.name} vs ${r.peer}: FAILED: ${r.error ?? 'unknown error'}`];
    // Copy rows share lading's runs: print them once, with the first peer.
    const same = i > 0 && rows[i - 1]?.name === r.name;
    return [`runs, s: ${r.name}: ${same ? '' : `lading [${list(r.lading)}] `}${r.peer} [${list(r.peerRuns)}]`];
  });
}
