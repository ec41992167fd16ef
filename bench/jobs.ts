// One job budget, measured: `node dist/bench/jobs.js [--jobs N] [--cache DIR] [build options]`.
// A cold build of both arches (default: `--set toolchain.variant=host --jobs 2`) in a stage
// cache that starts empty (downloads shared with the default cache), under /usr/bin/time (CPU
// of every process it starts), while /proc is sampled every 100 ms for compilers (cc1, cc1plus,
// lto1): wall, CPU, utilization of the cores, and the most compilers seen at once, which the
// jobserver keeps at N or below.
import { execa } from 'execa';
import { readdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchCache } from './outputs.js';

const COMPILERS = new Set(['cc1', 'cc1plus', 'lto1']);
const SAMPLE_MS = 100;

const cli = fileURLToPath(new URL('../pipeline/cli.js', import.meta.url));
const args = process.argv.slice(2);
const cache = await benchCache(args);
if (!args.includes('--jobs')) args.push('--jobs', '2');
if (!args.some((a) => a.startsWith('toolchain.variant='))) args.push('--set', 'toolchain.variant=host');
const jobs = Number(args[args.indexOf('--jobs') + 1]);
const cores = availableParallelism();

async function compilersRunning(): Promise<number> {
  const names = await Promise.all((await readdir('/proc')).filter((p) => /^\d+$/.test(p)).map((pid) => readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')));
  return names.filter((name) => COMPILERS.has(name.trim())).length;
}

/** How many samples saw 0, 1, 2, … compilers at once. */
const seen: number[] = [];
let sampling = true;
const sampler = (async () => {
  while (sampling) {
    const n = await compilersRunning();
    seen[n] = (seen[n] ?? 0) + 1;
    await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
  }
})();

console.error(`bench: cold build, ${args.join(' ')}, in ${cache}…`);
const result = await execa('/usr/bin/time', ['-f', '%e %U %S', 'node', cli, 'build', '--arch', 'all', ...args, '--cache', cache], { reject: false, env: { CI: 'true' } });
sampling = false;
await sampler;
if (result.exitCode !== 0) {
  console.error(result.stdout.split('\n').slice(-20).join('\n'), result.stderr);
  throw new Error(`the build failed (exit ${result.exitCode})`);
}
const [wall, user, sys] = result.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
const cpu = user! + sys!;
const samples = seen.reduce((sum, n) => sum + (n ?? 0), 0);
const minutes = (s: number) => `${(s / 60).toFixed(1)} min`;
console.log(`cold build of both arches, ${args.join(' ')}, on ${cores} cores (${new Date().toISOString().slice(0, 10)})`);
console.log(`  wall ${minutes(wall!)}, CPU ${minutes(cpu)}, utilization ${((100 * cpu) / (wall! * cores)).toFixed(0)} % of the cores`);
console.log(`  compilers at once: at most ${seen.length - 1} (--jobs ${jobs}); share of ${samples} samples every ${SAMPLE_MS} ms:`);
for (const [n, count] of seen.entries()) if (count) console.log(`    ${n}: ${((100 * count) / samples).toFixed(1)} %`);
console.log(`  stage cache: ${cache}`);
