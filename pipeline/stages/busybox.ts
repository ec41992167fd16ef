import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { applyFragments } from '../kconfig/apply.js';
import { readFragment, type Fragment } from '../kconfig/fragment.js';
import { projectRoot } from '../paths.js';
import { packageStage } from './package.js';

const BUSYBOX_FRAGMENTS_DIR = join(projectRoot, 'configs', 'busybox');
/** Applied in this order on `make allnoconfig`. */
const FRAGMENTS = ['base', 'shell', 'tools', 'network', 'no-logging'] as const;

/**
 * Busybox's kconfig has no olddefconfig, and its allnoconfig writes 0 and "" for the numbers
 * and strings of every applet it leaves off. Those no fragment sets are dropped, and
 * `oldconfig`, answered with empty lines, gives them their Kconfig defaults.
 */
async function oldDefConfig(configPath: string, fragments: Fragment[], oldconfig: (answers: string) => Promise<unknown>): Promise<void> {
  const set = new Set(fragments.flatMap((f) => f.settings.map((s) => s.symbol)));
  const lines = (await readFile(configPath, 'utf8')).split('\n');
  const kept = lines.filter((line) => {
    const value = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    return !value || value[2] === 'y' || set.has(value[1]!);
  });
  await writeFile(configPath, kept.join('\n'));
  await oldconfig('\n'.repeat(lines.length));
}

/** Busybox: ash and the menu's applets, dynamically linked (it shares the libc), PIE, with no logging applets. */
export const busyboxStage = packageStage({
  name: 'busybox',
  title: 'busybox',
  definition: import.meta.url,
  source: 'busybox',
  config: ['logging.userland'],
  files: ['configs/busybox'],
  // Its links to /bin/busybox, and busybox.
  image: { files: ['bin', 'sbin', 'usr/bin', 'usr/sbin'] },
  async build({ ctx, src, tc, env, destdir }) {
    if (ctx.config.get('logging.userland')) {
      throw new InputError('logging.userland is true, but busybox is built without syslogd, klogd, logger and logread', { hint: 'Leave logging.userland locked to false.' });
    }
    // The toolchain's flags go in once, as EXTRA_* (applied after busybox's own): busybox would
    // also take CFLAGS and LDFLAGS from the environment. Optimized for size (last -O wins):
    // nothing busybox does is on the relay's hot path.
    const { CFLAGS: toolchainCflags, LDFLAGS: ldflags, ...makeEnv } = env;
    const cflags = `${toolchainCflags} -Os`;
    const make = (args: readonly string[], input?: string) =>
      ctx.exec('make', [`CROSS_COMPILE=${tc.prefix}`, `EXTRA_CFLAGS=${cflags}`, `EXTRA_LDFLAGS=${ldflags}`, ...args], {
        cwd: src,
        env: makeEnv,
        ...(input === undefined ? {} : { input }),
      });
    const fragments = await Promise.all(FRAGMENTS.map((name) => readFragment(join(BUSYBOX_FRAGMENTS_DIR, `${name}.config`), { name: `configs/busybox/${name}.config` })));
    const configPath = join(src, '.config');
    await applyFragments(
      {
        what: 'busybox',
        tree: src,
        configPath,
        make: (target) => (target === 'olddefconfig' ? oldDefConfig(configPath, fragments, (answers) => make(['oldconfig'], answers)) : make([target])),
        stage: ctx.stage.name,
        logPath: ctx.logPath,
      },
      'allnoconfig',
      fragments,
    );
    await make([]);
    // Symlinks to /bin/busybox in bin, sbin, usr/bin and usr/sbin; the checked configuration beside them, outside the image's tree.
    await make([`CONFIG_PREFIX=${destdir}`, 'install']);
    await copyFile(configPath, join(destdir, 'config'));
  },
});
