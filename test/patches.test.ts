import test from 'ava';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheDirs } from '../pipeline/context.js';
import { run } from '../pipeline/exec.js';
import { extractTarball } from '../pipeline/sources/extract.js';
import { fetchSources } from '../pipeline/sources/fetch.js';
import { applyPatchSeries, PATCH_DIRS, patchSeries } from '../pipeline/sources/patches.js';
import { loadPins } from '../pipeline/sources/pins.js';
import { projectRoot } from '../pipeline/paths.js';

// Each series against its pinned source (fetched once into the cache), applied as the stages apply it.
for (const source of Object.keys(PATCH_DIRS)) {
  test(`${source}: the patch series applies to the pinned source, each patched file keeping the tarball's time`, async (t) => {
    const series = await patchSeries(source);
    t.true(series.length > 0, `${PATCH_DIRS[source]} holds no patch`);
    const [file] = await fetchSources([(await loadPins()).get(source)!], { cache: cacheDirs().downloads });
    const tree = await mkdtemp(join(tmpdir(), `tor-ramdisk-patches-${source}-`));
    t.teardown(() => rm(tree, { recursive: true, force: true }));
    await extractTarball(file!.path, tree, { strip: 1, label: file!.name });
    const patched = new Map<string, number>();
    for (const patch of series) {
      for (const m of (await readFile(join(projectRoot, patch), 'utf8')).matchAll(/^\+\+\+ b\/(\S+)/gm)) {
        const path = join(tree, m[1]!);
        if (!patched.has(path)) patched.set(path, (await stat(path)).mtimeMs);
      }
    }
    const before = new Map(await Promise.all([...patched.keys()].map(async (p) => [p, await readFile(p, 'utf8')] as const)));
    await applyPatchSeries({ exec: run }, source, tree);
    for (const [path, mtime] of patched) {
      t.not(await readFile(path, 'utf8'), before.get(path), `${path} unchanged by the series`);
      t.is((await stat(path)).mtimeMs, mtime, `${path} did not keep the tarball's time`);
    }
    // Applied twice, a series fails: --forward refuses what is already there.
    await t.throwsAsync(applyPatchSeries({ exec: run }, source, tree));
  });
}
