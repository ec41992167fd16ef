// Cold and cached build figures for one stage: `node dist/bench/stage.js STAGE [build options]`.
// The stage cache starts empty (downloads are shared with the default cache), unless
// `--cache DIR` names one: then "cold" builds what that cache lacks (a toolchain measured
// where it will be used, say). The build runs under /usr/bin/time, so CPU time and peak
// memory include every compiler it starts.
import { execa } from 'execa';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchCache } from './outputs.js';

const cli = fileURLToPath(new URL('../pipeline/cli.js', import.meta.url));
const args = process.argv.slice(2);
if (args.length === 0 || args[0]!.startsWith('-')) {
  console.error('usage: node dist/bench/stage.js STAGE [--arch A] [--set key=value]…');
  process.exit(2);
}
const cache = await benchCache(args);

async function timed(label: string) {
  const result = await execa('/usr/bin/time', ['-f', '%e %U %S %M', 'node', cli, 'build', ...args, '--cache', cache], { reject: false, env: { CI: 'true' } });
  if (result.exitCode !== 0) {
    console.error(result.stderr);
    throw new Error(`${label} build failed`);
  }
  const [wall, user, sys, maxRssKb] = result.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wall: wall!, cpu: user! + sys!, maxRssKb: maxRssKb! };
}

const cores = availableParallelism();
const cold = await timed('cold');
const cached = await timed('cached');
console.log(`stage: ${args.join(' ')}`);
console.log(`cold:   wall ${cold.wall.toFixed(1)} s, CPU ${cold.cpu.toFixed(1)} s, utilization ${((100 * cold.cpu) / (cold.wall * cores)).toFixed(0)} % of ${cores} cores, peak RSS ${(cold.maxRssKb / 1024).toFixed(0)} MiB`);
console.log(`cached: wall ${cached.wall.toFixed(2)} s`);
console.log(`stage cache: ${cache}`);
