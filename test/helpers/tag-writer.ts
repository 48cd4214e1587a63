// Run as a separate process by the concurrency test: writes N small images under tags PREFIX-0..N-1.
import { writeImage } from '../../src/build/image-writer.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';

const [dir, prefix, count] = process.argv.slice(2) as [string, string, string];
const store = await LayoutStore.open(dir, 'write');
for (let i = 0; i < Number(count); i++) {
  await writeImage(store, { layers: [{ files: { [`${prefix}/${i}`]: `${prefix}${i}` } }] }, [`${prefix}-${i}`]);
}
await store.close();
