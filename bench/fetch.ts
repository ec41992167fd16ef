// Cold and warm fetch of every pinned source: `node dist/bench/fetch.js`.
// Cold uses an empty download cache; warm re-verifies the same files from it.
import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DownloadCache } from '../pipeline/sources/cache.js';
import { fetchSources } from '../pipeline/sources/fetch.js';
import { loadPins } from '../pipeline/sources/pins.js';

const pins = [...(await loadPins()).values()];
const cache = new DownloadCache(await mkdtemp(join(tmpdir(), 'tor-ramdisk-bench-fetch-')));
for (const label of ['cold', 'warm']) {
  const started = process.hrtime.bigint();
  const files = await fetchSources(pins, { cache });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const bytes = (await Promise.all(files.map((f) => stat(f.path)))).reduce((sum, s) => sum + s.size, 0);
  console.log(`${label}: ${files.length} files, ${(bytes / 2 ** 20).toFixed(0)} MiB verified in ${seconds.toFixed(2)} s (${files.filter((f) => f.origin !== 'cache').length} downloaded)`);
}
