// One job budget, measured: `node dist/bench/jobs.js [--jobs N] [--cache DIR] [build options]`.
// A cold build of both arches (default: `--set toolchain.variant=host --jobs 2`) in a stage
// cache that starts empty (downloads shared with the default cache), under /usr/bin/time (CPU
// of every process it starts), while /proc is sampled every 100 ms for compilers (cc1, cc1plus,
// lto1): wall, CPU, utilization of the cores, and the most compile jobs seen at once, which the
// jobserver keeps at N or below (probes, a compiler on /dev/null, counted apart), and the idle
// cores of each minute (/proc/stat), which show where the budget went unused. Both arches are
// one build (`--arch all`), under one budget.
import { execa } from 'execa';
import { readdir, readFile, readlink } from 'node:fs/promises';
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

/**
 * The compilers running now: compile jobs, and probes (a compiler fed /dev/null: Kbuild's
 * cc-option and its kind, which make runs while it reads its makefiles). Reading /proc takes a
 * while, in which one job's compiler can end and the next one's start: a compiler counts only
 * if it is still running once the pass is over, so that a sample is one moment, not a smear.
 */
async function compilersRunning(): Promise<{ jobs: number; probes: number; what: string[] }> {
  const found: { pid: string; probe: boolean; argv: string[] }[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    if (!COMPILERS.has((await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim())) continue;
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    found.push({ pid, probe: argv.includes('/dev/null'), argv });
  }
  const count = { jobs: 0, probes: 0, what: [] as string[] };
  for (const { pid, probe, argv } of found) {
    // The state follows the command's name in parentheses: Z (exited, not yet reaped) or no entry at all is over.
    const state = /\) (\S)/.exec(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''))?.[1];
    if (state === undefined || state === 'Z' || state === 'X') continue;
    if (probe) count.probes++;
    else count.jobs++;
    // What it compiles, and where: to name the jobs of a sample over the budget.
    const input = argv.filter((a, i) => i > 0 && (a === '-' || /\.(c|cc|i|s|S)$/.test(a)) && argv[i - 1] !== '-o');
    count.what.push(`${probe ? 'probe' : 'job'} ${input.join(' ') || argv.slice(0, 4).join(' ')} in ${await readlink(`/proc/${pid}/cwd`).catch(() => '?')}`);
  }
  return count;
}

/** The machine's idle and busy jiffies so far (/proc/stat: idle and iowait are idle). */
async function cpuJiffies(): Promise<{ idle: number; total: number }> {
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  return { idle: fields[3]! + fields[4]!, total: fields.reduce((sum, n) => sum + n, 0) };
}

/** How many samples saw 0, 1, 2, … compile jobs at once; how many saw a probe; the most compilers of both kinds at once. */
const seen: number[] = [];
let probeSamples = 0;
let mostWithProbes = 0;
/** The first samples that saw more compile jobs than the budget, each with what ran. */
const over: string[][] = [];
/** Idle cores, on average, in each minute of the build: where the budget went unused. */
const idleByMinute: number[] = [];
let sampling = true;
const sampler = (async () => {
  const start = Date.now();
  let minuteStart = await cpuJiffies();
  while (sampling) {
    if (Date.now() - start >= (idleByMinute.length + 1) * 60_000) {
      const now = await cpuJiffies();
      idleByMinute.push((cores * (now.idle - minuteStart.idle)) / (now.total - minuteStart.total));
      minuteStart = now;
    }
    const { jobs: running, probes, what } = await compilersRunning();
    if (running > jobs && over.length < 5) over.push(what);
    seen[running] = (seen[running] ?? 0) + 1;
    if (probes > 0) probeSamples++;
    mostWithProbes = Math.max(mostWithProbes, running + probes);
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
console.log(`  compile jobs at once: at most ${seen.length - 1} (--jobs ${jobs}); share of ${samples} samples every ${SAMPLE_MS} ms:`);
for (const [n, count] of seen.entries()) if (count) console.log(`    ${n}: ${((100 * count) / samples).toFixed(1)} %`);
console.log(`  probes (a compiler on /dev/null) in ${probeSamples} samples; compilers of both kinds at once: at most ${mostWithProbes}`);
console.log(`  idle cores, minute by minute: ${idleByMinute.map((n) => n.toFixed(1)).join(' ')}`);
for (const [i, what] of over.entries()) console.log(`  sample ${i + 1} over the budget:\n${what.map((w) => `    ${w}`).join('\n')}`);
console.log(`  stage cache: ${cache}`);
